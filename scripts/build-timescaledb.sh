#!/usr/bin/env bash
# Installs the Apache-2 edition of TimescaleDB into the local PostgreSQL when it is missing.
# Debian 12 ships no TimescaleDB package, so it is built from Debian's own source package
# (taken from trixie through a private apt source list; the system's sources are not touched).
# The build tree is cached under $CACHE, so a later run only re-installs it.
set -euo pipefail

PG_CONFIG=${PG_CONFIG:-$(ls -d /usr/lib/postgresql/*/bin/pg_config 2>/dev/null | sort -V | tail -n 1)}
[ -x "$PG_CONFIG" ] || { echo "build-timescaledb: no PostgreSQL pg_config found" >&2; exit 1; }
SHAREDIR=$("$PG_CONFIG" --sharedir)
if [ -f "$SHAREDIR/extension/timescaledb.control" ]; then
  exit 0
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${COLDTRACE_CACHE:-$ROOT/.cache}/timescaledb
PGMAJOR=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
mkdir -p "$CACHE"

if [ ! -f "$CACHE/build/.built" ]; then
  echo "build-timescaledb: building TimescaleDB (Apache-2 edition) for PostgreSQL $PGMAJOR" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "postgresql-server-dev-$PGMAJOR" cmake gcc make libssl-dev dpkg-dev >/dev/null

  # A private apt tree that knows only trixie's source packages.
  APT=$CACHE/apt
  mkdir -p "$APT/lists/partial" "$APT/archives/partial" "$APT/etc"
  echo "deb-src http://deb.debian.org/debian trixie main" > "$APT/etc/sources.list"
  APTOPTS=(-o "Dir::Etc::SourceList=$APT/etc/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
           -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache::Archives=$APT/archives"
           -o "APT::Sandbox::User=root")
  apt-get "${APTOPTS[@]}" update -q >/dev/null
  rm -rf "$CACHE/src" && mkdir -p "$CACHE/src"
  (cd "$CACHE/src" && apt-get "${APTOPTS[@]}" source --download-only -q timescaledb >/dev/null \
     && dpkg-source -x --no-check ./*.dsc tsdb >/dev/null)

  rm -rf "$CACHE/build"
  cmake -S "$CACHE/src/tsdb" -B "$CACHE/build" -DAPACHE_ONLY=1 -DREGRESS_CHECKS=OFF \
        -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF -DLINTER=OFF -DPG_CONFIG="$PG_CONFIG" \
        -DCMAKE_BUILD_TYPE=Release >"$CACHE/cmake.log" 2>&1 \
     || { tail -n 30 "$CACHE/cmake.log" >&2; exit 1; }
  make -C "$CACHE/build" -j"$(nproc)" >"$CACHE/make.log" 2>&1 \
     || { tail -n 30 "$CACHE/make.log" >&2; exit 1; }
  touch "$CACHE/build/.built"
fi
make -C "$CACHE/build" install >/dev/null
echo "build-timescaledb: installed into $SHAREDIR/extension" >&2
