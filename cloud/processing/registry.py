"""The ordered list of processor steps (see ``cloud.processing.steps``).

Each part adds its step here, in the order correlate → rules → anomaly → receiving → ledger.
"""

from __future__ import annotations

from cloud.coldchain.step import ColdChainStep
from cloud.processing.steps import Step
from cloud.receiving.step import ReceivingStep


def default_steps() -> list[Step]:
    steps: list[Step] = []
    steps.append(ColdChainStep())  # rules + anomaly: excursions, early warning, quarantine
    steps.append(ReceivingStep())  # receiving: after correlate, rules and anomaly
    return steps
