-- A tag read's quality, as readings have one: 'uncertain' when its times are not the reader's
-- clock (mapped from the uptime of a reader whose clock was never set, or the gateway's receipt
-- time when the reader sent none). Rows stored before were timed by a set clock or receipt and
-- did not say which: they keep 'good', as gateways that do not send the field do.
ALTER TABLE tag_reads
    ADD COLUMN quality text NOT NULL DEFAULT 'good'
        CHECK (quality IN ('good', 'uncertain', 'bad'));
