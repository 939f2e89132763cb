-- Ingest and processor bookkeeping beyond schema v1 (owner: cloud ingest).

-- Gateways are found by the sha256 of their bearer token; one token, one gateway.
CREATE UNIQUE INDEX gateways_token_hash ON gateways (token_hash);

-- The device-time span of a batch's readings and tag reads, so the processor can rebuild a
-- batch with chunk exclusion instead of probing every chunk's index.
ALTER TABLE ingest_batches
    ADD COLUMN time_min timestamptz,
    ADD COLUMN time_max timestamptz;

-- The processor's claim on a stream. Processors lock this row (FOR UPDATE SKIP LOCKED), not the
-- gateway_streams row ingest locks, so a slow domain step never holds up the stream's ingest.
CREATE TABLE processor_streams (
    gateway_id   text NOT NULL,
    boot_id      uuid NOT NULL,
    failures     integer NOT NULL DEFAULT 0,
    last_error   text,
    retry_at     timestamptz,
    PRIMARY KEY (gateway_id, boot_id),
    FOREIGN KEY (gateway_id, boot_id) REFERENCES gateway_streams ON DELETE CASCADE
);

-- Incremental rollups find newly stored readings by arrival; BRIN stays tiny because rows are
-- appended in stored_at order within each chunk.
CREATE INDEX readings_stored_at_brin ON readings USING brin (stored_at);

-- When last_state was reported (a device reported offline was not "seen" then).
ALTER TABLE devices ADD COLUMN state_at timestamptz;
