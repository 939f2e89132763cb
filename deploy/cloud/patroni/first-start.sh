#!/bin/sh
# First start of the replicated database (deploy/cloud/docker-compose.ha.yml): the roles and the
# database that deploy/cloud/initdb/10-coldtrace-roles.sh makes on a single server's first start,
# made here once, on whichever member is the primary. Patroni bootstraps PostgreSQL itself, so
# there is no docker-entrypoint-initdb.d; this one-shot job runs the same script instead, as the
# superuser, through libpq's multi-host connection (the variables below), and does nothing when
# the database already exists. Replication carries the result to the standby.
#
#   PGHOST, PGPORT               the members, e.g. db0,db1 and 5432
#   PGTARGETSESSIONATTRS         read-write: the primary, whichever member it is
#   PGUSER, PGPASSWORD           the cluster's superuser (PATRONI_SUPERUSER_*)
#   COLDTRACE_DB and the variables 10-coldtrace-roles.sh reads
#   COLDTRACE_FIRST_START_TRIES  how many times (2 s apart) to wait for a primary; default 90
set -eu
SCRIPT=${COLDTRACE_ROLES_SCRIPT:-/usr/local/share/coldtrace/10-coldtrace-roles.sh}
db=${COLDTRACE_DB:-coldtrace}
tries=${COLDTRACE_FIRST_START_TRIES:-90}

# Patroni elects a leader a few seconds after the members start: wait for a writable primary.
until psql -X -q -tA --dbname postgres -c 'SELECT 1' >/dev/null 2>&1; do
    tries=$((tries - 1))
    if [ "$tries" -le 0 ]; then
        psql -X -q -tA --dbname postgres -c 'SELECT 1' >&2 || true
        echo "first-start: no writable primary at $PGHOST" >&2
        exit 1
    fi
    sleep 2
done

exists=$(printf '%s\n' "SELECT count(*) FROM pg_database WHERE datname = :'db';" \
    | psql -X -q -tA -v ON_ERROR_STOP=1 -v db="$db" --dbname postgres)
if [ "$exists" = 1 ]; then
    echo "first-start: database $db exists, nothing to do"
    exit 0
fi
POSTGRES_USER=${PGUSER:-postgres} exec sh "$SCRIPT"
