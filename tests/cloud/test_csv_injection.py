"""CSV injection: no CSV the cloud writes holds a cell a spreadsheet would run as a formula.

Each payload starts the way OWASP lists (``=``, ``+``, ``-``, ``@``, tab, CR) or with LF, or hides
a formula after a CR or LF inside the cell; every writer must give the cell a leading apostrophe
and quote it, leave plain numbers (a temperature of -18.5) as numbers, and the master-data import
must read back exactly what the export wrote. Cells are read as a spreadsheet does: a bare CR
ends a row.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib import resources

import pytest

from cloud.audit.trail import AuditRow, as_csv
from cloud.auth.model import Role
from cloud.reports.output import write_csv
from cloud.spreadsheet import FORMULA_START, read_cell, text_cell
from tests.support.ledger_api import Api, api

PAYLOADS = [
    '=HYPERLINK("http://evil.example","x")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    "fine\r=1+1",  # a bare CR left unquoted starts a new row whose first cell is the formula
    "fine\n=1+1",
]
NUMBERS = ["-18.5", "+2", "-0.25", "1e-3", "-40"]


def _runs(cell: str) -> bool:
    """Whether a spreadsheet would read ``cell`` as a formula (a number is not one)."""
    return cell.startswith(FORMULA_START) and cell not in NUMBERS


def _cells(text: str) -> list[str]:
    return [c for row in csv.reader(io.StringIO(text, newline="")) for c in row]


def test_audit_trail_export_neutralises_every_formula_start() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [AuditRow(i, at, p, "lot.release", p, p, {}) for i, p in enumerate(PAYLOADS)]
    cells = _cells(as_csv(rows))
    assert [c for c in cells if _runs(c)] == []
    for p in PAYLOADS:
        expected = p if p.startswith("fine") else "'" + p
        assert cells.count(expected) == 3, p  # actor, subject and reason, kept whole


def test_report_csv_neutralises_text_and_keeps_numbers() -> None:
    text = write_csv(["what", "value"], [[p, -18.5] for p in PAYLOADS] + [[n, n] for n in NUMBERS])
    cells = _cells(text.decode())
    assert [c for c in cells if _runs(c)] == []
    assert cells.count("-18.5") == len(PAYLOADS) + 2  # the float column, and the string "-18.5"
    assert all(cells.count(n) == 2 for n in NUMBERS if n != "-18.5")


@pytest.mark.parametrize("text", [*PAYLOADS, *NUMBERS, "'=1", "''", "'", "'x", "plain", ""])
def test_cells_read_back_as_written(text: str) -> None:
    assert read_cell(text_cell(text)) == text


@pytest.fixture
async def admin(timescale_url: str) -> AsyncIterator[Api]:
    async with api(timescale_url) as a:
        yield a


@pytest.mark.integration
async def test_master_data_export_is_safe_and_imports_back_unchanged(admin: Api) -> None:
    """Names and lot numbers starting like a formula (an admin's typo or a pasted value) are
    exported with an apostrophe; the export imports back as unchanged, apostrophe removed."""
    a = admin
    why = {"X-Coldtrace-Reason": "csv injection", "Content-Type": "text/csv"}
    headers = a.as_(Role.ADMIN) | why
    hostile = ["=1+1", "+1+cmd", "-2+3", "@SUM(1)"]
    sites = "site_id,name,timezone\n" + "".join(
        f'site-x{i},"{name}",UTC\n' for i, name in enumerate(hostile)
    )
    made = await a.client.post("/v1/import/site", content=sites, params={"apply": "true"},
                               headers=headers)  # fmt: skip
    assert made.status_code == 200, made.text
    assert made.json()["created"] == len(hostile), made.text
    for kind in ("site", "profile"):
        exported = await a.client.get(f"/v1/export/{kind}", headers=a.as_(Role.VIEWER))
        assert exported.status_code == 200, exported.text
        cells = _cells(exported.text)
        assert [c for c in cells if c.startswith(FORMULA_START) and not _number(c)] == [], kind
        again = await a.client.post(f"/v1/import/{kind}", content=exported.text,
                                    params={"apply": "false"}, headers=headers)  # fmt: skip
        report = again.json()
        assert (report["errors"], report["created"], report["updated"]) == (0, 0, 0), report
    names = _cells((await a.client.get("/v1/export/site", headers=a.as_(Role.VIEWER))).text)
    assert all("'" + name in names for name in hostile)
    profiles = _cells((await a.client.get("/v1/export/profile", headers=a.as_(Role.VIEWER))).text)
    assert any(c.startswith("-") and _number(c) for c in profiles)  # frozen limits stay numbers


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the page's script")
def test_lot_chart_csv_cells_in_the_browser_script() -> None:
    """The lot page builds its CSV in the browser (``charts.js``: ``csvCell``)."""
    script = (resources.files("cloud.web") / "static" / "charts.js").read_text("utf-8")
    found = re.search(r"^function csvCell\(text\) \{.*?^\}", script, re.M | re.S)
    assert found is not None
    program = found.group(0) + "\nconst cells = JSON.parse(process.argv[1]);"
    program += '\nprocess.stdout.write(cells.map(csvCell).join(",") + "\\n");'
    ran = subprocess.run(["node", "-e", program, json.dumps(PAYLOADS)], check=True,
                         capture_output=True, timeout=30)  # fmt: skip
    cells = _cells(ran.stdout.decode())  # bytes: text mode would turn a CR into LF
    assert [c for c in cells if _runs(c)] == []
    assert cells == [p if p.startswith("fine") else "'" + p for p in PAYLOADS]
