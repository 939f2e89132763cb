-- Site-scoped gateways and judged time (issue 12 items 1 and 3; owner: cloud ingest).
--
-- A gateway writes only for its own site. Ingest stores what it refuses for that reason as a
-- dead letter made by the cloud (refusal set, the record's JSON in raw) instead of in the
-- record's table, so it is never judged but is kept for an admin; counts per gateway and reason
-- live in gateway_refusals. See docs/security.md, "Site-scoped gateways and judged time".

-- Why the cloud refused the record; NULL for a dead letter the gateway itself made.
ALTER TABLE dead_letters
    ADD COLUMN refusal text CHECK (refusal IN ('foreign_site', 'foreign_device', 'no_site')),
    ADD COLUMN record_kind text;
CREATE INDEX dead_letters_stored_at ON dead_letters (stored_at DESC);

-- Refusals per gateway and reason, for the device API: cloud refusals stored as dead letters,
-- records answered 422 (the gateway then sends them as dead letters) and dead letters the
-- gateway made. 'refused' counts refusal events: a record refused again on a resend counts again.
CREATE TABLE gateway_refusals (
    gateway_id  text NOT NULL REFERENCES gateways,
    reason      text NOT NULL,
    refused     bigint NOT NULL DEFAULT 0 CHECK (refused >= 0),
    last_at     timestamptz NOT NULL,
    last_detail text,
    PRIMARY KEY (gateway_id, reason)
);

-- The gateway's clock against the cloud's: the last batch's sent_at and the cloud's receipt
-- time. Kept on the stream row ingest already locks, so it costs no extra lock.
ALTER TABLE gateway_streams
    ADD COLUMN last_sent_at timestamptz,
    ADD COLUMN last_received_at timestamptz;

-- Gateways registered before sites were required: with exactly one site there is only one
-- answer. Otherwise they stay without a site and may write only for devices bound to no site.
UPDATE gateways SET site_id = (SELECT min(site_id) FROM sites)
WHERE site_id IS NULL AND (SELECT count(*) FROM sites) = 1;
