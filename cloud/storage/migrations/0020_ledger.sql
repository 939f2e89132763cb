-- Ledger v2 (issue 8): hash-chain head, signatures and counterparties on entries, the unit
-- projection (where the ledger says each serialized unit is) and the indexes the ledger's
-- questions need (what was at a location at a time, what answers to a reference).

-- One row: the hash of the last entry. Writers lock it (SELECT … FOR UPDATE) before appending,
-- which gives the entries a total order in which every prev_hash is the hash before it.
CREATE TABLE ledger_head (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_entry_id bigint,
    last_hash     bytea NOT NULL
);
INSERT INTO ledger_head (singleton, last_entry_id, last_hash)
    VALUES (true, NULL, '\x0000000000000000000000000000000000000000000000000000000000000000');

ALTER TABLE ledger_entries
    ADD COLUMN counterparty      text,   -- who an issue went to
    ADD COLUMN signature_meaning text;   -- a QA signature's meaning (21 CFR 11.50): "approved for use"

CREATE INDEX ledger_entries_to_location ON ledger_entries (to_location, effective_at)
    WHERE to_location IS NOT NULL;
CREATE INDEX ledger_entries_from_location ON ledger_entries (from_location, effective_at)
    WHERE from_location IS NOT NULL;
CREATE INDEX ledger_entries_reference ON ledger_entries (reference, movement)
    WHERE reference IS NOT NULL;
CREATE INDEX ledger_entries_effective ON ledger_entries (effective_at, entry_id);

-- Where each unit is now, as the ledger says (NULL location: not on hand, e.g. issued).
ALTER TABLE units
    ADD COLUMN location_id text REFERENCES locations,
    ADD COLUMN status      text CHECK (status IN ('available', 'quarantined', 'released',
                                                  'rejected', 'recalled')),
    ADD COLUMN updated_at  timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT units_placed CHECK ((location_id IS NULL) = (status IS NULL));
CREATE INDEX units_lot_place ON units (lot_id, location_id, status);

ALTER TABLE balances
    ADD CONSTRAINT balances_status CHECK (status IN ('available', 'quarantined', 'released',
                                                     'rejected', 'recalled'));
CREATE INDEX balances_lot ON balances (lot_id) WHERE quantity > 0;
