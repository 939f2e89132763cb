-- Cold chain (issue 7): profile fields the engine needs, the standard profiles, excursion
-- identity and escalation, per-sensor state and replay checkpoints, alerts and their webhook
-- outbox. Plain PostgreSQL: nothing here depends on TimescaleDB.

ALTER TABLE storage_profiles
    ADD COLUMN freeze_threshold float8 NOT NULL DEFAULT 0,
    ADD COLUMN mkt_window       interval NOT NULL DEFAULT interval '24 hours',
    ADD COLUMN mkt_limit        float8,
    ADD COLUMN standard         boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT storage_profiles_alert_inside CHECK (
        (alert_low IS NULL OR action_low IS NULL OR alert_low >= action_low) AND
        (alert_high IS NULL OR action_high IS NULL OR alert_high <= action_high));

-- The standard profiles (cloud/coldchain/profiles.py STANDARD_PROFILES holds the same numbers).
INSERT INTO storage_profiles (profile_id, name, action_low, action_high, alert_low, alert_high,
                              on_delay, off_delay, deadband, freeze_damage, freeze_threshold,
                              silence_after, mkt_window, mkt_limit, standard) VALUES
    ('std-refrigerated', 'Refrigerated 2–8 °C', 2, 8, 3, 7,
     '15 minutes', '10 minutes', 0.5, true, 0, '15 minutes', '24 hours', 8, true),
    ('std-frozen', 'Frozen −25 to −15 °C', -25, -15, -23, -17,
     '15 minutes', '10 minutes', 1, false, 0, '15 minutes', '24 hours', NULL, true),
    ('std-controlled-room', 'Controlled room 20–25 °C (15–30 °C excursions allowed)', 15, 30, 20, 25,
     '30 minutes', '15 minutes', 0.5, false, 0, '30 minutes', '30 days', 25, true),
    ('std-ultra-cold', 'Ultra-cold −90 to −60 °C', -90, -60, -85, -65,
     '10 minutes', '10 minutes', 1, false, 0, '15 minutes', '24 hours', NULL, true)
ON CONFLICT (profile_id) DO NOTHING;

ALTER TABLE excursions
    ADD COLUMN profile_id   text REFERENCES storage_profiles,
    ADD COLUMN confirmed_at timestamptz,      -- reading time at which the on-delay had elapsed
    ADD COLUMN escalated_at timestamptz,      -- reading time of the alert → action escalation
    ADD COLUMN frozen       boolean NOT NULL DEFAULT false,
    ADD COLUMN quarantined_lots bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN updated_at   timestamptz NOT NULL DEFAULT now();
-- One excursion per (sensor, kind, first breaching reading): replays upsert, never duplicate.
CREATE UNIQUE INDEX excursions_identity ON excursions (sensor_id, kind, started_at);
CREATE INDEX excursions_location_time ON excursions (location_id, started_at DESC);
CREATE INDEX excursions_sensor_open ON excursions (sensor_id) WHERE ended_at IS NULL;

-- Per-sensor state of the rules (JSON) and anomaly models (pickle), written by the processor in
-- the batch's transaction.
CREATE TABLE coldchain_sensor_state (
    sensor_id   text PRIMARY KEY,
    gateway_id  text,
    last_time   timestamptz,
    state       jsonb NOT NULL,
    models      bytea,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX coldchain_sensor_state_gateway ON coldchain_sensor_state (gateway_id, last_time);

-- Rule state as of a reading time, so late readings can be replayed from just before them.
CREATE TABLE coldchain_checkpoints (
    sensor_id   text NOT NULL,
    as_of       timestamptz NOT NULL,
    state       jsonb NOT NULL,
    PRIMARY KEY (sensor_id, as_of)
);

-- The alarm list. dedup_key makes a replayed batch raise nothing twice.
CREATE TABLE alerts (
    alert_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    raised_at       timestamptz NOT NULL DEFAULT now(),
    at              timestamptz NOT NULL,          -- reading time the alert is about
    kind            text NOT NULL CHECK (kind IN ('excursion_opened', 'excursion_escalated',
                        'excursion_closed', 'quarantine', 'early_warning', 'anomaly',
                        'no_data')),
    severity        text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    location_id     text REFERENCES locations,
    sensor_id       text,
    excursion_id    bigint REFERENCES excursions,
    message         text NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb,
    dedup_key       text NOT NULL UNIQUE,
    acknowledged_at timestamptz,
    acknowledged_by text,
    ack_note        text
);
CREATE INDEX alerts_unacknowledged ON alerts (raised_at DESC) WHERE acknowledged_at IS NULL;
CREATE INDEX alerts_location ON alerts (location_id, at DESC);

-- Webhook outbox: written with the alert, delivered after commit by the alert deliverer.
CREATE TABLE alert_outbox (
    alert_id        bigint PRIMARY KEY REFERENCES alerts,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    given_up_at     timestamptz,
    last_error      text
);
CREATE INDEX alert_outbox_pending ON alert_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND given_up_at IS NULL;
