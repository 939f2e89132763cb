"""The alarms room's pure core: rotas across daylight saving, policy choice, escalation moves,
quiet hours, and the masking of channel secrets."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from cloud.alarms import ConfigError
from cloud.alarms.channels import inspect_url
from cloud.alarms.directory import Directory, check_references, resolve
from cloud.alarms.escalation import Situation, decide
from cloud.alarms.kinds import KINDS, default_route
from cloud.alarms.policy import Contact, Group, Policy, QuietHours, Step, Target, choose_policy
from cloud.alarms.policy import quiet_until as quiet_end
from cloud.alarms.rota import Rota, RotaOverride, on_call

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 1, 7, 12, tzinfo=UTC)


def target(kind: str, name: str) -> Target:
    return Target.model_validate({"type": kind, "name": name})


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        # Daily hand-over at 08:00 local; CET→CEST on 2026-03-29 (08:00 local = 06:00 UTC after).
        (datetime(2026, 3, 28, 6, 59, tzinfo=UTC), "ana"),  # 07:59 CET: the 27th's shift
        (datetime(2026, 3, 28, 7, 0, tzinfo=UTC), "bo"),  # 08:00 CET on the 28th
        (datetime(2026, 3, 29, 5, 59, tzinfo=UTC), "bo"),  # 07:59 CEST on the 29th
        (datetime(2026, 3, 29, 6, 0, tzinfo=UTC), "cy"),  # 08:00 CEST on the 29th
        (datetime(2026, 10, 25, 7, 0, tzinfo=UTC), "cy"),  # 08:00 CET after the change back
    ],
)
def test_daily_rota_hands_over_at_local_time_across_dst(at: datetime, expected: str) -> None:
    # start 2026-03-27: the 27th is ana's, 28th bo's, 29th cy's, then ana again...
    rota = Rota(
        members=["ana", "bo", "cy"], handover=time(8), shift_days=1, start_date=date(2026, 3, 27)
    )
    assert on_call(rota, at, BERLIN) == expected


def test_rota_override_wins_while_it_lasts_and_rejects_inverted_span() -> None:
    rota = Rota(
        members=["ana"],
        start_date=date(2026, 1, 1),
        overrides=[RotaOverride(contact="bo", starts_at=NOW, ends_at=NOW + timedelta(hours=2))],
    )
    assert on_call(rota, NOW + timedelta(hours=1), BERLIN) == "bo"
    assert on_call(rota, NOW + timedelta(hours=2), BERLIN) == "ana"
    with pytest.raises(ValueError, match="end after"):
        RotaOverride(contact="bo", starts_at=NOW, ends_at=NOW)


def test_most_specific_policy_wins() -> None:
    step = [Step(notify=[target("contact", "ana")])]
    policies = {
        "site": Policy(steps=step),
        "fridges": Policy(profile_id="std-refrigerated", steps=step),
        "zone": Policy(location_id="zone-1", steps=step),
        "unit": Policy(location_id="fridge-a", steps=step),
        "only-gateways": Policy(location_id="fridge-a", kinds=["gateway_offline"], steps=step),
        "critical-only": Policy(location_id="fridge-a", min_severity="critical", steps=step),
    }
    chain = ["fridge-a", "zone-1"]

    def pick(kind: str, severity: str, locations: list[str], profile: str | None) -> str | None:
        got = choose_policy(
            policies, kind=kind, severity=severity, locations=locations, profile_id=profile
        )
        return None if got is None else got[0]

    assert pick("no_data", "critical", chain, "std-refrigerated") == "critical-only"
    assert pick("no_data", "warning", chain, "std-refrigerated") == "unit"
    assert pick("no_data", "warning", ["fridge-b", "zone-1"], "std-refrigerated") == "zone"
    assert pick("no_data", "warning", ["fridge-c"], "std-refrigerated") == "fridges"
    assert pick("no_data", "warning", [], None) == "site"
    assert pick("no_data", "info", [], None) is None  # below every min_severity


POLICY = Policy(
    steps=[
        Step(notify=[target("contact", "ana")], wait=timedelta(minutes=5)),
        Step(notify=[target("group", "qa")], wait=timedelta(minutes=10)),
    ],
    repeat_every=timedelta(minutes=30),
    max_rounds=3,
)


def test_escalation_walks_steps_then_repeats_then_stops() -> None:
    moves = []
    step, round_, now = -1, 0, NOW
    for _ in range(6):
        d = decide(Situation(policy=POLICY, route="page", step=step, round=round_, now=now))
        moves.append(
            (d.notify_step, d.round, None if d.next_at is None else d.next_at - now, d.finish)
        )
        if d.next_at is None:
            break
        step, round_, now = d.step, d.round, d.next_at
    assert moves == [
        (0, 0, timedelta(minutes=5), None),
        (1, 0, timedelta(minutes=30), None),  # the last step waits repeat_every
        (1, 1, timedelta(minutes=30), None),
        (1, 2, timedelta(minutes=30), None),
        (None, 2, None, "exhausted"),  # max_rounds reached
    ]


def test_notify_route_sends_first_step_once_and_holds_respect_severity() -> None:
    once = decide(Situation(policy=POLICY, route="notify", step=-1, round=0, now=NOW))
    assert (once.notify_step, once.finish) == (0, "notified")
    quiet = NOW + timedelta(hours=3)
    held = decide(Situation(POLICY, "page", -1, 0, NOW, quiet_until=quiet))
    assert (held.notify_step, held.held, held.next_at) == (None, "quiet_hours", quiet)
    loud = decide(Situation(POLICY, "page", -1, 0, NOW, quiet_until=quiet, critical=True))
    assert loud.notify_step == 0  # critical ignores quiet hours
    window = decide(Situation(POLICY, "page", -1, 0, NOW, critical=True, suppressed_until=quiet))
    assert (window.held, window.next_at) == ("suppressed", quiet)  # a window holds even critical
    after = decide(
        Situation(
            POLICY,
            "page",
            -1,
            0,
            quiet,
            critical=True,
            cleared=True,
            sticky=True,
            was_suppressed=True,
        )
    )
    assert after.finish == "cleared"  # over before the window ended: nobody is woken
    still = decide(Situation(POLICY, "page", 0, 0, quiet, critical=True, cleared=True, sticky=True))
    assert still.notify_step == 1  # an action-level excursion pages until acknowledged


def test_quiet_hours_wrap_midnight_in_site_time() -> None:
    q = QuietHours(start=time(22), end=time(6))
    assert quiet_end(q, datetime(2026, 1, 7, 21, 30, tzinfo=UTC), BERLIN) == datetime(
        2026, 1, 8, 6, tzinfo=BERLIN
    )
    assert quiet_end(q, datetime(2026, 1, 7, 4, tzinfo=UTC), BERLIN) == datetime(
        2026, 1, 7, 6, tzinfo=BERLIN
    )
    assert quiet_end(q, datetime(2026, 1, 7, 12, tzinfo=UTC), BERLIN) is None


def test_targets_resolve_to_each_channel_once_and_report_what_is_missing() -> None:
    d = Directory(
        channels={"ana-mail", "ana-sms", "bo-mail"},
        contacts={
            "ana": Contact(display_name="Ana", channels=["ana-mail", "ana-sms"]),
            "bo": Contact(display_name="Bo", channels=["bo-mail", "gone"]),
        },
        groups={"qa": Group(members=["ana", "bo", "cy"])},
    )
    got, problems = resolve(
        d, [target("group", "qa"), target("contact", "ana"), target("rota", "none")], NOW, BERLIN
    )
    assert [(r.channel, r.contact) for r in got] == [
        ("ana-mail", "ana"),
        ("ana-sms", "ana"),
        ("bo-mail", "bo"),
    ]
    assert problems == ["contact 'cy' does not exist", "rota 'none' does not exist"]
    with pytest.raises(ConfigError, match="channel 'nope'"):
        check_references(d, "contact", "x", Contact(display_name="X", channels=["nope"]))


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("mailtos://alarms:Pa55word!x@smtp.example.org?to=qa@example.org", "Pa55word!x"),
        (
            "twilio://AC0123456789abcdef0123456789abcdef:f00dfeedf00dfeedf00dfeedf00dfeed"
            "@15551234567/15557654321",
            "f00dfeedf00dfeedf00dfeedf00dfeed",
        ),
        ("tgram://123456789:AAHsecretbottokenvalue1234567890abcd/55555", "AAHsecretbottoken"),
        ("ntfys://ops:t0psecret@ntfy.example.org/coldtrace", "t0psecret"),
        ("json://hooks.example.org/in/9f8e7d6c5b4a39281706?+X-Token=abcdef123456", "9f8e7d6c5b4a"),
        ("jsons://user:hunter22@hooks.example.org/x", "hunter22"),
    ],
)
def test_masked_urls_never_hold_the_secret(url: str, secret: str) -> None:
    info = inspect_url(url)
    assert secret not in info.masked
    assert info.service


def test_invalid_urls_are_refused() -> None:
    for bad in ("bogus://x", "not a url", "mailto://x\n@y"):
        with pytest.raises(ConfigError):
            inspect_url(bad)


def test_every_known_kind_has_a_route() -> None:
    assert default_route("excursion_opened", "critical") == "page"
    assert default_route("anomaly", "info") == "none"  # door-open pattern
    assert all(default_route(k, v.severity) in ("page", "notify", "none") for k, v in KINDS.items())
