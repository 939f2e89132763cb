"""What an RFID dock door sees over time: pallets of tagged cases passing, tags parked nearby.

Pure and seeded (no I/O): the LLRP reader simulator asks :meth:`Scene.observe` which tags one
antenna reads in one inventory round at scene time ``t`` (seconds), and with what RSSI.

Geometry (metres): the door is the plane ``x = 0``; the yard (outside) is ``x < 0``, the
warehouse (inside) ``x > 0``. Pallets travel along the lane ``y = 0``. Antennas hang beside the
lane at ``y = 1.5`` and look across it (boresight towards ``-y``): antenna 1 outside at
``x = -1``, antenna 2 inside at ``x = +1`` (:func:`dock_door`).

Radio model, per read: RSSI = ``rssi_at_1m`` − 10·n·log10(d) − beam loss (quadratic in the angle
off boresight, capped) − wall loss (tag and antenna on opposite sides of the door plane) − the
tag's own loss (orientation, detuning by the product; fixed per tag) + Gaussian noise. The read
probability rises smoothly around the sensitivity, so weak tags are read sparsely.

>>> scene = dock_door(seed=3)
>>> load = pallet(sscc18("0614141", 1), gtin="00614141000012", cases=4)
>>> scene.add(PalletPass(load, start=0.0, direction="in"))
>>> seen = {epc for t in range(0, 100) for epc, _ in scene.observe(t * 0.1, 1)}
>>> seen == set(load)
True
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from typing import Literal, Protocol

from protocols.gs1.check_digit import gs1_check_digit
from protocols.gs1.epc import encode_sgtin96, encode_sscc96


@dataclass(frozen=True, slots=True)
class Antenna:
    """A reader antenna: position, boresight (radians, 0 = +x) and the side of the door."""

    id: int
    x: float
    y: float
    boresight: float = -math.pi / 2


@dataclass(frozen=True, slots=True)
class RadioModel:
    """Free-space-like path loss with a beam pattern; figures typical of a UHF dock portal."""

    rssi_at_1m: float = -40.0
    path_loss_exponent: float = 2.2
    beam_half_width_deg: float = 35.0
    beam_loss_cap_db: float = 30.0
    wall_loss_db: float = 8.0
    noise_db: float = 2.0
    sensitivity_dbm: float = -80.0
    max_read_probability: float = 0.95


class TagGroup(Protocol):
    """Something carrying tags in the scene: where each tag is at time ``t`` (if present)."""

    def positions(self, t: float) -> list[tuple[str, float, float]]: ...

    @property
    def end(self) -> float: ...


def _tag_offset(epc: str, spread: float) -> tuple[float, float, float]:
    """A fixed (dx, dy, loss dB) per tag, derived from its EPC: where it sits on the pallet."""
    h = hashlib.blake2b(epc.encode(), digest_size=6).digest()
    dx = (h[0] / 255 - 0.5) * spread
    dy = (h[1] / 255 - 0.5) * spread
    loss = h[2] / 255 * 6.0  # orientation and detuning by the contents
    return dx, dy, loss


@dataclass(frozen=True, slots=True)
class PalletPass:
    """A pallet driven through the door: from ``lane`` metres on one side to as far beyond."""

    epcs: tuple[str, ...]
    start: float
    direction: Literal["in", "out"]
    speed: float = 1.2
    lane: float = 6.0
    spread: float = 1.0
    y: float = 0.0

    @property
    def end(self) -> float:
        return self.start + 2 * self.lane / self.speed

    def x_at(self, t: float) -> float:
        travelled = (t - self.start) * self.speed
        return -self.lane + travelled if self.direction == "in" else self.lane - travelled

    def positions(self, t: float) -> list[tuple[str, float, float]]:
        if not self.start <= t <= self.end:
            return []
        x = self.x_at(t)
        out = []
        for epc in self.epcs:
            dx, dy, _ = _tag_offset(epc, self.spread)
            out.append((epc, x + dx, self.y + dy))
        return out


@dataclass(frozen=True, slots=True)
class ParkedTags:
    """Tags standing still near the door (staged goods, a pallet left in the lane)."""

    epcs: tuple[str, ...]
    x: float = 6.0
    y: float = -5.0
    start: float = 0.0
    until: float = math.inf
    spread: float = 1.0

    @property
    def end(self) -> float:
        return self.until

    def positions(self, t: float) -> list[tuple[str, float, float]]:
        if not self.start <= t <= self.until:
            return []
        out = []
        for epc in self.epcs:
            dx, dy, _ = _tag_offset(epc, self.spread)
            out.append((epc, self.x + dx, self.y + dy))
        return out


@dataclass(slots=True)
class Scene:
    """Antennas, a radio model and the tag groups present over time."""

    antennas: tuple[Antenna, ...]
    radio: RadioModel = field(default_factory=RadioModel)
    groups: list[TagGroup] = field(default_factory=list)
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - simulation noise, not security

    def add(self, group: TagGroup) -> None:
        """Add a pallet pass or parked tags (a simulator may do so while it runs)."""
        self.groups.append(group)

    @property
    def antenna_ids(self) -> tuple[int, ...]:
        return tuple(a.id for a in self.antennas)

    @property
    def end(self) -> float:
        """Scene time after which no finite group is present any more (0 if none)."""
        finite = [g.end for g in self.groups if math.isfinite(g.end)]
        return max(finite, default=0.0)

    def mean_rssi(self, antenna: Antenna, epc: str, x: float, y: float) -> float:
        """Expected RSSI (dBm) of a tag at (x, y), before noise."""
        r = self.radio
        dx, dy = x - antenna.x, y - antenna.y
        distance = max(math.hypot(dx, dy), 0.3)
        off = abs(math.atan2(dy, dx) - antenna.boresight)
        off = min(off, 2 * math.pi - off)
        beam = min(r.beam_loss_cap_db, 12.0 * (math.degrees(off) / r.beam_half_width_deg) ** 2)
        wall = r.wall_loss_db if (x < 0) != (antenna.x < 0) else 0.0
        _, _, own = _tag_offset(epc, 1.0)
        return r.rssi_at_1m - 10 * r.path_loss_exponent * math.log10(distance) - beam - wall - own

    def observe(self, t: float, antenna_id: int) -> list[tuple[str, int]]:
        """Tags read by ``antenna_id`` in one inventory round at time ``t``: (EPC, RSSI dBm)."""
        antenna = next((a for a in self.antennas if a.id == antenna_id), None)
        if antenna is None:
            return []
        r = self.radio
        rng = self._rng
        reads: list[tuple[str, int]] = []
        for group in self.groups:
            for epc, x, y in group.positions(t):
                rssi = self.mean_rssi(antenna, epc, x, y) + rng.gauss(0.0, r.noise_db)
                margin = rssi - (r.sensitivity_dbm + 5.0)
                p = r.max_read_probability / (1.0 + math.exp(-margin / 2.5))
                if rssi >= r.sensitivity_dbm and rng.random() < p:
                    reads.append((epc, max(-128, min(127, round(rssi)))))
        return reads


def dock_door(seed: int = 0, radio: RadioModel | None = None) -> Scene:
    """A dock door with antenna 1 outside and antenna 2 inside (see the module docstring)."""
    antennas = (Antenna(1, -1.0, 1.5), Antenna(2, 1.0, 1.5))
    return Scene(antennas, radio or RadioModel(), seed=seed)


def sscc18(company_prefix: str, serial_reference: int, extension: int = 1) -> str:
    """A valid 18-digit SSCC from a company prefix and a serial reference.

    >>> sscc18("0614141", 1)
    '106141410000000019'
    """
    body = f"{extension}{company_prefix}{serial_reference:0{16 - len(company_prefix)}d}"
    return body + str(gs1_check_digit(body))


def pallet(
    sscc: str, gtin: str, cases: int, first_serial: int = 1, prefix_len: int = 7
) -> tuple[str, ...]:
    """EPCs of one pallet: its SSCC-96 tag first, then one SGTIN-96 tag per case."""
    tags = [encode_sscc96(sscc, prefix_len)]
    tags += [encode_sgtin96(gtin, first_serial + i, prefix_len) for i in range(cases)]
    return tuple(tags)
