"""Runs the docstring examples of every module in protocols.gs1, so they stay true."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import protocols.gs1

MODULES = sorted(
    f"protocols.gs1.{info.name}" for info in pkgutil.iter_modules(protocols.gs1.__path__)
)


def test_every_module_is_collected() -> None:
    assert {"protocols.gs1.epc", "protocols.gs1.element_string"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
    public = [n for n in vars(module) if not n.startswith("_")]
    if name.endswith(("epc", "element_string", "digital_link", "check_digit", "ai")):
        assert result.attempted > 0, f"{name} has no doctests"
    assert public
