"""Alarms that reach people: channels, contacts, rotas, escalation policies, delivery, suppression.

Every alert (``cloud.coldchain.alerts``, the condition job here, other rooms) gets an ``alarms``
row in the transaction that raises it (a trigger). The ``AlarmWorker`` routes it through the
site's escalation policy, queues one delivery per channel in the ``alarm_deliveries`` outbox,
sends them with Apprise after commit, and escalates until someone acknowledges.

Pure core: ``kinds`` (what each alert kind means by default), ``policy`` (policy documents and
the choice of policy), ``rota`` (who is on call), ``escalation`` (what to do next), ``message``
(what a notification says). I/O: ``channels`` (Apprise), ``store`` (SQL), ``worker``,
``conditions`` (the scheduled detection job), ``actions`` (acknowledge, close, suppress).

Exception tree::

    AlarmError
    ├── ConfigError            a channel URL, policy or rota is invalid or names what is missing
    └── ActionRefusedError     an acknowledgement, closure or window the rules do not allow
        └── NotFoundError      the alert, excursion, window or link does not exist (any more)
"""

from __future__ import annotations


class AlarmError(RuntimeError):
    """Something in the alarms room could not be done."""


class ConfigError(AlarmError, ValueError):
    """Alarm configuration that cannot work (bad URL, unknown contact, empty policy)."""


class ActionRefusedError(AlarmError):
    """A person's action the rules refuse (closing without a root cause, a used link)."""


class NotFoundError(ActionRefusedError):
    """The thing acted upon does not exist."""
