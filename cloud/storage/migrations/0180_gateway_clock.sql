-- The gateway's clock as last measured: the sent_at (gateway's clock) of its last stored batch or
-- heartbeat, whichever came last, and the cloud's receipt of it. clock_sent_at -
-- clock_received_at is the clock skew GET /v1/gateways, the admin page and the gateway panel
-- show and the alarm clock_skew judges, so an idle gateway that only beats keeps it fresh.
-- NULL: neither a batch nor a heartbeat yet.
ALTER TABLE gateways
    ADD COLUMN clock_sent_at     timestamptz,
    ADD COLUMN clock_received_at timestamptz;

UPDATE gateways g
SET clock_sent_at = s.last_sent_at, clock_received_at = s.last_received_at
FROM (
    SELECT DISTINCT ON (gateway_id) gateway_id, last_sent_at, last_received_at
    FROM gateway_streams
    WHERE last_received_at IS NOT NULL
    ORDER BY gateway_id, last_received_at DESC
) s
WHERE s.gateway_id = g.gateway_id;
