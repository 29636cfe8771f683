#!/usr/bin/env bash
# A local cluster, until Ctrl-C: PostgreSQL (initdb into a temporary folder, as the postgres
# user), Mosquitto, three dashboard nodes on that database taking devices' messages through one
# shared subscription, haproxy in front of them (WebSockets included), and simulated devices.
#   scripts/cluster.sh [target/release]
# Ports: haproxy on CLUSTER_WEB (127.0.0.1:3000), Mosquitto on CLUSTER_MQTT (127.0.0.1:1883),
# the nodes on 3001-3003 (CLUSTER_NODE_PORT is the first); CLUSTER_DEVICES (6) simulated
# devices, none if 0. Each node runs under a loop that starts it again when it dies, as a
# service manager would: `kill -9` one to watch the others carry on and the page stay live.
# haproxy names the node that answered in an `X-Node` header.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-target/release}"
WEB="${CLUSTER_WEB:-127.0.0.1:3000}"
MQTT="${CLUSTER_MQTT:-127.0.0.1:1883}"
FIRST_NODE="${CLUSTER_NODE_PORT:-3001}"
DEVICES="${CLUSTER_DEVICES:-6}"
NODES=3
source scripts/pg.sh

DIR=$(mktemp -d)
PIDS=()
stop() {
  trap - EXIT INT TERM
  echo; echo "stopping the cluster"
  # The nodes' loops first, so none starts a node again; then what they started.
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  pkill -TERM -P "$$" 2>/dev/null || true
  for f in "$DIR"/node*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pg_stop
  rm -rf "$DIR"
}
trap stop EXIT INT TERM

port_free() { ! (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for addr in "$WEB" "$MQTT" $(for i in $(seq 0 $((NODES - 1))); do echo "127.0.0.1:$((FIRST_NODE + i))"; done); do
  port_free "$addr" || { echo "$addr is taken (make run still running?): stop it, or set CLUSTER_* (see the script)" >&2; exit 1; }
done

echo "starting PostgreSQL"
pg_start
echo "starting Mosquitto on $MQTT"
mkdir -p "$DIR/mosquitto" && chmod 777 "$DIR/mosquitto"
cat >"$DIR/mosquitto.conf" <<EOF
listener ${MQTT##*:} ${MQTT%:*}
allow_anonymous true
persistence true
persistence_location $DIR/mosquitto/
# Keep every queued message for a node that is restarting (the default drops past 1,000).
max_queued_messages 0
EOF
mosquitto -c "$DIR/mosquitto.conf" >"$DIR/mosquitto.log" 2>&1 &
PIDS+=($!)

# One setup token for every node, so the setup link works through the load balancer.
TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
node_env() {
  local i=$1
  echo IOT_POSTGRES_URL="$PG_URL" IOT_WEB_LISTEN="127.0.0.1:$((FIRST_NODE + i - 1))" \
    IOT_STORAGE_PATH="$DIR/node$i/telemetry.redb" IOT_MQTT_MODE=external IOT_MQTT_HOST="${MQTT%:*}" \
    IOT_MQTT_PORT="${MQTT##*:}" IOT_MQTT_CLIENT_ID="dashboard-node$i" IOT_MQTT_SHARE_GROUP=dashboards \
    IOT_WEB_HOSTS="${WEB%:*}" IOT_ALLOWED_ORIGINS="http://$WEB" IOT_TRUSTED_PROXIES=127.0.0.1 \
    IOT_SETUP_TOKEN="$TOKEN"
}
# The first node makes the database's schema; the others find it made.
for i in $(seq 1 $NODES); do
  mkdir -p "$DIR/node$i"
  (
    while :; do
      env $(node_env "$i") "$BIN/server" >>"$DIR/node$i.log" 2>&1 &
      echo $! >"$DIR/node$i.pid"
      wait $! || true
      echo "node $i ended; starting it again in 1 s" >>"$DIR/node$i.log"
      sleep 1
    done
  ) &
  PIDS+=($!)
  for _ in $(seq 1 150); do
    curl -fsS "http://127.0.0.1:$((FIRST_NODE + i - 1))/healthz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fsS "http://127.0.0.1:$((FIRST_NODE + i - 1))/healthz" >/dev/null || {
    echo "node $i did not start:" >&2; tail -20 "$DIR/node$i.log" >&2; exit 1
  }
done

echo "starting haproxy on $WEB"
cat >"$DIR/haproxy.cfg" <<EOF
global
    maxconn 4000
defaults
    mode http
    option forwardfor
    # A request whose node went away is tried on another.
    option redispatch
    retries 2
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # A WebSocket (/ws/live) stays open this long without a frame; the dashboard pings sooner.
    timeout tunnel 1h
frontend dashboard
    bind $WEB
    default_backend nodes
backend nodes
    balance roundrobin
    # No stickiness: sessions are in PostgreSQL. A node whose /healthz fails twice (its
    # database or broker gone) is out of rotation in about 2 s.
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 1s fall 2 rise 2
    # Which node answered (scripts/bench-cluster.sh kills the one its client is on).
    http-response set-header X-Node %[srv_name]
EOF
for i in $(seq 1 $NODES); do
  echo "    server node$i 127.0.0.1:$((FIRST_NODE + i - 1)) check" >>"$DIR/haproxy.cfg"
done
haproxy -f "$DIR/haproxy.cfg" -db >"$DIR/haproxy.log" 2>&1 &
PIDS+=($!)

if [ "$DEVICES" -gt 0 ]; then
  "$BIN/simulator" --host "${MQTT%:*}" --port "${MQTT##*:}" -n "$DEVICES" >"$DIR/simulator.log" 2>&1 &
  PIDS+=($!)
fi

echo
echo "  Dashboard (haproxy over 3 nodes): http://$WEB"
echo "  Nodes: $(for i in $(seq 1 $NODES); do printf 'http://127.0.0.1:%s ' $((FIRST_NODE + i - 1)); done)"
echo "  MQTT (Mosquitto, shared subscription \$share/dashboards): $MQTT; $DEVICES simulated devices"
echo "  PostgreSQL: $PG_URL"
echo "  Set up sign-in: http://$WEB/setup?token=$TOKEN"
echo "  Kill a node:    kill -9 \$(cat $DIR/node2.pid)   (it is started again in 1 s)"
echo "  Logs: $DIR   (Ctrl-C stops everything)"
echo
wait "${PIDS[0]}"
