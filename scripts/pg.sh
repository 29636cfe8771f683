#!/usr/bin/env bash
# A throwaway PostgreSQL: initdb into a temporary folder and the server on a free loopback
# port, its socket in that folder. initdb refuses root, so as root both run as the `postgres`
# user Debian's package makes (scripts/setup.sh test installs it).
#   scripts/pg.sh             starts one, prints its URL, stops it and deletes it on Ctrl-C
#   source scripts/pg.sh      defines pg_start [SETTING=VALUE ...] (sets PG_URL, PG_DIR,
#                             PG_POSTMASTER, its pid)
#                             and pg_stop; extra arguments are postgres -c settings;
#                             pg_start_for_bench [NOTE] starts one as the benchmarks measure
#                             on, stopped when the script exits, and prints its settings
set -euo pipefail

pg_bin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "PostgreSQL is not installed: run scripts/setup.sh test (or apt-get install postgresql)" >&2
    return 1
  fi
  echo "$bin"
}

# Runs a command as the postgres user when we are root (setpriv execs it: $! is its pid).
pg_as() {
  if [ "$(id -u)" = 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi
}

pg_start() {
  local bin port settings=() s
  bin=$(pg_bin)
  PG_DIR=$(mktemp -d)
  [ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR"
  pg_as "$bin/initdb" -U postgres -A trust -E UTF8 --no-instructions -D "$PG_DIR/data" >"$PG_DIR/initdb.log"
  port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { process.stdout.write(`${s.address().port}\n`); s.close(); })')
  for s in "$@"; do settings+=(-c "$s"); done
  pg_as "$bin/postgres" -D "$PG_DIR/data" -p "$port" -k "$PG_DIR" -c listen_addresses=127.0.0.1 \
    "${settings[@]}" >"$PG_DIR/postgres.log" 2>&1 &
  PG_PID=$!
  for _ in $(seq 1 300); do
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
    kill -0 "$PG_PID" 2>/dev/null || { cat "$PG_DIR/postgres.log" >&2; return 1; }
    sleep 0.1
  done
  "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" || { echo "postgres did not start in 30 s" >&2; return 1; }
  # The postmaster's own pid (PG_PID is the background job around it).
  PG_POSTMASTER=$(head -1 "$PG_DIR/data/postmaster.pid")
  PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

# Fast shutdown, then the folder goes.
pg_stop() {
  [ -n "${PG_PID:-}" ] || return 0
  kill -INT "${PG_POSTMASTER:-}" 2>/dev/null || true
  wait "$PG_PID" 2>/dev/null || true
  rm -rf "$PG_DIR"
  PG_PID=
}

# The benchmarks' PostgreSQL: its default settings but for the shared buffers, stopped when
# the calling script exits; prints its version and settings, then NOTE.
pg_start_for_bench() {
  trap pg_stop EXIT
  pg_start shared_buffers=256MB
  echo "PostgreSQL $("$(pg_bin)/postgres" --version | awk '{print $3}'), shared_buffers 256MB, fsync and synchronous_commit on (the defaults)${1:+; $1}."
  echo
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  trap pg_stop EXIT
  pg_start "$@"
  echo "$PG_URL"
  echo "PostgreSQL $("$(pg_bin)/postgres" --version | awk '{print $3}') in $PG_DIR; Ctrl-C stops it and deletes the folder" >&2
  trap 'exit 0' INT TERM
  wait "$PG_PID"
fi
