"""What to do with an alarm now: notify a step, wait, hold, or finish (pure).

The worker calls :func:`decide` whenever an alarm is due (when it is raised, when a step's wait
ran out, when a hold ends, or at once when a channel failed) and stores the decision.

>>> from datetime import UTC, datetime, timedelta
>>> from cloud.alarms.policy import Policy, Step, Target
>>> p = Policy(steps=[Step(notify=[Target(type="contact", name="ana")], wait=timedelta(minutes=5)),
...                   Step(notify=[Target(type="group", name="qa")])],
...            repeat_every=timedelta(minutes=30))
>>> now = datetime(2026, 1, 1, tzinfo=UTC)
>>> first = decide(Situation(policy=p, route="page", step=-1, round=0, now=now))
>>> first.notify_step, first.next_at - now
(0, datetime.timedelta(seconds=300))
>>> decide(Situation(policy=p, route="page", step=0, round=0, now=now, acknowledged=True)).finish
'acknowledged'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cloud.alarms.kinds import Route
from cloud.alarms.policy import Policy


@dataclass(frozen=True)
class Situation:
    """An alarm's progress and what is true of it now."""

    policy: Policy | None
    route: Route
    step: int
    """The last step notified; -1 before the first."""
    round: int
    now: datetime
    acknowledged: bool = False
    critical: bool = False
    cleared: bool = False
    """The condition is over (the excursion ended, the gateway is back)."""
    sticky: bool = False
    """Needs a person's acknowledgement even once over (an action-level excursion: product
    was put at risk), unless it was held through a suppression window."""
    suppressed_until: datetime | None = None
    quiet_until: datetime | None = None
    was_suppressed: bool = False


@dataclass(frozen=True)
class Decision:
    step: int
    round: int
    notify_step: int | None = None
    """The step whose targets are notified now (its round is ``round``)."""
    next_at: datetime | None = None
    held: str | None = None
    finish: str | None = None


def decide(s: Situation) -> Decision:
    """The next move of an alarm in situation ``s``."""
    finish = _finished(s)
    if finish is not None:
        return Decision(s.step, s.round, finish=finish)
    assert s.policy is not None  # _finished ends an alarm without a policy
    if s.suppressed_until is not None and s.now < s.suppressed_until:
        return Decision(s.step, s.round, next_at=s.suppressed_until, held="suppressed")
    if s.cleared and (s.was_suppressed or not s.sticky):
        # The condition is over and nobody needs waking for it; the alarm list still shows it.
        return Decision(s.step, s.round, finish="cleared")
    if s.quiet_until is not None and not s.critical and s.now < s.quiet_until:
        return Decision(s.step, s.round, next_at=s.quiet_until, held="quiet_hours")
    return _advance(s, s.policy)


def _finished(s: Situation) -> str | None:
    if s.acknowledged:
        return "acknowledged"
    if s.policy is None:
        return "no_policy"
    if s.route == "none":
        return "not_routed"
    return None


def _advance(s: Situation, policy: Policy) -> Decision:
    steps = policy.steps
    if s.route == "notify":
        if s.step >= 0:
            return Decision(s.step, s.round, finish="notified")
        return Decision(0, 0, notify_step=0, finish="notified")
    nxt = s.step + 1
    last = len(steps) - 1
    if nxt <= last:
        at = _after(s, policy, nxt)
        return Decision(
            nxt, s.round, notify_step=nxt, next_at=at, finish=None if at else "exhausted"
        )
    if policy.repeat_every is None or s.round + 1 >= policy.max_rounds:
        return Decision(s.step, s.round, finish="exhausted")
    return Decision(
        last, s.round + 1, notify_step=last, next_at=_after(s, policy, last, repeat=True)
    )


def _after(s: Situation, policy: Policy, step: int, *, repeat: bool = False) -> datetime | None:
    """When the alarm is due again after notifying ``step``; None when nothing follows."""
    if step < len(policy.steps) - 1 and not repeat:
        return s.now + policy.steps[step].wait
    if policy.repeat_every is None:
        return None
    return s.now + policy.repeat_every
