-- coldtrace: no-transaction
-- The read API serves buckets of an hour or more from readings_hourly, reading from readings
-- only the hours still queued for the rollup job (owner: cloud read API / jobs). It asks the
-- queue which hours of one sensor are pending; without this index that is a scan of the whole
-- queue, which grows while the job is behind. Built concurrently: ingest keeps queueing.
CREATE INDEX CONCURRENTLY IF NOT EXISTS rollup_queue_sensor_hour ON rollup_queue (sensor_id, hour);
