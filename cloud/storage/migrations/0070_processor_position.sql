-- The processor's position and a stream's stall (owner: cloud processing, issue 23).
--
-- processed_through moves from gateway_streams, which ingest locks for every batch it stores,
-- to processor_streams, which only processors lock: a processor no longer takes the ingest
-- row lock after its steps (while holding ledger_head), so one slow ingest transaction can no
-- longer freeze every ledger write, and a slow step never holds up ingest.
ALTER TABLE processor_streams
    ADD COLUMN processed_through bigint NOT NULL DEFAULT 0,
    ADD COLUMN failing_batch_id  bigint,         -- the batch the recorded failures are about
    ADD COLUMN failing_since     timestamptz,    -- first failure of that batch
    ADD COLUMN stalled_since     timestamptz,    -- failures reached the stall threshold
    ADD COLUMN updated_at        timestamptz NOT NULL DEFAULT now();

INSERT INTO processor_streams (gateway_id, boot_id)
SELECT gateway_id, boot_id FROM gateway_streams ON CONFLICT DO NOTHING;
UPDATE processor_streams c SET processed_through = s.processed_through
FROM gateway_streams s WHERE s.gateway_id = c.gateway_id AND s.boot_id = c.boot_id;
ALTER TABLE gateway_streams DROP COLUMN processed_through;

-- Stalled streams are few; health, the devices API and the silence checks look them up.
CREATE INDEX processor_streams_stalled ON processor_streams (gateway_id)
    WHERE stalled_since IS NOT NULL;

-- A batch an admin set aside so that its stream goes on (`coldtrace cloud stream skip`, the
-- admin API). Its records stay where ingest stored them, identified by (gateway, boot, seq
-- range); this row says they were never processed, why, and by whose decision. No foreign key
-- to ingest_batches: retention prunes processed bookkeeping, this record is kept.
CREATE TABLE quarantined_batches (
    batch_id     bigint PRIMARY KEY,
    gateway_id   text NOT NULL,
    boot_id      uuid NOT NULL,
    first_seq    bigint NOT NULL,
    last_seq     bigint NOT NULL,
    record_count integer NOT NULL,
    received_at  timestamptz NOT NULL,
    time_min     timestamptz,
    time_max     timestamptz,
    failures     integer NOT NULL,
    last_error   text,
    reason       text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    set_aside_by text NOT NULL,
    set_aside_at timestamptz NOT NULL DEFAULT now(),
    CHECK (first_seq <= last_seq)
);
CREATE INDEX quarantined_batches_stream ON quarantined_batches (gateway_id, boot_id, first_seq);

-- Processing raises its own alert kinds (stream_stalled, stream_resumed, batch_set_aside). The
-- fixed list of 0030 is dropped here; 0080 (alarms) replaces it with a check on the word form.
ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_kind_check;
