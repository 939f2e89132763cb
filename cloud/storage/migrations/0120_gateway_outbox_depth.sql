-- The gateway's outbox depth as its last batch of the stream reported it (the batch's optional
-- "outbox" field): records waiting at the gateway, that batch included, and how long the oldest
-- had waited, on the gateway's clock. NULL for gateways that do not report it.
ALTER TABLE gateway_streams
    ADD COLUMN outbox_pending bigint CHECK (outbox_pending >= 0),
    ADD COLUMN outbox_oldest_age interval;
