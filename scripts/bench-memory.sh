#!/usr/bin/env bash
# Memory figure: the server's resident memory with DEVICES simulated devices (each its own
# MQTT connection) reporting every second, at the start and after MINUTES minutes. The server
# seals its head every storage.seal_interval_secs (60): for a few seconds each time it holds
# more, so the last minute is sampled every second and its median is the figure, its highest
# the peak while sealing (a single sample at MINUTES * 60 s fell on a seal or not by chance).
# The thread count is read at the end: every idle blocking-pool thread keeps an allocator cache.
#   scripts/bench-memory.sh            DEVICES=1000 MINUTES=10 by default; the server as
#                                       `make dist` builds it (release-lto)
#   BIN=/tmp/x scripts/bench-memory.sh  the server and simulator in /tmp/x as they are, no build
#                                       (copies that stay put while the tree is rebuilt)
#   LIMIT_MB=60 scripts/bench-memory.sh  the server in a memory cgroup of that size (cgroup v1,
#                                       as root), as a small machine or a container would hold
#                                       it: the kernel then drops the executable's clean pages
#                                       it does not need; the table adds whether it kept up
#                                       (messages stored against those sent), was killed, and
#                                       how often it read pages back from disk (major faults)
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICES=${DEVICES:-1000}
MINUTES=${MINUTES:-10}
source scripts/lib.sh
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
if [ -z "${BIN:-}" ]; then
  build_installed_server
  cargo_same build --release -q -p simulator
  BIN=$work/built
  mkdir "$BIN"
  cp target/release-lto/server target/release/simulator "$BIN/"
fi
rss() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status"; }
# RSS, then its anonymous part (the heap) and its file-backed part (the executable's pages).
rss_parts() {
  awk '/^VmRSS/ {r = $2} /^RssAnon/ {a = $2} /^RssFile/ {f = $2}
    END {printf "%.1f %.1f %.1f\n", r / 1024, a / 1024, f / 1024}' "/proc/$SERVER/status"
}

if [ -n "${LIMIT_MB:-}" ]; then
  # The server is started inside the group, so all its memory is charged there: this shell
  # goes in for the start, then out (charges do not move with a process).
  group=/sys/fs/cgroup/memory/iot-bench-$$
  mkdir "$group"
  trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"; sleep 1; rmdir "$group" 2>/dev/null || true' EXIT
  echo $((LIMIT_MB * 1024 * 1024)) >"$group/memory.limit_in_bytes"
  echo $$ >"$group/cgroup.procs"
  # A copy of the executable made from inside: its pages in memory are then the group's too
  # (the page cache is charged to whoever brought a page in first).
  mkdir "$work/bin"
  cp "$BIN/server" "$work/bin/server"
  server_dir=$work/bin
fi
start_server "${server_dir:-$BIN}" "$work"
[ -n "${LIMIT_MB:-}" ] && echo $$ >/sys/fs/cgroup/memory/cgroup.procs
start=$(rss)
majflt() { awk '{print $12}' "/proc/$SERVER/stat"; }
began=$(date +%s)
"$BIN/simulator" --port "$MQTT" --devices "$DEVICES" --interval 1 >/dev/null 2>&1 &
sleep $((MINUTES * 60 - 60))
faults_before=$(majflt)
samples=$(for _ in $(seq 60); do rss_parts; sleep 1; done | sort -n)
faults_last_minute=$(($(majflt) - faults_before))
read -r median anon file <<<"$(sed -n 30p <<<"$samples")"
peak=$(tail -1 <<<"$samples" | cut -d' ' -f1)
threads=$(ls "/proc/$SERVER/task" | wc -l)
stored=$(curl -fsS "http://127.0.0.1:$WEB/metrics" | awk '/^iot_messages_stored_total /{print $2}')
echo "| memory, $DEVICES devices at 1 Hz | server RSS |"
echo "|---|---|"
echo "| at start | $start MB |"
echo "| after $MINUTES min ($stored messages stored), median of the last minute | $median MB |"
echo "| of which anonymous (heap) / file-backed (the executable's pages), at that median | $anon / $file MB |"
echo "| highest in the last minute (while sealing) | $peak MB |"
echo "| server threads at the end (tokio workers and blocking pool, jemalloc, timers) | $threads |"
echo "| database file | $(du -m "$work/b.redb" | cut -f1) MB |"
if [ -n "${LIMIT_MB:-}" ]; then
  usage=$(awk '{printf "%.1f", $1 / 1048576}' "$group/memory.max_usage_in_bytes")
  echo "| memory cgroup limit / highest charged (heap, page cache of the executable and database) | $LIMIT_MB / $usage MB |"
  echo "| times the limit was hit / out-of-memory kills | $(cat "$group/memory.failcnt") / $(awk '/oom_kill /{print $2}' "$group/memory.oom_control") |"
  echo "| messages stored / sent in $(($(date +%s) - began)) s (each device one a second) | $stored / about $((DEVICES * ($(date +%s) - began))) |"
  echo "| major faults (pages read back from disk) in the last minute | $faults_last_minute |"
fi
