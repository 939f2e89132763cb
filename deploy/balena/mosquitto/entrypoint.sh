#!/bin/sh
# The gateway broker: writes the password file from the device variables, the listener from
# BROKER_BIND, and runs Mosquitto in the foreground as this (non-root) user.
#
#   BROKER_EDGE_PASSWORD     the edge agent's account (coldtrace-edge), required
#   BROKER_PANEL_PASSWORD    alarm panels (coldtrace-panel), optional
#   BROKER_GROUPS            device groups and passwords: "freezers:pw1 fridges:pw2"
#                            (accounts group-freezers, group-fridges)
#   BROKER_BIND              address(es) to listen on, space separated; default 0.0.0.0.
#                            Set the warehouse LAN address to keep the broker off the uplink.
#   BROKER_PORT              default 1883
set -eu
RUN=${BROKER_RUN_DIR:-/mosquitto/run}          # generated files (tests point it elsewhere)
CONFIG=${BROKER_CONFIG_DIR:-/mosquitto/config}
mkdir -p "$RUN"
umask 077
: > "$RUN/passwd"
add() { mosquitto_passwd -b "$RUN/passwd" "$1" "$2"; }

if [ -z "${BROKER_EDGE_PASSWORD:-}" ]; then
    echo "set the device variable BROKER_EDGE_PASSWORD (the edge agent's broker account)" >&2
    exit 2
fi
add coldtrace-edge "$BROKER_EDGE_PASSWORD"
[ -n "${BROKER_PANEL_PASSWORD:-}" ] && add coldtrace-panel "$BROKER_PANEL_PASSWORD"
for pair in ${BROKER_GROUPS:-}; do
    name=${pair%%:*}
    password=${pair#*:}
    case "$name" in
        ''|*[!a-z0-9-]*) echo "BROKER_GROUPS: bad group name '$name' (a-z, 0-9, -)" >&2; exit 2 ;;
    esac
    if [ "$password" = "$pair" ] || [ -z "$password" ]; then
        echo "BROKER_GROUPS: group '$name' has no password (name:password)" >&2
        exit 2
    fi
    add "group-$name" "$password"
done
# a fresh random password per start for the health check, kept in the container only
head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$RUN/health"
add coldtrace-health "$(cat "$RUN/health")"

cp "$CONFIG/mosquitto.conf" "$RUN/mosquitto.conf"
for address in ${BROKER_BIND:-0.0.0.0}; do
    printf 'listener %s %s\n' "${BROKER_PORT:-1883}" "$address" >> "$RUN/mosquitto.conf"
done
exec mosquitto -c "$RUN/mosquitto.conf"
