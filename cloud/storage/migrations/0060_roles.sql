-- Least-privilege roles (issue 12.4). The role running the migrations owns every object: only
-- an owner can ALTER a table, DISABLE its triggers or drop it. The service and the read-only
-- reporting role are separate group roles, created here once per cluster (roles are
-- cluster-wide; many databases on one cluster share them) and granted per database by
-- cloud/storage/roles.py after every migration, so tables of later migrations are covered too.
--
-- Names: <prefix>_service and <prefix>_readonly, prefix from the session setting
-- coldtrace.role_prefix (`coldtrace db migrate --role-prefix`), default 'coldtrace'. They are
-- recorded below, so later grant passes and `coldtrace ledger verify` use the same ones.

CREATE TABLE database_roles (
    purpose   text PRIMARY KEY CHECK (purpose IN ('service', 'readonly')),
    role_name name NOT NULL
);

DO $$
DECLARE
    prefix  text := coalesce(nullif(current_setting('coldtrace.role_prefix', true), ''),
                             'coldtrace');
    purpose text;
    rname   text;
BEGIN
    IF prefix !~ '^[a-z_][a-z0-9_]{0,39}$' THEN
        RAISE EXCEPTION 'coldtrace.role_prefix %: lower-case letters, digits and _ only', prefix;
    END IF;
    FOREACH purpose IN ARRAY ARRAY['service', 'readonly'] LOOP
        rname := prefix || '_' || purpose;
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = rname) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'
                               ' NOREPLICATION NOBYPASSRLS', rname);
            EXCEPTION
                -- another database's migration on this cluster created it a moment ago
                WHEN duplicate_object OR unique_violation THEN NULL;
                WHEN insufficient_privilege THEN
                    RAISE EXCEPTION 'role % does not exist and % may not create it', rname,
                        current_user
                        USING HINT = 'create it first as a superuser (docs/operations.md)';
            END;
        END IF;
        INSERT INTO database_roles (purpose, role_name) VALUES (purpose, rname);
    END LOOP;
END $$;

-- The append-only triggers fire even in a session with session_replication_role = replica
-- (which skips ordinary triggers): only the table owner can change that, and verify checks it.
ALTER TABLE ledger_entries ENABLE ALWAYS TRIGGER ledger_entries_no_update;
ALTER TABLE ledger_entries ENABLE ALWAYS TRIGGER ledger_entries_no_truncate;

-- Retention on hypertables drops whole chunks, which only the table's owner may do. The service
-- does it through this function, which runs as the owner and refuses every other table (the
-- list is cloud/jobs/retention.py's; the ledger is never among them).
CREATE FUNCTION coldtrace_drop_chunks(relation regclass, older_than timestamptz)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    dropped integer;
BEGIN
    IF relation::text NOT IN ('readings', 'tag_reads', 'anomaly_scores', 'device_status',
                              'dead_letters', 'portal_passages', 'ingest_batches') THEN
        RAISE EXCEPTION 'retention is not allowed on %', relation
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE 'SELECT count(*) FROM drop_chunks($1, older_than => $2)'
        INTO dropped USING relation, older_than;
    RETURN dropped;
END $$;
REVOKE ALL ON FUNCTION coldtrace_drop_chunks(regclass, timestamptz) FROM PUBLIC;
