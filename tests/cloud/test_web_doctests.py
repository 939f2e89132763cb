"""Runs the docstring examples of the dashboard's pure modules and the demo site, so they stay
true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["cloud.web.svg", "cloud.web.pages", "cloud.web.queries", "coldtrace.demo_site"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), verbose=False)
    assert result.attempted > 0, f"{name} has no doctests"
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
