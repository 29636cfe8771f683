#!/usr/bin/env bash
# Every benchmark, one after another on this machine, into one report: printed, and written
# to docs/benchmarks.md with the machine it ran on. `make bench` runs this after the release
# build; MINUTES (10) sets the memory run's length, MB (1024) the start-up database's size.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/benchmarks.md
mkdir -p docs
report=$(mktemp)
trap 'rm -f "$report"' EXIT
section() { printf '\n## %s\n\n' "$1" | tee -a "$report"; }
# The report keeps the scripts' own lines, not the servers' log lines (timestamped, maybe coloured).
log_line=$'^(\e\\[[0-9;]*m)*[0-9]{4}-[0-9]{2}-[0-9]{2}T'
run() { "$@" 2>&1 | { grep --line-buffered -vE "$log_line" || true; } | tee -a "$report"; }

{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` on $(date -u +'%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)."
  echo
  echo "| machine | |"
  echo "|---|---|"
  echo "| CPU | $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) cores |"
  echo "| memory | $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) |"
  echo "| system | $(uname -sr) |"
  echo "| Rust | $(rustc --version) |"
  echo "| Mosquitto | $(mosquitto -h 2>/dev/null | awk 'NR==1 {print $3}') |"
} | tee "$report"

section "Ingest (durable, QoS 1)"
run scripts/bench-ingest.sh
echo | tee -a "$report"
CONNECTIONS=20 run scripts/bench-ingest.sh
section "Latency"
run scripts/bench-latency.sh
echo | tee -a "$report"
run scripts/bench-login-storm.sh
echo | tee -a "$report"
run scripts/bench-connections.sh
section "History and storage"
run scripts/bench-storage.sh
section "Alarms"
run scripts/bench-alarms.sh
section "Memory"
run scripts/bench-memory.sh
section "Start-up"
run scripts/bench-startup.sh
section "Client size"
run scripts/sizes.sh
echo | tee -a "$report"
run scripts/bench-client-floor.sh
section "Offline and reconnect"
run scripts/bench-pwa.sh
section "Dashboard"
run scripts/bench-ui.sh
section "Fleet"
run scripts/bench-fleet.sh
section "Commands"
run scripts/bench-commands.sh
echo | tee -a "$report"
INTERVAL=0.2 run scripts/bench-commands.sh
section "PostgreSQL"
run scripts/bench-pg.sh
echo | tee -a "$report"
run scripts/bench-pg-commands.sh
section "Cluster"
run scripts/bench-cluster.sh
cp "$report" "$out"
echo
echo "written to $out"
