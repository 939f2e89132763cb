-- Sensors mounted without a mounting time ('-infinity', "mounted for ever") that have never
-- reported: the condition job notes when it first saw each, so "never reported" can count from
-- then (owner: cloud/alarms/conditions.py). A row goes once the sensor reports.
CREATE TABLE alarm_unseen_sensors (
    sensor_id   text PRIMARY KEY,
    location_id text NOT NULL,
    noticed_at  timestamptz NOT NULL
);
