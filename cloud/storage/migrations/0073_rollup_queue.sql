-- Rollups that cost what changed, daily rollups in the site's time zone (owner: cloud jobs,
-- issue 23).
--
-- Ingest records the (sensor, hour) buckets each batch touches in rollup_queue, in the batch's
-- transaction; the rollup job takes queue rows, recomputes those hours from readings and the
-- sites' local days around them from the hours, and deletes the rows it took. A transaction
-- that commits late makes its queue rows visible late, and they are taken then: nothing is
-- skipped (the old stored_at watermark lost rows of transactions that committed after it).
CREATE TABLE rollup_queue (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sensor_id text NOT NULL,
    hour      timestamptz NOT NULL,             -- UTC hour the readings fall in
    queued_at timestamptz NOT NULL DEFAULT now()
);

-- readings_daily holds local days: bucket is the site's local midnight (a day of 23 or 25 hours
-- across a DST change), local_date and time_zone say which. With the Timescale licence it was a
-- continuous aggregate over UTC days; it becomes a table the job keeps, like elsewhere.
DO $$
DECLARE
    -- A continuous aggregate is a view; the tables the job keeps are tables.
    cagg_daily boolean := (SELECT relkind FROM pg_class
                           WHERE oid = to_regclass('readings_daily')) = 'v';
    cagg_hourly boolean := (SELECT relkind FROM pg_class
                            WHERE oid = to_regclass('readings_hourly')) = 'v';
BEGIN
    -- Every UTC day with data gets its local days recomputed: the hours at its start and end
    -- fall in the (at most two) local days that overlap it.
    IF cagg_daily THEN
        EXECUTE $q$
            INSERT INTO rollup_queue (sensor_id, hour)
            SELECT sensor_id, h FROM readings_daily,
                   LATERAL (VALUES (bucket), (bucket + interval '23 hours')) AS v(h) $q$;
        EXECUTE 'DROP MATERIALIZED VIEW readings_daily';
        CREATE TABLE readings_daily (
            sensor_id  text NOT NULL,
            bucket     timestamptz NOT NULL,
            samples    bigint NOT NULL,
            min_value  float8,
            avg_value  float8,
            max_value  float8,
            PRIMARY KEY (sensor_id, bucket)
        );
    ELSE
        INSERT INTO rollup_queue (sensor_id, hour)
        SELECT sensor_id, h FROM readings_daily,
               LATERAL (VALUES (bucket), (bucket + interval '23 hours')) AS v(h);
        DELETE FROM readings_daily;
    END IF;
    IF cagg_hourly THEN
        -- Daily rows are computed from the hours: let reads see the not yet materialised tail.
        EXECUTE 'ALTER MATERIALIZED VIEW readings_hourly SET'
                ' (timescaledb.materialized_only = false)';
    ELSE
        -- Readings stored since the last pass of the old job: their hours are queued too.
        INSERT INTO rollup_queue (sensor_id, hour)
        SELECT DISTINCT sensor_id, date_bin('1 hour', time, '2000-01-01 00:00:00+00')
        FROM readings
        WHERE stored_at > coalesce(
            (SELECT stored_through FROM rollup_progress WHERE name = 'readings'), '-infinity');
    END IF;
END $$;

ALTER TABLE readings_daily
    ADD COLUMN local_date date,
    ADD COLUMN time_zone  text;

DROP TABLE rollup_progress;
