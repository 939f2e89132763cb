-- coldtrace: no-transaction
-- The processor's claim walks unprocessed batches in arrival order (owner: cloud processing).
-- With it, a claim costs what is pending, not how many streams exist: with 200,000 idle streams
-- the old claim (join of every stream, sort by updated_at) was a sequential scan and a sort.
-- Built concurrently so ingest keeps writing ingest_batches while it builds.
CREATE INDEX CONCURRENTLY IF NOT EXISTS ingest_batches_unprocessed ON ingest_batches (batch_id)
    WHERE processed_at IS NULL;
