-- Transfers between sites and shipments to customers (issue 18): the order and its lines, the
-- transit location each shipment moves through in the ledger, the ASN generated for the receiving
-- site, every unit the outbound door let through or blocked, the minimum remaining shelf life a
-- site or customer accepts, and the loggers and trackers a shipment carries.

CREATE TABLE shelf_life_rules (
    party_kind    text NOT NULL CHECK (party_kind IN ('site', 'customer')),
    party_id      text NOT NULL,
    min_remaining interval NOT NULL CHECK (min_remaining >= interval '0'),
    PRIMARY KEY (party_kind, party_id)
);

CREATE TABLE transfers (
    transfer_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reference           text NOT NULL UNIQUE,
    from_site           text NOT NULL REFERENCES sites,
    to_site             text REFERENCES sites,          -- NULL: a shipment to a customer
    customer            text,
    status              text NOT NULL DEFAULT 'open'
                        CHECK (status IN ('open', 'in_transit', 'received', 'delivered',
                                          'cancelled')),
    min_remaining       interval,                      -- NULL: the receiving party's rule
    transit_location_id text NOT NULL UNIQUE REFERENCES locations,
    asn_id              bigint REFERENCES asns,
    expected_at         timestamptz,
    shipped_at          timestamptz,
    received_at         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((to_site IS NULL) <> (customer IS NULL)),
    CHECK (to_site IS NULL OR to_site <> from_site)
);
CREATE INDEX transfers_open_from ON transfers (from_site) WHERE status = 'open';
CREATE INDEX transfers_asn ON transfers (asn_id) WHERE asn_id IS NOT NULL;

CREATE TABLE transfer_lines (
    transfer_id  bigint NOT NULL REFERENCES transfers,
    line_no      integer NOT NULL CHECK (line_no > 0),
    gtin         char(14) NOT NULL REFERENCES products,
    lot_number   text,                                  -- NULL: any lot (picked by expiry)
    quantity     integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (transfer_id, line_no)
);

-- Every unit an outbound door saw for a transfer: shipped into transit or blocked (with why).
CREATE TABLE transfer_door_events (
    event_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transfer_id  bigint NOT NULL REFERENCES transfers,
    door_id      text NOT NULL,
    passage_id   text NOT NULL,
    at           timestamptz NOT NULL,
    item         text NOT NULL,                         -- GS1 key, or "<qty> of lot <id> in <sscc>"
    lot_id       bigint REFERENCES lots,
    quantity     integer NOT NULL DEFAULT 1,
    outcome      text NOT NULL CHECK (outcome IN ('shipped', 'blocked')),
    reason       text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transfer_door_events_transfer ON transfer_door_events (transfer_id, event_id);
CREATE INDEX transfer_door_events_blocked ON transfer_door_events (at DESC)
    WHERE outcome = 'blocked';

-- Loggers and live trackers a shipment carries. Each is a sensor mounted at the shipment's
-- transit location (sensor_id unique per shipment, so a logger reused on the next trip is a
-- new sensor there) and its readings are ordinary readings: lot exposure, MKT and the stability
-- budget take the transit in like any other stay.
CREATE TABLE shipment_loggers (
    transfer_id  bigint NOT NULL REFERENCES transfers,
    logger_id    text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('logger', 'tracker')),
    sensor_id    text NOT NULL UNIQUE REFERENCES sensors,
    imported_at  timestamptz,
    PRIMARY KEY (transfer_id, logger_id)
);
CREATE INDEX shipment_loggers_logger ON shipment_loggers (logger_id);

CREATE TABLE shipment_positions (
    sensor_id    text NOT NULL REFERENCES sensors,
    time         timestamptz NOT NULL,
    latitude     float8 NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude    float8 NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    PRIMARY KEY (sensor_id, time)
);
