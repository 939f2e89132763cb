#!/usr/bin/env bash
# Installs the Debian packages coldtrace needs (PostgreSQL server binaries, Mosquitto, a Python venv)
# when they are missing, then TimescaleDB. Nothing here starts or changes a system service.
set -euo pipefail
need=()
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v make >/dev/null || need+=(make)
# Patroni and etcd for the replicated cluster of `coldtrace services start --ha` (failover tests).
[ -x /usr/bin/patroni ] || need+=(patroni)
[ -x /usr/bin/etcd ] || need+=(etcd-server)
# HAProxy: tests/deploy checks deploy/cloud/patroni/haproxy.cfg with the image's own version.
[ -x /usr/sbin/haproxy ] || need+=(haproxy)
# Headless Chromium for the dashboard's browser tests (driven by Playwright through its path).
[ -x /usr/bin/chromium ] || need+=(chromium)
# Node.js and npm for the independent OPC-UA server (node-opcua) of the interop tests.
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
# Pango (with HarfBuzz and fontconfig) and a font for WeasyPrint, which prints the PDF reports.
ldconfig -p | grep 'libpango-1.0.so.0' >/dev/null || need+=(libpango-1.0-0)
ldconfig -p | grep 'libpangoft2-1.0.so.0' >/dev/null || need+=(libpangoft2-1.0-0)
ldconfig -p | grep 'libharfbuzz-subset.so.0' >/dev/null || need+=(libharfbuzz-subset0)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-system-deps: missing ${need[*]}; run as root or install them" >&2; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # A temporary policy-rc.d keeps the package scripts from starting a system cluster or broker.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -q "${need[@]}" >/dev/null
fi
"$(dirname "$0")/build-timescaledb.sh"
