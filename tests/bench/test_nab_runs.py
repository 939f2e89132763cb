"""NAB files beside the repository and the processor's models on them (one configuration)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.nab import MACHINE_TEMPERATURE, fixed_sigma, load_files, ours, score_times


def test_extra_files_are_found_with_nab_labels(tmp_path: Path) -> None:
    data = tmp_path / "data" / "realKnownCause"
    data.mkdir(parents=True)
    rows = ["timestamp,value"] + [
        f"2014-01-01 {h:02d}:00:00,{20 + (h == 12) * 9}" for h in range(24)
    ]
    (data / "room.csv").write_text("\n".join(rows) + "\n")
    (data / "unlabelled.csv").write_text("timestamp,value\n2014-01-01 00:00:00,1\n")
    labels = tmp_path / "labels"
    labels.mkdir()
    window = ["2014-01-01 11:00:00.000000", "2014-01-01 13:00:00.000000"]
    (labels / "combined_windows.json").write_text(json.dumps({"realKnownCause/room.csv": [window]}))
    machine, room = load_files(extra=data)
    assert machine.name == MACHINE_TEMPERATURE
    assert room.name == "room.csv"
    assert (len(room.times), room.values[12], room.windows[0][0].hour) == (24, 29.0, 11)
    with pytest.raises(FileNotFoundError):
        load_files(extra=tmp_path)


def test_the_processor_models_find_the_machine_failures() -> None:
    # The real file: one configuration, not tuned to it (see docs/cold-chain.md).
    (machine,) = load_files()
    score = score_times(machine.times, ours(machine), machine.windows)
    baseline = score_times(machine.times, fixed_sigma(machine), machine.windows)
    assert score.windows_found >= 3
    assert score.false_positives <= 15
    assert score.normalised is not None
    assert baseline.normalised is not None
    assert score.normalised > max(baseline.normalised, 50.0)
