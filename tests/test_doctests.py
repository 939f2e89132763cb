"""Runs the docstring examples of every module of the five packages, so they stay true.

One walker for the whole tree instead of a list per area: a module added later is covered
without anyone remembering to list it.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ["protocols", "edge", "cloud", "simulators", "coldtrace"]


def _modules() -> list[str]:
    names: list[str] = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        walked = pkgutil.walk_packages(root.__path__, prefix=f"{package}.")
        # __main__ is left out: importing it would run the command
        names.extend(info.name for info in walked if not info.name.endswith("__main__"))
    return sorted(names)


MODULES = _modules()

# Public functions of the wire formats and the domain core carry runnable examples.
MUST_HAVE_EXAMPLES = {
    "protocols.records", "protocols.batch", "edge.backoff",
    "protocols.gs1.epc", "protocols.gs1.element_string", "protocols.gs1.digital_link",
    "protocols.gs1.check_digit", "protocols.gs1.ai",
    "cloud.auth.deps", "cloud.auth.model", "cloud.epcis.events", "cloud.ledger.chain",
    "cloud.ledger.core", "cloud.ledger.counting", "cloud.ledger.instant", "cloud.receiving.asn",
    "cloud.receiving.desadv", "cloud.receiving.imports", "cloud.receiving.matching",
    "cloud.web.svg", "cloud.web.pages", "cloud.web.queries", "coldtrace.demo_site",
}  # fmt: skip


def test_the_core_modules_are_walked() -> None:
    assert set(MODULES) >= MUST_HAVE_EXAMPLES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} example(s) failed in {name}"
    if name in MUST_HAVE_EXAMPLES:
        assert result.attempted > 0, f"{name} has no examples"
