-- Sensors that went silent (owner: cloud jobs). A row is opened when a sensor has not been seen
-- for its silence interval (its location's storage profile, or the configured default) and
-- closed when it is seen again. The cold-chain engine and the dashboards read open rows: a silent
-- sensor never reads as "in range".

CREATE TABLE device_silences (
    silence_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id     text NOT NULL REFERENCES devices,
    last_seen_at  timestamptz NOT NULL,       -- device time of the last reading before silence
    silence_after interval NOT NULL,
    detected_at   timestamptz NOT NULL,
    ended_at      timestamptz,                -- when the job saw it again
    resumed_at    timestamptz,                -- device time of the first reading after silence
    CHECK (ended_at IS NULL OR ended_at >= detected_at)
);
CREATE UNIQUE INDEX device_silences_open ON device_silences (device_id) WHERE ended_at IS NULL;
CREATE INDEX device_silences_device ON device_silences (device_id, detected_at DESC);
