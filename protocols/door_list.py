"""What an outbound dock door may let through while its site loads transfers, and the pure check.

The cloud builds a ``DoorList`` per site (``GET /v1/sites/{id}/door-list``): the GTINs (and
lots) its open transfers still order, and the units on hand there that may not leave (with the
reason: quarantined, recalled, expired, short-dated). A gateway holding it can judge an
outbound passage the moment it closes, before the batch reaches the cloud, and sound the door's
local alarm; the cloud's own check (``cloud.transfers.door``) stays the authority for the ledger.

>>> from datetime import UTC, datetime
>>> dl = DoorList(site_id="s1", generated_at=datetime(2026, 3, 1, tzinfo=UTC),
...               ordered_gtins=["00614141123452"],
...               blocked={"(01)00614141123452(21)7": "lot recalled"})
>>> door_problems(dl, ["3034257BF40C0E4000000007", "3034257BF40C0E4000000008"])
[('(01)00614141123452(21)7', 'lot recalled')]
>>> door_problems(dl, ["30340242201D8840009EFB4A"])  # another GTIN
[('(01)00037000302414(21)10419018', 'not ordered')]
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from protocols.gs1.epc import decode_epc
from protocols.gs1.epc_types import Sgtin
from protocols.gs1.errors import Gs1Error

_Gtin = Annotated[str, Field(pattern=r"^[0-9]{14}$")]


class DoorList(BaseModel):
    """A site's outbound allow-list and block-list while transfers are loading."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    site_id: str
    generated_at: datetime
    ordered_gtins: list[_Gtin] = Field(default_factory=list, max_length=100_000)
    blocked: dict[str, str] = Field(default_factory=dict, max_length=1_000_000)


def door_problems(door_list: DoorList, epcs: Iterable[str]) -> list[tuple[str, str]]:
    """The units of an outbound passage that must not leave, with why (empty: let it go).

    Only serialized trade items (SGTIN) are judged: a container's contents are the cloud's to
    check, and an unreadable tag is not evidence of anything.
    """
    ordered = set(door_list.ordered_gtins)
    found: list[tuple[str, str]] = []
    for epc in epcs:
        try:
            decoded = decode_epc(epc)
        except Gs1Error:
            continue
        if not isinstance(decoded, Sgtin):
            continue
        key = f"(01){decoded.gtin}(21){decoded.serial}"
        if key in door_list.blocked:
            found.append((key, door_list.blocked[key]))
        elif decoded.gtin not in ordered:
            found.append((key, "not ordered"))
    return found
