from __future__ import annotations

import doctest
import importlib

import pytest
from pydantic import ValidationError

from protocols.payloads import DecoderSpec, TopicPattern, TopicPatternError

MODULES = [
    "protocols.payloads",
    "protocols.payloads.common",
    "protocols.payloads.topics",
    "protocols.payloads.spec",
    "protocols.payloads.coldtrace_json",
    "protocols.payloads.chirpstack",
    "protocols.payloads.milesight",
    "protocols.payloads.tasmota",
    "protocols.payloads.shelly",
    "protocols.payloads.router",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("tele/{device}/SENSOR", "tele/fridge-1/SENSOR", {"device": "fridge-1"}),
        ("tele/{device}/SENSOR", "tele/fridge-1/STATE", None),
        ("tele/{device}/SENSOR", "tele/a/b/SENSOR", None),
        ("a/+/{x}", "a/b/c", {"x": "c"}),
        ("a/#", "a", {}),
        ("a/#", "a/b/c", {}),
        ("{site}/#", "s1/x/y", {"site": "s1"}),
        ("#", "$SYS/broker/uptime", None),
        ("+/status", "$SYS/status", None),
        ("$SYS/#", "$SYS/broker", {}),
        ("a/b", "a/b/", None),
        ("a/+", "a/", {}),
    ],
)
def test_pattern_matching(pattern: str, topic: str, expected: dict[str, str] | None) -> None:
    assert TopicPattern.parse(pattern).match(topic) == expected


@pytest.mark.parametrize(
    "pattern", ["", "a/#/b", "a/b#", "a/x+", "a/{x}y", "{x}/{x}", "a/{1x}", "a\x00b"]
)
def test_invalid_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(TopicPatternError):
        TopicPattern.parse(pattern)


def test_subscription_replaces_captures_with_plus() -> None:
    pattern = TopicPattern.parse("{site}/status/temperature:0")
    assert pattern.subscription == "+/status/temperature:0"
    assert pattern.names == ("site",)


def test_spec_refuses_unknown_template_fields() -> None:
    with pytest.raises(ValidationError, match="available"):
        DecoderSpec(
            topic="tele/{device}/SENSOR",
            format="tasmota",
            sensor_id="{dev}/{sensor}",
            timezone="UTC",
        )


def test_tasmota_needs_a_timezone() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        DecoderSpec(topic="tele/{device}/SENSOR", format="tasmota", sensor_id="{device}")


def test_unknown_timezone_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        DecoderSpec(
            topic="tele/{d}/SENSOR", format="tasmota", sensor_id="{d}", timezone="Mars/Base"
        )


def test_shelly_needs_a_template() -> None:
    with pytest.raises(ValidationError, match="sensor_id"):
        DecoderSpec(topic="{d}/status/temperature:0", format="shelly-gen2")


def test_template_with_format_spec_is_refused() -> None:
    with pytest.raises(ValidationError, match="plain name"):
        DecoderSpec(topic="x/{d}", format="coldtrace-json", sensor_id="{d!r}")


def test_bad_topic_in_spec_is_refused() -> None:
    with pytest.raises(ValidationError, match="last level"):
        DecoderSpec(topic="a/#/b", format="coldtrace-json")
