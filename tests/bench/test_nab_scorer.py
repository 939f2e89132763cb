"""The NAB scorer against NAB's published per-file scores, and its edge rules.

Test vectors: numenta/NAB at commit ea702d7 (MIT), ``results/<detector>/<detector>_standard_
scores.csv`` (published raw standard-profile score per file) and
``results/<detector>/realKnownCause/<detector>_<file>.csv`` (per-row anomaly scores): the rows
below are those whose anomaly score reaches the detector's published threshold, after
probation; window spans are ``labels/combined_windows.json`` mapped to row indices of
``data/realKnownCause/<file>.csv``.
"""

from __future__ import annotations

import doctest
import math

import pytest

import bench.nab
from bench.nab import (
    MACHINE_TEMPERATURE,
    NAB_DIR,
    STANDARD,
    CostMatrix,
    load_files,
    probation_rows,
    scaled_sigmoid,
    score_rows,
    score_thresholded,
    score_times,
)

MACHINE = (22695, [(2126, 2692), (3703, 4269), (16057, 16623), (19232, 19798)])
AMBIENT = (7267, [(3540, 3902), (5999, 6361)])  # ambient_temperature_system_failure, hourly

# (file, detector): (published raw score, detection rows)
PUBLISHED: dict[tuple[str, str], tuple[float, list[int]]] = {
    ("machine", "numenta"): (1.36013273774, [2147, 2173, 2405, 3969, 7170, 9703, 14558, 14560,
                                             16219, 16699]),
    ("machine", "relativeEntropy"): (-0.916101489945, [829, 842, 850, 3962, 3968, 3974, 3980,
                                     3986, 3998, 4002, 4007, 4015, 4027, 4036, 4046, 18045,
                                     18051, 18062, 18075, 19376, 19389, 19403, 19775, 19781,
                                     19792]),
    ("machine", "knncad"): (-2.8564112107743633, [1769, 2019, 3598, 3749, 3965, 5624, 5830,
                            7292, 9404, 9678, 11659, 12870, 14025, 14919, 15175, 16031, 17033,
                            18043, 19771, 21020, 22401]),
    ("machine", "earthgeckoSkyline"): (1.39988522238, [3969, 15163, 16338, 16637, 16972, 18023,
                                       19322, 19466, 19610, 19754]),
    ("machine", "bayesChangePt"): (-3.3198993642, [11671, 15132, 19147, 19772, 21016]),
    ("machine", "contextOSE"): (-0.164969541073, [2374, 3904]),
    ("machine", "null"): (-4.0, []),
    ("ambient", "numenta"): (-0.758599859273, [1131, 1209, 1800, 1820, 1825, 3697, 3698, 3752,
                                               5058]),
    ("ambient", "knncad"): (-0.7676052952277256, [780, 2115, 3098, 3540, 3697, 4229, 5082,
                            5883, 7047]),
    ("ambient", "earthgeckoSkyline"): (1.73112026714, [3719, 6177, 6189]),
    ("ambient", "htmjava"): (1.33702652595, [1800, 1804, 1820, 1824, 3697, 3698, 6172]),
    ("ambient", "null"): (-2.0, []),
}  # fmt: skip


@pytest.mark.parametrize(("key"), sorted(PUBLISHED))
def test_published_per_file_scores(key: tuple[str, str]) -> None:
    rows, windows = MACHINE if key[0] == "machine" else AMBIENT
    published, detections = PUBLISHED[key]
    assert score_rows(rows, windows, detections).raw == pytest.approx(published, abs=1e-9)


def test_published_htm_normalised_on_machine_temperature() -> None:
    # NAB's results since 2016-11: numenta HTM 1.360 raw, 67.0 normalised on this file.
    rows, windows = MACHINE
    score = score_rows(rows, windows, PUBLISHED[("machine", "numenta")][1])
    assert score.normalised == pytest.approx(67.0, abs=0.05)
    # NAB lists TP 5 rows (in 3 windows) and FP 5 rows for it.
    assert (score.null, score.perfect, score.windows_found, score.false_positives) == (
        -4.0, 4.0, 3, 5,
    )  # fmt: skip


def test_a_window_entirely_inside_probation_is_not_charged() -> None:
    # 1,000 rows: probation is the first 150; the first window ends at row 120.
    score = score_rows(1000, [(100, 120), (500, 599)], [])
    assert (score.raw, score.windows, score.null, score.perfect) == (-1.0, 1, -1.0, 1.0)
    # A detection inside it counts for nothing either way.
    assert score_rows(1000, [(100, 120), (500, 599)], [100]).raw == -1.0
    # A window reaching past probation is charged and scored on its scorable rows only.
    partly = score_rows(1000, [(100, 199), (500, 599)], [120, 160])
    expected = scaled_sigmoid(-(199 - 160 + 1) / 100) / scaled_sigmoid(-1.0) - 1.0
    assert partly.windows == 2
    assert partly.raw == pytest.approx(expected)
    assert score_rows(1000, [(100, 199)], []).windows == 1


def test_probation_length() -> None:
    assert probation_rows(22695) == 750  # capped at 15 % of 5,000
    assert probation_rows(1000) == 150
    assert probation_rows(7) == 1


def test_far_past_a_window_is_strictly_beyond_three() -> None:
    assert scaled_sigmoid(3.0) == pytest.approx(2 / (1 + math.exp(15)) - 1)
    assert scaled_sigmoid(3.0) > -1.0
    assert scaled_sigmoid(3.000001) == -1.0
    # Window (200, 299): width 100, so a detection 3 widths − 1 rows after row 299 sits at 3.0.
    exactly_three = score_rows(1000, [(200, 299)], [299 + 3 * 99])
    assert exactly_three.raw == pytest.approx(-1.0 + STANDARD.fp * scaled_sigmoid(3.0))


def test_false_positive_before_the_first_window_costs_the_full_weight() -> None:
    score = score_rows(1000, [(600, 699)], [200], CostMatrix(fp=0.22))
    assert score.raw == pytest.approx(-1.0 - 0.22)
    assert score.false_positives == 1


def test_only_the_earliest_detection_of_a_window_counts() -> None:
    one = score_rows(1000, [(600, 699)], [600])
    many = score_rows(1000, [(600, 699)], [600, 650, 699])
    assert one.raw == many.raw == pytest.approx(1.0)
    assert many.windows_found == 1
    assert many.normalised == pytest.approx(100.0)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        score_rows(100, [(10, 20)], [100])
    with pytest.raises(ValueError, match="sorted"):
        score_rows(100, [(30, 40), (10, 20)], [])
    with pytest.raises(ValueError, match="inside"):
        score_rows(100, [(90, 120)], [])


def test_the_shared_file_is_read_relative_to_the_repository() -> None:
    assert bench.nab.REPO.parent / "shared" / "nab" == NAB_DIR
    (machine,) = load_files()
    assert machine.name == MACHINE_TEMPERATURE
    assert len(machine.times) == MACHINE[0]
    flags = [False] * len(machine.times)
    for i in PUBLISHED[("machine", "numenta")][1]:
        flags[i] = True
    score = score_times(machine.times, flags, machine.windows)
    assert score.raw == pytest.approx(1.36013273774, abs=1e-9)
    # The same through per-row scores and NAB's threshold for numenta (0.542187690735): a row
    # exactly at the threshold is a detection, one just below is not.
    threshold = 0.542187690735
    scores = [threshold if hit else threshold - 1e-9 for hit in flags]
    by_scores = score_thresholded(machine.times, scores, machine.windows, threshold)
    assert by_scores.raw == score.raw


def test_module_examples() -> None:
    assert doctest.testmod(bench.nab).failed == 0
