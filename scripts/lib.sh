# Shared by the scripts (source it): cargo with the build's flags, free ports, a server to measure.

# The site is built with `--cfg erase_components` (as cargo-leptos does with Cargo.toml's
# always-erase-components); every other cargo call uses exactly the same flags, so it reuses
# that build instead of compiling everything a second time.
cargo_same() { RUSTFLAGS="--cfg erase_components" cargo "$@"; }

# The server as `make dist` installs it: whole-program LTO (Cargo.toml, profile release-lto),
# less code to keep in memory for a longer build than `make run`'s; in target/release-lto.
build_installed_server() { cargo_same build --profile release-lto --package server --bin server --no-default-features; }

# A free loopback port (Node is installed by setup.sh anyway; python3 may not be).
free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}

# wait_listening PORT PID: until 127.0.0.1:PORT accepts; fails if PID dies or 20 s pass.
wait_listening() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { echo "the server did not start (see above)" >&2; return 1; }
    sleep 0.1
  done
  echo "the server did not start within 20 s" >&2
  return 1
}

# start_server BIN_DIR DATA_DIR: the dashboard on free ports with its own database and no
# per-device rate limit (benchmarks measure the pipeline, not the limiter). Sets WEB, MQTT and
# SERVER (its pid).
start_server() {
  WEB=$(free_port)
  MQTT=$(free_port)
  IOT_DEVICE_MESSAGES_PER_SEC=0 IOT_WEB_LISTEN="127.0.0.1:$WEB" IOT_MQTT_LISTEN="127.0.0.1:$MQTT" \
    IOT_STORAGE_PATH="$2/b.redb" RUST_LOG=warn "$1/server" >/dev/null &
  SERVER=$!
  wait_listening "$WEB" "$SERVER"
}
