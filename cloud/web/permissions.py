"""What the signed-in person may do on the dashboard, so pages offer only those buttons.

The server refuses the actions by role anyway (``cloud.web.session``: ``ResponderAction``,
``QualityAction``); this only keeps an operator from being shown a Release button that would
answer "role qa required".
"""

from __future__ import annotations

from dataclasses import dataclass

from cloud.auth.model import Role, User


@dataclass(frozen=True)
class Can:
    acknowledge: bool = False
    """Acknowledge alarms and excursions: operators, QA, admins."""
    dispose: bool = False
    """Release or reject quarantined stock: QA and admins."""
    close: bool = False
    """Close an ended excursion with root cause and corrective action: QA and admins (as
    ``POST /v1/excursions/{id}/closure``)."""

    @classmethod
    def of(cls, user: User) -> Can:
        """The same role rules as the actions' server-side checks.

        >>> from cloud.auth.model import User
        >>> Can.of(User("op", Role.OPERATOR)), Can.of(User("v", Role.VIEWER)).dispose
        (Can(acknowledge=True, dispose=False, close=False), False)
        """
        quality = user.allows(Role.QA)
        return cls(acknowledge=user.allows(Role.OPERATOR, Role.QA), dispose=quality, close=quality)
