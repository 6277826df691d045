#!/usr/bin/env bash
# Bounded load test of the whole stack on this machine.
#
# Builds the binary, starts `switchboard serve --demo` on 127.0.0.1 with a temporary data dir,
# logs in as owner@acme.test with curl, runs authenticated GET /api/v1/members for a fixed
# time with a fixed number of connections, prints requests/s and latency percentiles, and stops
# the server. It only ever targets 127.0.0.1.
#
#   scripts/load.sh                          SQLite (embedded), 10 s, 8 connections
#   scripts/load.sh --duration 30 --connections 16
#   scripts/load.sh --postgres               a fresh PostgreSQL database and non-owner role made
#                                            from TEST_DATABASE_URL (dropped afterwards)
#   DATABASE_URL=postgres://… scripts/load.sh  an existing database you prepared yourself
#
# Load generator: wrk (apt-get install -y wrk) when installed, else parallel curl (far weaker:
# its numbers measure curl as much as the server; LOAD_TOOL=curl forces it). The rate limits are raised for the run;
# every other middleware runs as in production, including the per-request log (to a file;
# LOG_LEVEL=warn leaves it out).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10
connections=8
threads=2
postgres=0
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --postgres) postgres=1; shift ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$duration$connections$threads" in *[!0-9]*) echo "duration, connections and threads are whole numbers" >&2; exit 2 ;; esac
[ "$duration" -ge 1 ] && [ "$duration" -le 600 ] || { echo "duration must be 1..600 s" >&2; exit 2; }
[ "$connections" -ge 1 ] && [ "$connections" -le 256 ] || { echo "connections must be 1..256" >&2; exit 2; }
[ "$threads" -ge 1 ] && [ "$threads" -le "$connections" ] || threads=1

tmp=$(mktemp -d)
server=""
pgdb=""
pgrole=""
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$server" 2>/dev/null || true
  fi
  if [ -n "$pgdb" ]; then
    psql -q "$TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null 2>&1 || true
    psql -q "$TEST_DATABASE_URL" -c "DROP ROLE IF EXISTS $pgrole" >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

echo "== build"
go build -o "$tmp/switchboard" ./cmd/switchboard

dbenv=()
store="sqlite (embedded)"
if [ "$postgres" = 1 ]; then
  : "${TEST_DATABASE_URL:?--postgres needs TEST_DATABASE_URL (a superuser URL on 127.0.0.1)}"
  case "$TEST_DATABASE_URL" in
    postgres://*@127.0.0.1[:/]* | postgres://*@localhost[:/]* | postgresql://*@127.0.0.1[:/]* | postgresql://*@localhost[:/]*) ;;
    *) echo "TEST_DATABASE_URL must name a user and point at 127.0.0.1 or localhost" >&2; exit 2 ;;
  esac
  pgdb="sbload_$$"
  pgrole="sbload_app_$$"
  psql -q -v ON_ERROR_STOP=1 "$TEST_DATABASE_URL" -c "CREATE DATABASE $pgdb" -c "CREATE ROLE $pgrole LOGIN NOSUPERUSER NOBYPASSRLS" >/dev/null
  owner_url="${TEST_DATABASE_URL%/*}/$pgdb"
  app_url=$(printf '%s' "$owner_url" | sed -E "s#^(postgres(ql)?://)[^@]*@#\1$pgrole@#")
  # The app connects as a role that owns nothing (row-level security binds it); migrations run as the owner.
  dbenv=(DATABASE_URL="$app_url" DATABASE_MIGRATE_URL="$owner_url")
  store="postgres (fresh database $pgdb, app role $pgrole)"
elif [ -n "${DATABASE_URL:-}" ]; then
  dbenv=(DATABASE_URL="$DATABASE_URL")
  [ -n "${DATABASE_MIGRATE_URL:-}" ] && dbenv+=(DATABASE_MIGRATE_URL="$DATABASE_MIGRATE_URL")
  store="postgres (DATABASE_URL)"
fi

port=""
for _ in $(seq 50); do
  p=$((20000 + RANDOM % 20000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "no free port found" >&2; exit 1; }
base="http://127.0.0.1:$port"

echo "== start switchboard serve --demo on $base, store: $store"
env SWITCHBOARD_ENV=development \
  SWITCHBOARD_ADDR="127.0.0.1:$port" \
  SWITCHBOARD_DATA_DIR="$tmp/data" \
  SWITCHBOARD_PUBLIC_URL="$base" \
  SWITCHBOARD_RATE_PER_IP=1000000000 \
  SWITCHBOARD_RATE_PER_TENANT=1000000000 \
  SWITCHBOARD_LOG_LEVEL="${LOG_LEVEL:-info}" \
  "${dbenv[@]}" \
  "$tmp/switchboard" serve --demo >"$tmp/server.log" 2>&1 &
server=$!
for _ in $(seq 120); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { echo "server exited:" >&2; tail -20 "$tmp/server.log" >&2; exit 1; }
  sleep 0.5
done
curl -fsS "$base/healthz" >/dev/null || { echo "server did not become healthy" >&2; tail -20 "$tmp/server.log" >&2; exit 1; }

echo "== log in as owner@acme.test"
curl -fsS -c "$tmp/cookies" -H 'Content-Type: application/json' \
  -d "{\"email\":\"owner@acme.test\",\"password\":\"${SWITCHBOARD_DEMO_PASSWORD:-switchboard-demo}\"}" \
  "$base/api/v1/auth/login" >/dev/null
cookie=$(awk '$6 == "sb_session" { print $7 }' "$tmp/cookies")
[ -n "$cookie" ] || { echo "no session cookie after login" >&2; exit 1; }
url="$base/api/v1/members"
status=$(curl -sS -o "$tmp/first.json" -w '%{http_code}' -H "Cookie: sb_session=$cookie" "$url")
[ "$status" = 200 ] || { echo "GET /api/v1/members answered $status: $(cat "$tmp/first.json")" >&2; exit 1; }
echo "   GET /api/v1/members → 200, $(wc -c <"$tmp/first.json") bytes"

echo "== load: GET /api/v1/members for ${duration}s over $connections connections ($(nproc) cores, server and load generator share them)"
if [ "${LOAD_TOOL:-wrk}" = wrk ] && command -v wrk >/dev/null 2>&1; then
  wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -H "Cookie: sb_session=$cookie" "$url" | tee "$tmp/wrk.out"
  if grep -q 'Non-2xx or 3xx responses' "$tmp/wrk.out"; then
    echo "FAIL: some responses were not 200" >&2
    exit 1
  fi
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$tmp/wrk.out")
  p50=$(awk '/^ +50%/ { print $2 }' "$tmp/wrk.out")
  p99=$(awk '/^ +99%/ { print $2 }' "$tmp/wrk.out")
  echo "== result: $rps requests/s, latency p50 $p50, p99 $p99 (wrk, $connections connections, ${duration}s, $store)"
else
  echo "   using parallel curl (wrk not installed or LOAD_TOOL=curl), which measures curl as much as the server"
  : >"$tmp/times"
  started=$(date +%s.%N)
  end=$((SECONDS + duration))
  for c in $(seq "$connections"); do
    (
      # One curl process per batch of 50 requests reuses its connection within the batch.
      args=()
      for _ in $(seq 50); do args+=(-o /dev/null -w '%{http_code} %{time_total}\n' "$url"); done
      while [ $SECONDS -lt $end ]; do
        curl -sS -H "Cookie: sb_session=$cookie" "${args[@]}" >>"$tmp/times.$c" || true
      done
    ) &
  done
  wait $(jobs -p | grep -v "^$server\$") 2>/dev/null || true
  elapsed=$(echo "$(date +%s.%N) $started" | awk '{ print $1 - $2 }')
  cat "$tmp"/times.* >"$tmp/times"
  total=$(wc -l <"$tmp/times")
  bad=$(awk '$1 != 200' "$tmp/times" | wc -l)
  sort -n -k2 "$tmp/times" | awk -v n="$total" -v d="$elapsed" -v bad="$bad" '
    { t[NR] = $2 }
    END {
      if (n == 0) { print "no requests completed"; exit 1 }
      printf "== result: %.0f requests/s, latency p50 %.2fms p90 %.2fms p99 %.2fms (curl, %d requests in %.1fs, %d not 200)\n",
        n / d, t[int(n * 0.50) + 1] * 1000, t[int(n * 0.90) + 1] * 1000, t[int(n * 0.99) + 1] * 1000, n, d, bad
    }'
  [ "$bad" -eq 0 ] || { echo "FAIL: some responses were not 200" >&2; exit 1; }
fi
