-- Receiving (issue 8): ASN items carry GS1 keys ("(00)<sscc>", "(01)<gtin>(21)<serial>", or
-- "<container key>|(01)<gtin>(10)<lot>" for a bulk quantity), their quantity and when they were
-- received; units are found by their GS1 key whatever URI they were stored under; each passage
-- handled by the receiving step leaves one receiving record.

ALTER TABLE asn_items DROP CONSTRAINT IF EXISTS asn_items_unit_kind_check;
ALTER TABLE asn_items
    ADD CONSTRAINT asn_items_kind CHECK (unit_kind IN ('sgtin', 'sscc', 'bulk')),
    ADD COLUMN quantity    integer NOT NULL DEFAULT 1 CHECK (quantity > 0),
    ADD COLUMN received_at timestamptz,
    ADD COLUMN receipt_id  bigint;
CREATE INDEX asn_items_key ON asn_items (epc_uri);

ALTER TABLE units ADD COLUMN gs1_key text;
CREATE UNIQUE INDEX units_gs1_key ON units (gs1_key) WHERE gs1_key IS NOT NULL;

CREATE TABLE receipts (
    receipt_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gateway_id   text NOT NULL,
    boot_id      uuid NOT NULL,
    seq          bigint NOT NULL,
    passage_id   text NOT NULL,
    door_id      text NOT NULL,
    site_id      text REFERENCES sites,
    location_id  text REFERENCES locations,
    direction    text NOT NULL CHECK (direction IN ('in', 'out', 'unknown')),
    at           timestamptz NOT NULL,
    asn_ids      bigint[] NOT NULL DEFAULT '{}',
    received     integer NOT NULL DEFAULT 0,    -- units/quantities received or issued
    outcome      text NOT NULL CHECK (outcome IN ('complete', 'partial', 'nothing', 'refused')),
    summary      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (gateway_id, boot_id, seq)
);
CREATE INDEX receipts_at ON receipts (at DESC);
CREATE INDEX receipts_asns ON receipts USING gin (asn_ids);
