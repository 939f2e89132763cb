-- Alarms that reach people (issue 14): channels, contacts, rotas and escalation policies per
-- site, the escalation state of every alert, the delivery outbox and its attempt log, planned
-- suppression windows, and the closing of excursions with root cause and corrective action.
-- Owner: cloud/alarms/. Plain PostgreSQL.

-- New alert kinds come from several rooms (alarms, processing, ingest); a fixed list in a CHECK
-- would make each of them rewrite it. Kinds stay machine words; cloud/alarms/kinds.py knows them.
ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_kind_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_kind_word CHECK (kind ~ '^[a-z][a-z0-9_]{0,47}$');

-- A notification target: an Apprise URL (mailto://, ntfys://, msteams://, twilio://, json://…).
-- The URL may hold credentials: the API never returns it, only a masked form.
CREATE TABLE alarm_channels (
    channel_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id         text NOT NULL REFERENCES sites,
    name            text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    url             text NOT NULL,
    service         text NOT NULL,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0,
    last_success_at timestamptz,
    last_failure_at timestamptz,
    last_error      text,
    UNIQUE (site_id, name)
);

-- Contacts, groups, rotas and policies: typed documents (cloud/alarms/policy.py, rota.py),
-- validated with their references by the API before they are written.
CREATE TABLE alarm_config (
    site_id     text NOT NULL REFERENCES sites,
    kind        text NOT NULL CHECK (kind IN ('contact', 'group', 'rota', 'policy')),
    name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    spec        jsonb NOT NULL,
    updated_by  text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, kind, name)
);

-- The escalation state of each alert. A row is made by the trigger below in the transaction
-- that raises the alert, so no alert escapes routing, whoever raised it.
CREATE TABLE alarms (
    alert_id      bigint PRIMARY KEY REFERENCES alerts,
    site_id       text REFERENCES sites,
    policy        text,
    route         text,
    step          integer NOT NULL DEFAULT -1,     -- -1: not yet routed
    round         integer NOT NULL DEFAULT 0,
    next_at       timestamptz,                     -- NULL: nothing more to do
    held          text CHECK (held IN ('quiet_hours', 'suppressed')),
    finished_at   timestamptz,
    finish_reason text,
    problems      text,                            -- targets that could not be resolved
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alarms_due ON alarms (next_at) WHERE next_at IS NOT NULL;

CREATE FUNCTION alarms_intake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alarms (alert_id, next_at) VALUES (NEW.alert_id, now());
    PERFORM pg_notify('coldtrace_alarms', NEW.alert_id::text);
    RETURN NEW;
END $$;
CREATE TRIGGER alerts_alarm_intake AFTER INSERT ON alerts
    FOR EACH ROW EXECUTE FUNCTION alarms_intake();

-- The delivery outbox: one row per (alert, channel, step, round), claimed by a lease taken with
-- SKIP LOCKED, so several processes share it and a crashed sender's rows are taken up again.
CREATE TABLE alarm_deliveries (
    delivery_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id        bigint NOT NULL REFERENCES alerts,
    channel_id      bigint NOT NULL REFERENCES alarm_channels,
    contact         text,
    step            integer NOT NULL,
    round           integer NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_until   timestamptz,
    sent_at         timestamptz,
    last_error      text,
    -- The one-time acknowledgement link: the token is kept only until the message is final,
    -- its hash for as long as the link is valid.
    ack_token       text,
    ack_token_hash  bytea UNIQUE,
    ack_token_used_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (alert_id, channel_id, step, round)
);
CREATE INDEX alarm_deliveries_due ON alarm_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alarm_deliveries_alert ON alarm_deliveries (alert_id);

CREATE TABLE alarm_delivery_attempts (
    delivery_id bigint NOT NULL REFERENCES alarm_deliveries,
    attempt     integer NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    outcome     text NOT NULL CHECK (outcome IN ('sent', 'failed', 'given_up')),
    error       text,
    PRIMARY KEY (delivery_id, attempt)
);

-- Planned suppression: maintenance or defrost of one unit. Readings are still stored and judged;
-- only the notifications wait for the window's end.
CREATE TABLE alarm_suppressions (
    window_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    location_id  text NOT NULL REFERENCES locations,
    kind         text NOT NULL CHECK (kind IN ('maintenance', 'defrost', 'other')),
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    reason       text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    cancelled_at timestamptz,
    cancelled_by text,
    CHECK (ends_at > starts_at)
);
CREATE INDEX alarm_suppressions_location ON alarm_suppressions (location_id, ends_at);

-- Closing an excursion's investigation: root cause and corrective action, by whom and when.
CREATE TABLE excursion_closures (
    excursion_id      bigint PRIMARY KEY REFERENCES excursions,
    root_cause        text NOT NULL,
    root_cause_detail text,
    corrective_action text,
    corrective_action_detail text,
    comment           text,
    closed_by         text NOT NULL,
    closed_at         timestamptz NOT NULL DEFAULT now()
);
