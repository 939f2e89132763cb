-- Electronic signatures (issue 17.2, 21 CFR 11.50/11.70/11.200, EU GMP Annex 11 §14): a person
-- re-enters their password (and TOTP code when enrolled) to sign a record that decides the fate
-- of product. The signature keeps the printed name, the time, the meaning, and a sha256 that
-- binds it to the record's content and to the hashes of the ledger entries the action wrote, so
-- a signature cannot be copied to another record and a changed record no longer matches it.
-- Append-only, like the ledger: no UPDATE, DELETE or TRUNCATE.

CREATE TABLE e_signatures (
    signature_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users,
    username      text NOT NULL,
    printed_name  text NOT NULL,
    signed_at     timestamptz NOT NULL,
    meaning       text NOT NULL CHECK (meaning IN ('reviewed', 'approved', 'released', 'rejected')),
    action        text NOT NULL CHECK (action IN ('lot.disposition', 'recall.hold',
                                                  'excursion.close', 'count.confirm')),
    subject       text NOT NULL,             -- 'lot:12', 'excursion:3', 'count:7' (as audit_log)
    entry_ids     bigint[] NOT NULL DEFAULT '{}',   -- the ledger entries the action wrote
    content       jsonb NOT NULL,            -- what was signed, as hashed (canonical JSON)
    content_hash  bytea NOT NULL CHECK (octet_length(content_hash) = 32),
    factors       text NOT NULL CHECK (factors IN ('password', 'password+totp'))
);
CREATE INDEX e_signatures_subject ON e_signatures (subject, signed_at);
CREATE INDEX e_signatures_entries ON e_signatures USING gin (entry_ids);

CREATE FUNCTION e_signatures_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'e_signatures is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER e_signatures_no_update BEFORE UPDATE OR DELETE ON e_signatures
    FOR EACH ROW EXECUTE FUNCTION e_signatures_append_only();
CREATE TRIGGER e_signatures_no_truncate BEFORE TRUNCATE ON e_signatures
    FOR EACH STATEMENT EXECUTE FUNCTION e_signatures_append_only();
ALTER TABLE e_signatures ENABLE ALWAYS TRIGGER e_signatures_no_update;
ALTER TABLE e_signatures ENABLE ALWAYS TRIGGER e_signatures_no_truncate;
