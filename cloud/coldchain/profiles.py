"""Storage profiles: the temperature bands a storage unit must keep, and how breaches are judged.

Semantics (the same numbers drive the state machine in ``excursions``):

- **Action limits** ``[action_low, action_high]`` are the labelled storage range: outside them the
  product is at risk. An action-level excursion quarantines the lots at the location.
- **Alert limits** ``[alert_low, alert_high]`` lie inside (or on) the action limits (they
  default to them when not given): outside them
  staff are warned before the product is at risk (for controlled room temperature the alert band
  is the labelled 20–25 °C and the action band the allowed 15–30 °C excursion range).
- A reading **breaches** a limit when it is strictly above a high limit or strictly below a low
  limit. A value on the limit is inside.
- **On-delay**: a breach counts only once it has lasted at least ``on_delay``, measured on reading
  time from the first breaching reading to the current one; any reading back inside the limit
  before then restarts the clock (a door opened for a minute does not open an excursion). With
  ``on_delay = 0`` the first breaching reading opens it.
- **Deadband** and **off-delay**: an open excursion closes when readings are back inside its alert
  limit by more than ``deadband`` (``value < alert_high - deadband``) continuously for at least
  ``off_delay``; a reading in the deadband restarts the off clock without re-breaching.
- **Freeze damage**: when set, a reading at or below ``freeze_threshold`` opens an action-level
  low excursion at once, without the on-delay (freezing is damage by itself).
- **Silence**: no reading for longer than ``silence_after`` opens a ``no_data`` condition.
- **MKT window**: the USP <1079.2> window over which mean kinetic temperature is judged (24 h for
  refrigerated products, 30 days rolling for controlled room temperature), and its limit.

>>> p = STANDARD_PROFILES["std-refrigerated"]
>>> (p.action_low, p.action_high, p.alert_low, p.alert_high)
(2.0, 8.0, 3.0, 7.0)
>>> p.level_of(8.5), p.level_of(7.5), p.level_of(5.0)
('action', 'alert', None)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloud.coldchain import ProfileError

Level = Literal["alert", "action"]
Side = Literal["high", "low"]
SIDES: tuple[Side, Side] = ("high", "low")

ProfileId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class StorageProfile(BaseModel):
    """A storage profile (see the module docstring for the exact semantics)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    profile_id: ProfileId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    action_low: float | None = None
    action_high: float | None = None
    alert_low: float | None = None
    alert_high: float | None = None
    on_delay: timedelta = timedelta(0)
    off_delay: timedelta = timedelta(0)
    deadband: Annotated[float, Field(ge=0)] = 0.0
    freeze_damage: bool = False
    freeze_threshold: float = 0.0
    silence_after: timedelta = timedelta(minutes=15)
    mkt_window: timedelta = timedelta(hours=24)
    mkt_limit: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _alert_defaults_to_action(cls, data: object) -> object:
        # A profile stored with action limits only warns at those limits.
        if isinstance(data, dict):
            data = dict(data)
            for side in ("low", "high"):
                if data.get(f"alert_{side}") is None and data.get(f"action_{side}") is not None:
                    data[f"alert_{side}"] = data[f"action_{side}"]
        return data

    @model_validator(mode="after")
    def _consistent(self) -> StorageProfile:
        for name in ("on_delay", "off_delay", "silence_after", "mkt_window"):
            if getattr(self, name) < timedelta(0):
                raise ProfileError(f"{name} must not be negative")
        if self.silence_after <= timedelta(0) or self.mkt_window <= timedelta(0):
            raise ProfileError("silence_after and mkt_window must be positive")
        if self.action_low is None and self.action_high is None:
            raise ProfileError("a profile needs at least one action limit")
        if (self.action_low is None and self.alert_low is not None) or (
            self.action_high is None and self.alert_high is not None
        ):
            raise ProfileError("an alert limit needs the action limit of its side")
        low, high = self.alert_low, self.alert_high
        if low is not None and self.action_low is not None and low < self.action_low:
            raise ProfileError("alert_low must not be below action_low")
        if high is not None and self.action_high is not None and high > self.action_high:
            raise ProfileError("alert_high must not be above action_high")
        if low is not None and high is not None and high - low <= 2 * self.deadband:
            raise ProfileError("the deadband must be less than half the alert band")
        return self

    def limit(self, side: Side, level: Level) -> float | None:
        """The limit of one side at one level (None when that side is unlimited)."""
        if side == "high":
            return self.alert_high if level == "alert" else self.action_high
        return self.alert_low if level == "alert" else self.action_low

    def breaches(self, value: float, side: Side, level: Level) -> bool:
        """Whether ``value`` is strictly outside the limit of ``side`` at ``level``."""
        bound = self.limit(side, level)
        if bound is None:
            return False
        return value > bound if side == "high" else value < bound

    def recovered(self, value: float, side: Side) -> bool:
        """Whether ``value`` is inside the alert limit of ``side`` by more than the deadband."""
        bound = self.limit(side, "alert")
        if bound is None:
            return True
        return value < bound - self.deadband if side == "high" else value > bound + self.deadband

    def frozen(self, value: float) -> bool:
        """Whether ``value`` is freeze damage for this profile."""
        return self.freeze_damage and value <= self.freeze_threshold

    def level_of(self, value: float) -> Level | None:
        """The worst level ``value`` breaches, ignoring delays (None when in range)."""
        for level in ("action", "alert"):
            if self.breaches(value, "high", level) or self.breaches(value, "low", level):
                return level
        return None

    def in_range(self, value: float) -> bool:
        """Whether ``value`` is inside the action (labelled) range: used for time out of range."""
        return not (self.breaches(value, "high", "action") or self.breaches(value, "low", "action"))


def _std(profile_id: str, name: str, **kw: object) -> StorageProfile:
    return StorageProfile.model_validate({"profile_id": profile_id, "name": name, **kw})


STANDARD_PROFILES: dict[str, StorageProfile] = {
    p.profile_id: p
    for p in (
        _std(
            "std-refrigerated",
            "Refrigerated 2–8 °C",
            action_low=2.0,
            action_high=8.0,
            alert_low=3.0,
            alert_high=7.0,
            on_delay=timedelta(minutes=15),
            off_delay=timedelta(minutes=10),
            deadband=0.5,
            freeze_damage=True,
            freeze_threshold=0.0,
            silence_after=timedelta(minutes=15),
            mkt_window=timedelta(hours=24),
            mkt_limit=8.0,
        ),
        _std(
            "std-frozen",
            "Frozen −25 to −15 °C",
            action_low=-25.0,
            action_high=-15.0,
            alert_low=-23.0,
            alert_high=-17.0,
            on_delay=timedelta(minutes=15),
            off_delay=timedelta(minutes=10),
            deadband=1.0,
            silence_after=timedelta(minutes=15),
            mkt_window=timedelta(hours=24),
        ),
        _std(
            "std-controlled-room",
            "Controlled room 20–25 °C (15–30 °C excursions allowed)",
            action_low=15.0,
            action_high=30.0,
            alert_low=20.0,
            alert_high=25.0,
            on_delay=timedelta(minutes=30),
            off_delay=timedelta(minutes=15),
            deadband=0.5,
            silence_after=timedelta(minutes=30),
            mkt_window=timedelta(days=30),
            mkt_limit=25.0,
        ),
        _std(
            "std-ultra-cold",
            "Ultra-cold −90 to −60 °C",
            action_low=-90.0,
            action_high=-60.0,
            alert_low=-85.0,
            alert_high=-65.0,
            on_delay=timedelta(minutes=10),
            off_delay=timedelta(minutes=10),
            deadband=1.0,
            silence_after=timedelta(minutes=15),
            mkt_window=timedelta(hours=24),
        ),
    )
}
"""The standard profiles, seeded by migration 0030 (``custom`` ones are created through the API)."""
