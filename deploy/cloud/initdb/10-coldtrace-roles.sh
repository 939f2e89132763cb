#!/bin/sh
# First start of the database container only (docker-entrypoint-initdb.d, as the bootstrap
# superuser): the three coldtrace roles, the database owned by the owner role, TimescaleDB.
# After this the superuser is not used by anything: migrations run as the owner, the service as
# the service role, Grafana as the read-only role (docs/security.md).
#
#   COLDTRACE_DB                  database name (default coldtrace)
#   COLDTRACE_ROLE_PREFIX         role names PREFIX_owner, PREFIX_service, PREFIX_readonly
#   COLDTRACE_OWNER_PASSWORD, COLDTRACE_SERVICE_PASSWORD, COLDTRACE_READONLY_PASSWORD
set -eu
db=${COLDTRACE_DB:-coldtrace}
prefix=${COLDTRACE_ROLE_PREFIX:-coldtrace}
: "${COLDTRACE_OWNER_PASSWORD:?}" "${COLDTRACE_SERVICE_PASSWORD:?}"
: "${COLDTRACE_READONLY_PASSWORD:?}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    -v db="$db" -v owner="${prefix}_owner" -v service="${prefix}_service" \
    -v readonly="${prefix}_readonly" -v owner_pw="$COLDTRACE_OWNER_PASSWORD" \
    -v service_pw="$COLDTRACE_SERVICE_PASSWORD" -v readonly_pw="$COLDTRACE_READONLY_PASSWORD" \
    <<'SQL'
CREATE ROLE :"owner" LOGIN PASSWORD :'owner_pw' NOSUPERUSER NOCREATEROLE NOCREATEDB;
CREATE ROLE :"service" LOGIN PASSWORD :'service_pw' NOSUPERUSER NOCREATEROLE NOCREATEDB
    NOREPLICATION NOBYPASSRLS;
CREATE ROLE :"readonly" LOGIN PASSWORD :'readonly_pw' NOSUPERUSER NOCREATEROLE NOCREATEDB
    NOREPLICATION NOBYPASSRLS;
-- Grafana sessions cannot write even where a privilege slipped through
ALTER ROLE :"readonly" SET default_transaction_read_only = on;
CREATE DATABASE :"db" OWNER :"owner";
-- Bounded waits per role (docs/cloud-ingest.md, "Bounded waits"), in this database: a backstop
-- for any session that sets none of its own. The service's pools set tighter bounds per kind of
-- work (ingest, processor, read API, jobs); Grafana sets none, so the read-only role's are
-- what bound a dashboard's query; migrations (the owner) set their own lock_timeout and run
-- without a statement timeout.
ALTER ROLE :"service" IN DATABASE :"db" SET statement_timeout = '15min';
ALTER ROLE :"service" IN DATABASE :"db" SET lock_timeout = '10s';
ALTER ROLE :"service" IN DATABASE :"db" SET idle_in_transaction_session_timeout = '5min';
ALTER ROLE :"readonly" IN DATABASE :"db" SET statement_timeout = '60s';
ALTER ROLE :"readonly" IN DATABASE :"db" SET lock_timeout = '5s';
ALTER ROLE :"readonly" IN DATABASE :"db" SET idle_in_transaction_session_timeout = '60s';
ALTER ROLE :"owner" IN DATABASE :"db" SET lock_timeout = '5s';
ALTER ROLE :"owner" IN DATABASE :"db" SET idle_in_transaction_session_timeout = '10min';
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"service";
GRANT CONNECT ON DATABASE :"db" TO :"readonly";
\connect :"db"
-- only a superuser may create it; the owner's migrations then use it
CREATE EXTENSION IF NOT EXISTS timescaledb;
SQL
