#!/bin/sh
# Healthy when the broker accepts a login and delivers its $SYS uptime to a subscriber, on the
# first address it listens on (BROKER_BIND; the loopback when it listens everywhere).
host=${BROKER_BIND:-0.0.0.0}
host=${host%% *}
[ "$host" = "0.0.0.0" ] && host=127.0.0.1
exec mosquitto_sub -h "$host" -p "${BROKER_PORT:-1883}" -u coldtrace-health \
    -P "$(cat "${BROKER_RUN_DIR:-/mosquitto/run}/health")" -t '$SYS/broker/uptime' -C 1 -W 5 \
    > /dev/null
