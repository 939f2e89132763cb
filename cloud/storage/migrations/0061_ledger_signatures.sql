-- Ledger signatures (issue 12.5): the service signs each entry's hash with an Ed25519 key held
-- outside the database (cloud/ledger/signing.py), so a database superuser who appends a forged
-- entry and recomputes the hash chain is still caught by `coldtrace ledger verify`.
-- NULL on entries written before signing was configured.
ALTER TABLE ledger_entries
    ADD COLUMN signature      bytea CHECK (octet_length(signature) = 64),
    ADD COLUMN signing_key_id text CHECK (signing_key_id ~ '^[0-9a-f]{16}$'),
    ADD CONSTRAINT ledger_entries_signed CHECK ((signature IS NULL) = (signing_key_id IS NULL));
