"""MQTT topic patterns with named captures.

A pattern is an MQTT topic filter in which a whole level may be written ``{name}``: it matches
one level, like ``+``, and keeps its text under ``name``. ``+`` and ``#`` keep their MQTT
meaning (``#`` only as the last level). Topics starting with ``$`` are not matched by a leading
wildcard, as MQTT requires.

>>> p = TopicPattern.parse("application/+/device/{dev_eui}/event/up")
>>> p.subscription
'application/+/device/+/event/up'
>>> p.match("application/7/device/24e124136b502217/event/up")
{'dev_eui': '24e124136b502217'}
>>> p.match("application/7/device/x/event/join") is None
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CAPTURE = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_MULTI = "#"
_SINGLE = "+"


class TopicPatternError(ValueError):
    """A topic pattern is not a valid MQTT filter with captures."""


@dataclass(frozen=True)
class _Level:
    literal: str | None = None
    capture: str | None = None
    multi: bool = False


@dataclass(frozen=True)
class TopicPattern:
    """A parsed topic pattern; build it with :meth:`parse`."""

    text: str
    levels: tuple[_Level, ...]

    @classmethod
    def parse(cls, text: str) -> TopicPattern:
        """Parses ``text``; raises :class:`TopicPatternError` when it is not a valid pattern.

        >>> TopicPattern.parse("tele/{device}/SENSOR").names
        ('device',)
        >>> TopicPattern.parse("a/#/b")
        Traceback (most recent call last):
        ...
        protocols.payloads.topics.TopicPatternError: '#' must be the last level of 'a/#/b'
        """
        if not text or "\x00" in text or len(text.encode()) > 65535:
            raise TopicPatternError(f"not a valid MQTT topic filter: {text!r}")
        parts = text.split("/")
        levels: list[_Level] = []
        names: set[str] = set()
        for index, part in enumerate(parts):
            levels.append(_parse_level(text, part, last=index == len(parts) - 1))
            name = levels[-1].capture
            if name is not None:
                if name in names:
                    raise TopicPatternError(f"capture {{{name}}} appears twice in {text!r}")
                names.add(name)
        return cls(text, tuple(levels))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(level.capture for level in self.levels if level.capture is not None)

    @property
    def subscription(self) -> str:
        """The MQTT topic filter to subscribe to (captures become ``+``)."""
        return "/".join(_filter_text(level) for level in self.levels)

    def match(self, topic: str) -> dict[str, str] | None:
        """The captures when ``topic`` matches, else None."""
        parts = topic.split("/")
        if topic.startswith("$") and self.levels and self.levels[0].literal is None:
            return None
        captures: dict[str, str] = {}
        for index, level in enumerate(self.levels):
            if level.multi:
                return captures
            if index >= len(parts):
                return None
            if level.literal is not None and level.literal != parts[index]:
                return None
            if level.capture is not None:
                captures[level.capture] = parts[index]
        return captures if len(parts) == len(self.levels) else None


def _parse_level(text: str, part: str, *, last: bool) -> _Level:
    if part == _MULTI:
        if not last:
            raise TopicPatternError(f"'#' must be the last level of {text!r}")
        return _Level(multi=True)
    if part == _SINGLE:
        return _Level()
    capture = _CAPTURE.match(part)
    if capture:
        return _Level(capture=capture.group(1))
    if any(ch in part for ch in "+#{}"):
        raise TopicPatternError(
            f"level {part!r} of {text!r} mixes wildcards or braces with text; "
            "a wildcard or capture must be a whole level"
        )
    return _Level(literal=part)


def _filter_text(level: _Level) -> str:
    if level.multi:
        return _MULTI
    if level.literal is not None:
        return level.literal
    return _SINGLE
