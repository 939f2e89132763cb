"""The ordered list of processor steps (see ``cloud.processing.steps``).

Each part adds its step here, in the order correlate → rules → anomaly → receiving → ledger.
"""

from __future__ import annotations

from cloud.processing.steps import Step


def default_steps() -> list[Step]:
    steps: list[Step] = []
    return steps
