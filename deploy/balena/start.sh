#!/bin/sh
# Writes the configuration from the EDGE_CONFIG_YAML variable (when set) and runs the agent.
set -eu
CONFIG=/data/coldtrace/edge.yaml
mkdir -p /data/coldtrace
if [ -n "${EDGE_CONFIG_YAML:-}" ]; then
    printf '%s\n' "$EDGE_CONFIG_YAML" > "$CONFIG.tmp"
    mv "$CONFIG.tmp" "$CONFIG"
fi
if [ ! -f "$CONFIG" ]; then
    echo "no configuration: set the device variable EDGE_CONFIG_YAML (see docs/edge-agent.md)" >&2
    exit 2
fi
# exec: the agent receives SIGTERM itself and shuts down cleanly (sources, flush, close).
exec coldtrace edge run --config "$CONFIG" --log-level "${EDGE_LOG_LEVEL:-INFO}"
