#!/bin/sh
# Healthy when the broker accepts a login and delivers its $SYS uptime to a subscriber.
exec mosquitto_sub -h 127.0.0.1 -p "${BROKER_PORT:-1883}" -u coldtrace-health \
    -P "$(cat "${BROKER_RUN_DIR:-/mosquitto/run}/health")" -t '$SYS/broker/uptime' -C 1 -W 5 > /dev/null
