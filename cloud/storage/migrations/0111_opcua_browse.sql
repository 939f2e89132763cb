-- OPC-UA browsing through a gateway (owner: cloud/gateway_config/browse.py): an administrator
-- asks, the gateway's agent takes the request on its next poll, browses the server's address
-- space and posts the nodes it found; the administrator then picks the nodes to read.
CREATE TABLE opcua_browse_requests (
    request_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gateway_id    text NOT NULL REFERENCES gateways,
    source_name   text NOT NULL,
    start_node    text NOT NULL,
    depth         integer NOT NULL CHECK (depth BETWEEN 1 AND 10),
    requested_by  text NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    taken_at      timestamptz,
    answered_at   timestamptz,
    nodes         jsonb,
    truncated     boolean NOT NULL DEFAULT false,
    error         text,
    FOREIGN KEY (gateway_id, source_name) REFERENCES gateway_sources ON DELETE CASCADE
);
CREATE INDEX opcua_browse_open ON opcua_browse_requests (gateway_id, request_id)
    WHERE answered_at IS NULL;
