"""Runs the docstring examples of the ledger, receiving, EPCIS and auth modules, so they stay
true (the suite does not collect doctests by itself)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "cloud.auth.deps",
    "cloud.auth.model",
    "cloud.epcis.events",
    "cloud.ledger.chain",
    "cloud.ledger.core",
    "cloud.ledger.counting",
    "cloud.ledger.instant",
    "cloud.receiving.asn",
    "cloud.receiving.desadv",
    "cloud.receiving.imports",
    "cloud.receiving.matching",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{result.failed} example(s) failed in {name}"
