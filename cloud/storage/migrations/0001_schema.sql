-- Schema v1: master data, time series, ingest bookkeeping, excursions, ledger, audit.
-- Time series become hypertables when TimescaleDB is installed in this database, plain tables
-- with a BRIN index on time otherwise (see the DO block at the end).

CREATE TABLE sites (
    site_id      text PRIMARY KEY,
    name         text NOT NULL,
    timezone     text NOT NULL DEFAULT 'UTC',
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE storage_profiles (
    profile_id        text PRIMARY KEY,
    name              text NOT NULL,
    -- action limits: outside them the product is at risk; alert limits sit inside them
    action_low        float8,
    action_high       float8,
    alert_low         float8,
    alert_high        float8,
    on_delay          interval NOT NULL DEFAULT interval '0',
    off_delay         interval NOT NULL DEFAULT interval '0',
    deadband          float8 NOT NULL DEFAULT 0 CHECK (deadband >= 0),
    freeze_damage     boolean NOT NULL DEFAULT false,
    silence_after     interval NOT NULL DEFAULT interval '15 minutes',
    CHECK (action_low IS NULL OR action_high IS NULL OR action_low < action_high)
);

CREATE TABLE locations (
    location_id  text PRIMARY KEY,
    site_id      text NOT NULL REFERENCES sites,
    parent_id    text REFERENCES locations,
    kind         text NOT NULL CHECK (kind IN ('zone', 'fridge', 'freezer', 'room', 'dock_door',
                                               'shelf', 'transit', 'other')),
    name         text NOT NULL,
    profile_id   text REFERENCES storage_profiles,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX locations_site ON locations (site_id);

CREATE TABLE gateways (
    gateway_id   text PRIMARY KEY,
    site_id      text REFERENCES sites,
    token_hash   bytea NOT NULL,       -- sha256 of the gateway token; the token itself is not kept
    created_at   timestamptz NOT NULL DEFAULT now(),
    disabled_at  timestamptz
);

CREATE TABLE devices (
    device_id    text PRIMARY KEY,
    device_type  text NOT NULL CHECK (device_type IN ('sensor', 'llrp_reader', 'antenna',
                                                      'opcua_server', 'mqtt_broker', 'gateway')),
    gateway_id   text REFERENCES gateways,
    location_id  text REFERENCES locations,
    attributes   jsonb NOT NULL DEFAULT '{}'::jsonb,
    last_seen_at timestamptz,
    last_state   text,
    last_detail  text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
    gtin          char(14) PRIMARY KEY CHECK (gtin ~ '^[0-9]{14}$'),
    name          text NOT NULL,
    profile_id    text NOT NULL REFERENCES storage_profiles,
    -- cumulative time out of range the product tolerates over its life
    stability_budget interval NOT NULL DEFAULT interval '0'
);

CREATE TABLE lots (
    lot_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gtin         char(14) NOT NULL REFERENCES products,
    lot_number   text NOT NULL,
    expiry       date,
    status       text NOT NULL DEFAULT 'available'
                 CHECK (status IN ('available', 'quarantined', 'released', 'rejected',
                                   'recalled', 'expired')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (gtin, lot_number)
);

CREATE TABLE units (
    epc_uri      text PRIMARY KEY,            -- urn:epc:id:sgtin:… or urn:epc:id:sscc:…
    unit_kind    text NOT NULL CHECK (unit_kind IN ('sgtin', 'sscc')),
    lot_id       bigint REFERENCES lots,      -- set for serialized trade items
    parent_uri   text REFERENCES units,       -- the logistic unit (SSCC) holding it
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX units_lot ON units (lot_id);
CREATE INDEX units_parent ON units (parent_uri);

CREATE TABLE asns (
    asn_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id      text NOT NULL REFERENCES sites,
    reference    text NOT NULL,
    supplier     text,
    expected_at  timestamptz,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'received', 'closed')),
    document     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, reference)
);

CREATE TABLE asn_items (
    asn_id       bigint NOT NULL REFERENCES asns,
    epc_uri      text NOT NULL,
    unit_kind    text NOT NULL CHECK (unit_kind IN ('sgtin', 'sscc')),
    parent_uri   text,
    gtin         char(14),
    lot_number   text,
    expiry       date,
    PRIMARY KEY (asn_id, epc_uri)
);

-- Ingest bookkeeping -------------------------------------------------------------------------

-- One row per (gateway, boot): the idempotency guard. A record is stored iff its seq is above
-- stored_through; the row is locked while a batch is written, so resends change nothing.
CREATE TABLE gateway_streams (
    gateway_id      text NOT NULL REFERENCES gateways,
    boot_id         uuid NOT NULL,
    stored_through  bigint NOT NULL DEFAULT 0,
    processed_through bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, boot_id)
);

CREATE TABLE ingest_batches (
    batch_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gateway_id   text NOT NULL,
    boot_id      uuid NOT NULL,
    first_seq    bigint NOT NULL,
    last_seq     bigint NOT NULL,
    record_count integer NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    FOREIGN KEY (gateway_id, boot_id) REFERENCES gateway_streams,
    CHECK (first_seq <= last_seq)
);
CREATE INDEX ingest_batches_pending ON ingest_batches (gateway_id, boot_id, first_seq)
    WHERE processed_at IS NULL;

-- Time series --------------------------------------------------------------------------------

CREATE TABLE readings (
    time         timestamptz NOT NULL,        -- device time, as the device sent it
    sensor_id    text NOT NULL,
    value        float8,
    unit         text NOT NULL DEFAULT 'degC',
    quality      text NOT NULL CHECK (quality IN ('good', 'uncertain', 'bad')),
    received_at  timestamptz NOT NULL,        -- gateway receipt time
    stored_at    timestamptz NOT NULL DEFAULT now(),
    gateway_id   text NOT NULL,
    boot_id      uuid NOT NULL,
    seq          bigint NOT NULL,
    UNIQUE (gateway_id, boot_id, seq, time)
);
CREATE INDEX readings_sensor_time ON readings (sensor_id, time DESC);

CREATE TABLE tag_reads (
    time         timestamptz NOT NULL,        -- first_seen
    last_seen    timestamptz NOT NULL,
    reader_id    text NOT NULL,
    antenna      integer NOT NULL,
    epc          text NOT NULL,
    rssi         float8,
    read_count   integer NOT NULL,
    received_at  timestamptz NOT NULL,
    gateway_id   text NOT NULL,
    boot_id      uuid NOT NULL,
    seq          bigint NOT NULL,
    UNIQUE (gateway_id, boot_id, seq, time)
);
CREATE INDEX tag_reads_epc_time ON tag_reads (epc, time DESC);

CREATE TABLE anomaly_scores (
    time         timestamptz NOT NULL,
    sensor_id    text NOT NULL,
    model        text NOT NULL,
    score        float8 NOT NULL,
    flagged      boolean NOT NULL DEFAULT false,
    detail       jsonb,
    UNIQUE (sensor_id, model, time)
);

CREATE TABLE portal_passages (
    passage_id   text NOT NULL,
    gateway_id   text NOT NULL,
    boot_id      uuid NOT NULL,
    seq          bigint NOT NULL,
    door_id      text NOT NULL,
    reader_id    text NOT NULL,
    direction    text NOT NULL CHECK (direction IN ('in', 'out', 'unknown')),
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz NOT NULL,
    epcs         text[] NOT NULL,
    PRIMARY KEY (gateway_id, boot_id, seq)
);
CREATE INDEX portal_passages_door_time ON portal_passages (door_id, started_at DESC);

CREATE TABLE device_status (
    gateway_id   text NOT NULL,
    boot_id      uuid NOT NULL,
    seq          bigint NOT NULL,
    device_id    text NOT NULL,
    device_type  text NOT NULL,
    state        text NOT NULL,
    detail       text NOT NULL,
    time         timestamptz NOT NULL,
    PRIMARY KEY (gateway_id, boot_id, seq)
);
CREATE INDEX device_status_device_time ON device_status (device_id, time DESC);

CREATE TABLE dead_letters (
    gateway_id   text NOT NULL,
    boot_id      uuid NOT NULL,
    seq          bigint NOT NULL,
    source       text NOT NULL,
    reason       text NOT NULL,
    raw          bytea NOT NULL,
    received_at  timestamptz NOT NULL,
    stored_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, boot_id, seq)
);

-- Cold chain ---------------------------------------------------------------------------------

CREATE TABLE sensors (
    sensor_id    text PRIMARY KEY,
    location_id  text REFERENCES locations,
    mounted_at   timestamptz NOT NULL DEFAULT '-infinity',
    description  text
);

CREATE TABLE excursions (
    excursion_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    location_id  text NOT NULL REFERENCES locations,
    sensor_id    text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('high', 'low', 'no_data')),
    level        text NOT NULL CHECK (level IN ('alert', 'action')),
    started_at   timestamptz NOT NULL,        -- reading time of the first breaching reading
    ended_at     timestamptz,
    peak_value   float8,
    acknowledged_at timestamptz,
    acknowledged_by text,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX excursions_open ON excursions (location_id) WHERE ended_at IS NULL;

-- Inventory ledger ---------------------------------------------------------------------------

CREATE TABLE ledger_entries (
    entry_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    effective_at timestamptz NOT NULL,
    movement     text NOT NULL CHECK (movement IN ('receive', 'put_away', 'move', 'issue',
                     'adjust', 'quarantine', 'release', 'reject', 'recall_hold', 'scrap')),
    lot_id       bigint NOT NULL REFERENCES lots,
    epc_uri      text,                          -- the serialized or logistic unit, if any
    quantity     integer NOT NULL CHECK (quantity > 0),
    from_location text REFERENCES locations,
    from_status  text,
    to_location  text REFERENCES locations,
    to_status    text,
    actor        text NOT NULL,
    reason       text,
    reference    text,                          -- ASN, excursion, recall or count it answers to
    prev_hash    bytea NOT NULL,
    entry_hash   bytea NOT NULL UNIQUE,
    CHECK (from_location IS NOT NULL OR to_location IS NOT NULL)
);
CREATE INDEX ledger_entries_lot ON ledger_entries (lot_id, entry_id);
CREATE INDEX ledger_entries_epc ON ledger_entries (epc_uri) WHERE epc_uri IS NOT NULL;

CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_entries is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only();

CREATE TABLE balances (
    lot_id       bigint NOT NULL REFERENCES lots,
    location_id  text NOT NULL REFERENCES locations,
    status       text NOT NULL,
    quantity     integer NOT NULL CHECK (quantity >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (lot_id, location_id, status)
);
CREATE INDEX balances_location ON balances (location_id) WHERE quantity > 0;

CREATE TABLE audit_log (
    audit_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    action       text NOT NULL,
    subject      text NOT NULL,
    reason       text,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- Time-series layout -------------------------------------------------------------------------

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('readings', by_range('time', INTERVAL '1 day'));
        PERFORM create_hypertable('tag_reads', by_range('time', INTERVAL '1 day'));
        PERFORM create_hypertable('anomaly_scores', by_range('time', INTERVAL '7 days'));
    ELSE
        CREATE INDEX readings_time_brin ON readings USING brin (time);
        CREATE INDEX tag_reads_time_brin ON tag_reads USING brin (time);
        CREATE INDEX anomaly_scores_time_brin ON anomaly_scores USING brin (time);
    END IF;
END $$;
