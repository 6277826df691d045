#!/usr/bin/env bash
# WebSocket load test of the realtime fan-out on this machine.
#
# Builds the binary and scripts/wsload, starts `switchboard serve --demo` on 127.0.0.1 with a
# temporary data dir, and runs wsload against its console socket (/api/v1/realtime) logged in as
# owner@acme.test: N sockets, M typing events sent through them, every socket must receive every
# event exactly once. It stops the server afterwards and only ever targets 127.0.0.1.
#
#   scripts/ws-load.sh                        one server, embedded Redis; 1000 sockets, 100 events
#   scripts/ws-load.sh -n 2000 -m 300 -rate 4 any further arguments go to wsload (go run ./scripts/wsload -h)
#   REDIS_URL=redis://127.0.0.1:6379/5 scripts/ws-load.sh --nodes 2
#                                             two serve processes sharing that Redis and one SQLite
#                                             file; sockets alternate between them, so every event
#                                             crosses Redis to the other process's sockets
#
# The rate limits are raised for the run (a thousand handshakes from one address); everything
# else runs as in production. The server log is printed on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

nodes=1
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
case "$nodes" in '' | *[!0-9]*) echo "--nodes is a whole number" >&2; exit 2 ;; esac
[ "$nodes" -ge 1 ] && [ "$nodes" -le 8 ] || { echo "--nodes must be 1..8" >&2; exit 2; }
if [ "$nodes" -gt 1 ] && [ -z "${REDIS_URL:-}" ]; then
  echo "--nodes $nodes needs REDIS_URL: processes share events through a real Redis (the embedded one is per process)" >&2
  exit 2
fi

tmp=$(mktemp -d)
servers=()
cleanup() {
  for s in "${servers[@]}"; do
    kill -TERM "$s" 2>/dev/null || true
  done
  for s in "${servers[@]}"; do
    for _ in $(seq 50); do kill -0 "$s" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$s" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

echo "== build"
go build -o "$tmp/switchboard" ./cmd/switchboard
go build -o "$tmp/wsload" ./scripts/wsload

free_port() {
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "no free port found" >&2
  exit 1
}

# A Redis URL may carry a password: it is shown without one.
redis_shown=$(printf '%s' "${REDIS_URL:-in-process}" | sed -E 's#//[^@/]*@#//…@#')
urls=()
for n in $(seq "$nodes"); do
  port=$(free_port)
  base="http://127.0.0.1:$port"
  echo "== start switchboard serve --demo on $base (node $n of $nodes, redis: $redis_shown)"
  # Nodes start one after the other: the first migrates and seeds, the others find it done.
  env SWITCHBOARD_ENV=development \
    SWITCHBOARD_ADDR="127.0.0.1:$port" \
    SWITCHBOARD_DATA_DIR="$tmp/data" \
    SWITCHBOARD_PUBLIC_URL="$base" \
    SWITCHBOARD_RATE_PER_IP=1000000000 \
    SWITCHBOARD_RATE_PER_TENANT=1000000000 \
    SWITCHBOARD_LOG_LEVEL="${LOG_LEVEL:-warn}" \
    ${REDIS_URL:+REDIS_URL="$REDIS_URL"} \
    "$tmp/switchboard" serve --demo >"$tmp/server$n.log" 2>&1 &
  servers+=($!)
  for _ in $(seq 120); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    kill -0 "${servers[-1]}" 2>/dev/null || { echo "server exited:" >&2; tail -20 "$tmp/server$n.log" >&2; exit 1; }
    sleep 0.5
  done
  curl -fsS "$base/readyz" >/dev/null || { echo "server did not become ready" >&2; tail -20 "$tmp/server$n.log" >&2; exit 1; }
  urls+=("ws://127.0.0.1:$port/api/v1/realtime")
done

target=$(IFS=,; echo "${urls[*]}")
echo "== wsload ($(nproc) cores, servers and load generator share them)"
status=0
"$tmp/wsload" -url "$target" -login "owner@acme.test:${SWITCHBOARD_DEMO_PASSWORD:-switchboard-demo}" "${args[@]}" || status=$?
if [ "$status" != 0 ]; then
  for n in $(seq "$nodes"); do
    echo "== server $n log (tail)" >&2
    tail -20 "$tmp/server$n.log" >&2
  done
fi
exit "$status"
