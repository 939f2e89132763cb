-- Report archive (issue 17.4): every generated report (PDF or CSV) is kept byte for byte with
-- its SHA-256, who asked for it (a person, or a schedule), when, and the parameters it was made
-- from, so the very document handed to an inspector can be fetched again unchanged. The
-- database checks the hash against the bytes; rows are append-only, like the ledger.

CREATE TABLE report_archive (
    report_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('unit', 'excursion', 'lot', 'mkt', 'calibration')),
    format       text NOT NULL CHECK (format IN ('pdf', 'csv')),
    title        text NOT NULL,
    parameters   jsonb NOT NULL,
    created_by   text NOT NULL,            -- a user name, or 'schedule:<id>'
    created_at   timestamptz NOT NULL DEFAULT now(),
    media_type   text NOT NULL,
    filename     text NOT NULL,
    size         integer NOT NULL CHECK (size = octet_length(content)),
    sha256       bytea NOT NULL CHECK (sha256 = sha256(content)),
    content      bytea NOT NULL
);
CREATE INDEX report_archive_kind ON report_archive (kind, created_at DESC);

CREATE FUNCTION report_archive_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'report_archive is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER report_archive_no_update BEFORE UPDATE OR DELETE ON report_archive
    FOR EACH ROW EXECUTE FUNCTION report_archive_append_only();
CREATE TRIGGER report_archive_no_truncate BEFORE TRUNCATE ON report_archive
    FOR EACH STATEMENT EXECUTE FUNCTION report_archive_append_only();
ALTER TABLE report_archive ENABLE ALWAYS TRIGGER report_archive_no_update;
ALTER TABLE report_archive ENABLE ALWAYS TRIGGER report_archive_no_truncate;
