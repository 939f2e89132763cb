-- When a gateway last reached the cloud with its token (any gateway route: batches, its
-- configuration poll, door list, browse requests, heartbeats), written at most about every 30 s
-- (cloud/ingest/auth.py), and the heartbeat interval its agent last reported. The alarm
-- gateway_offline counts from the latest of creation, last stored batch and last contact, and
-- waits at least three heartbeat intervals. NULL: never in contact / never sent a heartbeat.
ALTER TABLE gateways
    ADD COLUMN last_contact_at    timestamptz,
    ADD COLUMN heartbeat_interval interval
        CHECK (heartbeat_interval BETWEEN interval '10 seconds' AND interval '1 hour');
