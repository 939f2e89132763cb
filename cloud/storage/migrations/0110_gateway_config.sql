-- Gateway configuration from the cloud (owner: cloud/gateway_config/). The configuration a
-- gateway runs is built from master data: its sources (an OPC-UA server, an MQTT broker, an
-- LLRP reader), where each sensor is read on them (NodeId or topic: the sensor's transport
-- attributes), its dock doors, and the storage profile of each sensor's location.

CREATE TABLE gateway_sources (
    gateway_id   text NOT NULL REFERENCES gateways,
    name         text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('opcua', 'mqtt', 'llrp')),
    settings     jsonb NOT NULL DEFAULT '{}'::jsonb,   -- endpoint, broker_url, host, timings
    credentials  jsonb NOT NULL DEFAULT '{}'::jsonb,   -- username/password: hidden from readonly
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, name)
);

-- One row per sensor: the source it is read from and its address there.
CREATE TABLE sensor_points (
    sensor_id    text PRIMARY KEY,
    gateway_id   text NOT NULL,
    source_name  text NOT NULL,
    address      text NOT NULL,                        -- OPC-UA NodeId or MQTT topic
    payload      jsonb NOT NULL DEFAULT '{}'::jsonb,   -- MQTT: decoder (format, fields)
    updated_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (gateway_id, source_name) REFERENCES gateway_sources ON DELETE CASCADE,
    UNIQUE (gateway_id, source_name, address)
);

CREATE TABLE gateway_doors (
    gateway_id        text NOT NULL,
    door_id           text NOT NULL,
    reader_name       text NOT NULL,
    outside_antennas  integer[] NOT NULL,
    inside_antennas   integer[] NOT NULL,
    settings          jsonb NOT NULL DEFAULT '{}'::jsonb,  -- thresholds (rssi, min_reads, ...)
    PRIMARY KEY (gateway_id, door_id),
    FOREIGN KEY (gateway_id, reader_name) REFERENCES gateway_sources ON DELETE CASCADE
);

-- Every configuration a gateway was offered, numbered; the newest is the current one.
CREATE TABLE gateway_config_versions (
    gateway_id   text NOT NULL REFERENCES gateways,
    version      integer NOT NULL CHECK (version >= 1),
    digest       text NOT NULL,
    sections_with_credentials jsonb NOT NULL,           -- as served; hidden from readonly
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, version)
);

-- What the gateway last said it runs, and the last version it refused with its reason.
ALTER TABLE gateways
    ADD COLUMN config_applied_version integer,
    ADD COLUMN config_applied_at      timestamptz,
    ADD COLUMN config_refused_version integer,
    ADD COLUMN config_refused_reason  text,
    ADD COLUMN config_refused_at      timestamptz;
