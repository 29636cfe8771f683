#!/bin/sh
# Starts the dashboard from this folder (no toolchain needed): ./start.sh
# Open the address it prints; until someone sets up sign-in it also prints a one-time setup link.
cd "$(dirname "$0")" && exec ./bin/server --config dashboard.toml "$@"
