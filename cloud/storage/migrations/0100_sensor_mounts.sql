-- Where each sensor was mounted, and from when: a backlog is judged at the location the sensor
-- had at each reading's time (cloud/coldchain/mounts.py), not where it is now.
-- ``sensors`` keeps the current mount (every other reader uses it); a trigger copies each
-- (mounted_at, location) it is given into this history, so mounts written by SQL (the demo,
-- older tools) are recorded as well. A row with valid_from '-infinity' covers all earlier time.
CREATE TABLE sensor_mounts (
    sensor_id    text NOT NULL REFERENCES sensors ON DELETE CASCADE,
    valid_from   timestamptz NOT NULL,
    location_id  text REFERENCES locations,      -- NULL: unmounted from valid_from on
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sensor_id, valid_from)
);

INSERT INTO sensor_mounts (sensor_id, valid_from, location_id)
SELECT sensor_id, mounted_at, location_id FROM sensors;

CREATE FUNCTION sensor_mounts_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- the same mount time again corrects that mount rather than adding one
    INSERT INTO sensor_mounts (sensor_id, valid_from, location_id)
    VALUES (NEW.sensor_id, NEW.mounted_at, NEW.location_id)
    ON CONFLICT (sensor_id, valid_from)
    DO UPDATE SET location_id = EXCLUDED.location_id, recorded_at = now();
    RETURN NULL;
END
$$;

CREATE TRIGGER sensors_mount_history
AFTER INSERT OR UPDATE OF location_id, mounted_at ON sensors
FOR EACH ROW EXECUTE FUNCTION sensor_mounts_record();
