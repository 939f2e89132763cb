"""NAB scoring, written from the Numenta Anomaly Benchmark's published rules, and NAB runs.

The rules (numenta/NAB ``nab/sweeper.py``, ``config/profiles.json``; MIT), restated:

- Probation: the first ``min(floor(0.15 · rows), 0.15 · 5000)`` rows are not scored. A
  detection there counts for nothing, and a window lying entirely inside probation is not
  charged as missed (it has no scorable row).
- A row inside a window ``[a, b]`` (row indices, width ``w = b − a + 1``) has the relative
  position ``−(b − i + 1) / w`` (−1 at the left edge, ~0 at the right edge); a detection there
  earns ``tp · S(position) / S(−1)`` with ``S(x) = 2 / (1 + e^(5x)) − 1``, and ``S(x) = −1`` for
  ``x > 3`` (strictly). Only the best detection of a window counts; a window without one
  costs ``fn``.
- A detection outside every window costs ``fp · S(|b_prev − i| / (w_prev − 1))`` after a window
  (a detection just past a window costs little), and ``fp · −1`` before the first window.
- Standard profile: ``tp = 1.0``, ``fp = 0.11``, ``fn = 1.0``.

Per-file normalisation: ``100 · (raw − null) / (perfect − null)`` with ``null = −fn ·
charged windows`` (no detections) and ``perfect = tp · charged windows`` (NAB's runner
normalises its corpus total the same way, with its null detector and one TP per window).

The data are read from ``../shared/nab/`` next to the repository (``machine_temperature_system
_failure.csv`` and its windows); ``--data-dir`` adds other NAB ``realKnownCause`` files with a
``combined_windows.json``. ``python -m bench.nab`` scores our detectors, with the one
configuration used everywhere, against simple baselines on every file it finds.

>>> score_rows(10, [(4, 6)], [4]).raw  # earliest row of the only window
1.0
>>> score_rows(10, [(4, 6)], []).raw  # nothing detected: the window is missed
-1.0
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from river import anomaly

from cloud.coldchain.anomaly import SensorModels
from cloud.coldchain.forecast import WarningParams
from cloud.coldchain.profiles import StorageProfile

REPO = Path(__file__).resolve().parent.parent
NAB_DIR = REPO.parent / "shared" / "nab"
MACHINE_TEMPERATURE = "machine_temperature_system_failure.csv"
PROBATION_PERCENT = 0.15


@dataclass(frozen=True)
class CostMatrix:
    """Weights of a NAB application profile."""

    tp: float = 1.0
    fp: float = 0.11
    fn: float = 1.0


STANDARD = CostMatrix()


def scaled_sigmoid(position: float) -> float:
    """NAB's reward for a relative position: ≈1 early in a window, 0 at its end, −1 far past.

    >>> round(scaled_sigmoid(-1.0), 5), scaled_sigmoid(0.0), scaled_sigmoid(3.5)
    (0.98661, 0.0, -1.0)
    """
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probation_rows(rows: int, percent: float = PROBATION_PERCENT) -> float:
    """Rows at the start of a file that are not scored (NAB: at most 15 % of 5,000 = 750)."""
    return min(math.floor(percent * rows), percent * 5000)


@dataclass(frozen=True)
class FileScore:
    """A detector's NAB result on one file."""

    raw: float
    null: float
    perfect: float
    windows: int
    """Windows charged (those with at least one row after probation)."""
    windows_found: int
    false_positives: int
    """Detections outside every window, after probation (NAB's FP column counts rows too)."""

    @property
    def normalised(self) -> float | None:
        """``100 · (raw − null) / (perfect − null)``; None for a file without charged windows."""
        if self.perfect == self.null:
            return None
        return 100.0 * (self.raw - self.null) / (self.perfect - self.null)


def _check_windows(rows: int, windows: Sequence[tuple[int, int]]) -> None:
    previous = -1
    for a, b in windows:
        if not 0 <= a <= b < rows:
            raise ValueError(f"window ({a}, {b}) is not inside 0..{rows - 1}")
        if a <= previous:
            raise ValueError("windows must be sorted and must not overlap")
        previous = b


def _row_score(i: int, windows: Sequence[tuple[int, int]], costs: CostMatrix) -> tuple[int, float]:
    """(window index or −1, NAB's weighted score of a detection at row ``i``)."""
    max_tp = scaled_sigmoid(-1.0)
    before: tuple[int, int] | None = None
    for k, (a, b) in enumerate(windows):
        if a <= i <= b:
            position = -(b - i + 1) / (b - a + 1)
            return k, scaled_sigmoid(position) * costs.tp / max_tp
        if b < i:
            before = (a, b)
    if before is None:
        return -1, -1.0 * costs.fp
    a, b = before
    # NAB divides by (width − 1) = b − a, undefined for a one-row window: treat it as one row.
    position = abs(b - i) / float(max(b - a, 1))
    return -1, scaled_sigmoid(position) * costs.fp


def score_rows(
    rows: int,
    windows: Sequence[tuple[int, int]],
    detections: Iterable[int],
    costs: CostMatrix = STANDARD,
    probation_percent: float = PROBATION_PERCENT,
) -> FileScore:
    """NAB's score of detections (row indices) on a file of ``rows`` rows with ``windows``.

    ``windows`` are inclusive row spans, sorted and disjoint, as NAB's label timestamps map to
    rows. A window partly inside probation is charged and scored on its scorable rows.

    >>> s = score_rows(1000, [(10, 99), (800, 899)], [50, 810, 950])  # probation: 150 rows
    >>> s.windows, s.windows_found, s.false_positives, round(s.raw, 4)
    (1, 1, 1, 0.8969)
    """
    _check_windows(rows, windows)
    probation = probation_rows(rows, probation_percent)
    charged = [k for k, (_, b) in enumerate(windows) if b >= probation]
    best = dict.fromkeys(charged, -costs.fn)
    fp_total, fps = 0.0, 0
    for i in sorted(set(detections)):
        if not 0 <= i < rows:
            raise ValueError(f"detection at row {i} is outside the file (0..{rows - 1})")
        if i < probation:
            continue
        window, value = _row_score(i, windows, costs)
        if window < 0:
            fp_total += value
            fps += 1
        else:
            best[window] = max(best[window], value)
    found = sum(1 for v in best.values() if v > -costs.fn)
    return FileScore(
        raw=sum(best.values()) + fp_total,
        null=-costs.fn * len(charged),
        perfect=costs.tp * len(charged),
        windows=len(charged),
        windows_found=found,
        false_positives=fps,
    )


def score_times(
    times: Sequence[datetime],
    flags: Sequence[bool],
    windows: Sequence[tuple[datetime, datetime]],
    costs: CostMatrix = STANDARD,
) -> FileScore:
    """``score_rows`` on a file's timestamps: a window's ends must be timestamps of the file."""
    if len(times) != len(flags):
        raise ValueError("one flag per row is needed")
    index = {t: i for i, t in enumerate(times)}
    try:
        spans = [(index[a], index[b]) for a, b in windows]
    except KeyError as err:
        raise ValueError(f"window edge {err.args[0]} is not a timestamp of the file") from err
    return score_rows(len(times), spans, [i for i, hit in enumerate(flags) if hit], costs)


def score_thresholded(
    times: Sequence[datetime],
    anomaly_scores: Sequence[float],
    windows: Sequence[tuple[datetime, datetime]],
    threshold: float,
    costs: CostMatrix = STANDARD,
) -> FileScore:
    """NAB's way with a detector's per-row anomaly scores: every row scoring at least
    ``threshold`` is a detection (NAB's results CSVs hold such scores and thresholds).

    >>> from datetime import UTC, datetime, timedelta
    >>> ts = [datetime(2014, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(10)]
    >>> score_thresholded(ts, [0.1] * 5 + [0.9] + [0.1] * 4, [(ts[5], ts[7])], 0.5).raw
    1.0
    """
    return score_times(times, [s >= threshold for s in anomaly_scores], windows, costs)


# ---------------------------------------------------------------------------------------------
# NAB files


@dataclass(frozen=True)
class NabFile:
    """One NAB data file: timestamps (UTC), values and labelled windows."""

    name: str
    times: list[datetime]
    values: list[float]
    windows: list[tuple[datetime, datetime]]


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)


def read_file(path: Path, windows: Sequence[Sequence[str]]) -> NabFile:
    """Reads a NAB CSV (``timestamp,value``) and its window labels."""
    times: list[datetime] = []
    values: list[float] = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            times.append(_stamp(row["timestamp"]))
            values.append(float(row["value"]))
    spans = [(_stamp(a), _stamp(b)) for a, b in windows]
    return NabFile(path.name, times, values, spans)


def _labels(path: Path) -> Mapping[str, list[list[str]]]:
    labels: dict[str, list[list[str]]] = json.loads(path.read_text())
    return {Path(k).name: v for k, v in labels.items()}


def load_files(data_dir: Path = NAB_DIR, extra: Path | None = None) -> list[NabFile]:
    """The shared machine-temperature file, then every labelled CSV in ``extra`` (optional).

    ``extra`` is a folder of NAB CSVs with NAB's ``combined_windows.json`` beside them or in a
    ``labels/`` folder above (a NAB checkout's ``data/realKnownCause``).
    """
    shared = _labels(data_dir / "machine_temperature_windows.json")
    files = [read_file(data_dir / MACHINE_TEMPERATURE, shared[MACHINE_TEMPERATURE])]
    if extra is None:
        return files
    candidates = [
        extra / "combined_windows.json",
        extra.parent.parent / "labels" / "combined_windows.json",
    ]
    found = next((p for p in candidates if p.exists()), None)
    if found is None:
        raise FileNotFoundError(f"no combined_windows.json for {extra}")
    labels = _labels(found)
    wanted = [p for p in sorted(extra.glob("*.csv")) if p.name in labels]
    files.extend(read_file(p, labels[p.name]) for p in wanted if p.name != MACHINE_TEMPERATURE)
    return files


# ---------------------------------------------------------------------------------------------
# Detectors on NAB files: ours (one configuration for every file) and simple baselines

# NAB's published raw standard-profile scores (numenta/NAB results/<detector>/<detector>_standard
# _scores.csv, unchanged since 2016-11), per file.
PUBLISHED: dict[str, dict[str, float]] = {
    "machine_temperature_system_failure.csv": {
        "numenta (HTM)": 1.36013273774,
        "earthgeckoSkyline": 1.39988522238,
        "relativeEntropy": -0.916101489945,
        "windowedGaussian": -4.0,
    },
    "ambient_temperature_system_failure.csv": {
        "numenta (HTM)": -0.758599859273,
        "earthgeckoSkyline": 1.73112026714,
        "relativeEntropy": -1.39979253026,
        "windowedGaussian": -2.0,
    },
}
NAB_PROFILE = StorageProfile(profile_id="nab", name="NAB file", action_high=1e9)  # flags only


def ours(f: NabFile, models: Sequence[str] | None = None) -> list[bool]:
    """Our anomaly flags (onsets) on a file, with the processor's default configuration."""
    sensor = SensorModels()
    params = WarningParams()
    out: list[bool] = []
    for t, v in zip(f.times, f.values, strict=True):
        flags, _ = sensor.observe(t, v, NAB_PROFILE, params)
        out.append(any(models is None or x.model in models for x in flags))
    return out


def fixed_sigma(f: NabFile, k: float = 3.0) -> list[bool]:
    """Onsets of ``|value − mean| > k·sd`` with mean and sd of the probation rows."""
    head = f.values[: max(int(probation_rows(len(f.values))), 2)]
    mean = sum(head) / len(head)
    sd = math.sqrt(sum((v - mean) ** 2 for v in head) / len(head))
    out, was = [], False
    for v in f.values:
        now = abs(v - mean) > k * sd
        out.append(now and not was)
        was = now
    return out


def half_space_trees(f: NabFile, threshold: float = 0.9) -> list[bool]:
    """Onsets of river HalfSpaceTrees scores ≥ threshold, limits from the probation rows."""
    head = f.values[: int(probation_rows(len(f.values)))]
    low, high = min(head), max(head)
    span = high - low or 1.0
    model = anomaly.HalfSpaceTrees(n_trees=25, height=8, window_size=250, seed=42,
                                   limits={"value": (low - span, high + span)})  # fmt: skip
    out, was = [], False
    for i, v in enumerate(f.values):
        score = model.score_one({"value": v})  # type: ignore[no-untyped-call]
        model.learn_one({"value": v})  # type: ignore[no-untyped-call]
        now = i >= 250 and score >= threshold
        out.append(now and not was)
        was = now
    return out


def report(files: Sequence[NabFile]) -> None:
    """Prints the score table: ours, per detector, baselines and NAB's published figures."""
    runs: dict[str, Callable[[NabFile], list[bool]]] = {
        "ours: every flag (processor default)": ours,
        "ours: level only": lambda f: ours(f, ["level"]),
        "ours: door-open only": lambda f: ours(f, ["door_open"]),
        "baseline: fixed 3σ of probation": fixed_sigma,
        "baseline: river HalfSpaceTrees (0.9)": half_space_trees,
    }
    for f in files:
        period = (f.times[-1] - f.times[0]) / max(len(f.times) - 1, 1)
        print(f"\n== NAB {f.name}: {len(f.times)} rows (median step ≈ {period}),"
              f" {len(f.windows)} windows, standard profile")  # fmt: skip
        print(f"{'detector':<40} {'raw':>8} {'normalised':>10} {'windows':>8} {'FP':>4}")
        for name, run in runs.items():
            started = time.perf_counter()
            s = score_times(f.times, run(f), f.windows)
            took = time.perf_counter() - started
            norm = "—" if s.normalised is None else f"{s.normalised:.1f}"
            print(f"{name:<40} {s.raw:>8.3f} {norm:>10} {s.windows_found:>5}/{s.windows:<2}"
                  f" {s.false_positives:>4}   ({took:.1f} s)")  # fmt: skip
        null = -STANDARD.fn * len(f.windows)
        for name, raw in PUBLISHED.get(f.name, {}).items():
            published = 100 * (raw - null) / (-2 * null)
            print(f"{'published: ' + name:<40} {raw:>8.3f} {published:>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description="NAB scores of our detectors and baselines")
    parser.add_argument("--data-dir", type=Path, default=NAB_DIR)
    parser.add_argument("--extra", type=Path, default=None,
                        help="a NAB data/realKnownCause folder: score its files too")  # fmt: skip
    args = parser.parse_args()
    report(load_files(args.data_dir, args.extra))
    print("\n(published detectors use NAB's corpus-optimised thresholds; ours use the one"
          " configuration the processor runs everywhere)")  # fmt: skip


if __name__ == "__main__":
    main()
