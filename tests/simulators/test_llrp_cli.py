"""``coldtrace sim llrp``: argument parsing, fault schedules, and a short run."""

from __future__ import annotations

import argparse

import pytest

from coldtrace.cli import build_parser, main
from simulators.cli import Fault, parse_fault


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("drop@30", Fault("drop", 30.0)),
        ("close@2.5", Fault("close", 2.5)),
        ("silent@1.5+10", Fault("silent", 1.5, 10.0)),
        ("malformed@2", Fault("malformed", 2.0)),
        ("malformed-header@0", Fault("malformed-header", 0.0)),
    ],
)
def test_faults_parse(text: str, fault: Fault) -> None:
    assert parse_fault(text) == fault


@pytest.mark.parametrize("text", ["drop", "reboot@3", "silent@x", "drop@-1"])
def test_bad_faults_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_fault(text)


def test_sim_llrp_is_registered() -> None:
    args = build_parser().parse_args(["sim", "llrp", "--port", "0", "--fault", "drop@1"])
    assert args.sim_command == "llrp"
    assert args.fault == [Fault("drop", 1.0)]


@pytest.mark.integration
def test_sim_llrp_runs_for_its_duration() -> None:
    argv = ["sim", "llrp", "--port", "0", "--duration", "0.3", "--fault", "silent@0.1+0.1"]
    assert main(argv) == 0
