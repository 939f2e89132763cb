-- Hourly and daily rollups of readings per sensor (owner: cloud ingest / jobs).
-- With the Timescale licence they are continuous aggregates refreshed by TimescaleDB's own
-- policies; with the Apache build or plain PostgreSQL they are tables the scheduled rollup job
-- keeps up to date with incremental upserts. Both have the same columns, so readers do not care.
-- Bad-quality readings (no trustworthy value) are left out of both.

CREATE TABLE rollup_progress (
    name           text PRIMARY KEY,
    stored_through timestamptz          -- NULL: nothing folded in yet
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
       AND current_setting('timescaledb.license', true) = 'timescale' THEN
        EXECUTE $q$
            CREATE MATERIALIZED VIEW readings_hourly WITH (timescaledb.continuous) AS
            SELECT sensor_id, time_bucket(INTERVAL '1 hour', time) AS bucket,
                   count(value) AS samples, min(value) AS min_value,
                   avg(value) AS avg_value, max(value) AS max_value
            FROM readings WHERE quality <> 'bad' AND value IS NOT NULL
            GROUP BY sensor_id, time_bucket(INTERVAL '1 hour', time)
            WITH NO DATA $q$;
        EXECUTE $q$
            CREATE MATERIALIZED VIEW readings_daily WITH (timescaledb.continuous) AS
            SELECT sensor_id, time_bucket(INTERVAL '1 day', bucket) AS bucket,
                   sum(samples)::bigint AS samples, min(min_value) AS min_value,
                   sum(avg_value * samples) / sum(samples) AS avg_value,
                   max(max_value) AS max_value
            FROM readings_hourly
            GROUP BY sensor_id, time_bucket(INTERVAL '1 day', bucket)
            WITH NO DATA $q$;
        -- start_offset NULL: late backlogs of any age are folded in (only invalidated ranges
        -- are recomputed, so this stays cheap).
        PERFORM add_continuous_aggregate_policy('readings_hourly', start_offset => NULL,
            end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute');
        PERFORM add_continuous_aggregate_policy('readings_daily', start_offset => NULL,
            end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes');
    ELSE
        CREATE TABLE readings_hourly (
            sensor_id  text NOT NULL,
            bucket     timestamptz NOT NULL,
            samples    bigint NOT NULL,
            min_value  float8,
            avg_value  float8,
            max_value  float8,
            PRIMARY KEY (sensor_id, bucket)
        );
        CREATE TABLE readings_daily (LIKE readings_hourly INCLUDING ALL);
    END IF;
END $$;
