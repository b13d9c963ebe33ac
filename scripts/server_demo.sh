#!/usr/bin/env bash
# make server-demo: a team tracking server on a throwaway PostgreSQL cluster, two members training at once.
# PostgreSQL refuses to run as root, so the cluster runs as the 'postgres' user (or 'nobody') when we are root.
set -euo pipefail
CLI=${CLI:-$PWD/.venv/bin/ketamine-response}
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
BIN=${BIN:-$(dirname "$(command -v initdb)")}
ROOT=$(mktemp -d /tmp/ketamine-server-demo.XXXXXX)
OWNER=postgres; id postgres >/dev/null 2>&1 || OWNER=nobody
AS=(); [ "$(id -u)" = 0 ] && AS=(runuser -u "$OWNER" --)
PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PG_PORT=$(free_port); PORT=$(free_port)
cleanup() {
  [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
  "${AS[@]}" "$BIN/pg_ctl" -D "$ROOT/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$ROOT"
}
trap cleanup EXIT
echo "$PASSWORD" > "$ROOT/pw"; chown -R "$OWNER" "$ROOT" 2>/dev/null || true
"${AS[@]}" "$BIN/initdb" -D "$ROOT/data" -U ketamine --pwfile="$ROOT/pw" --auth=scram-sha-256 >/dev/null
"${AS[@]}" "$BIN/pg_ctl" -D "$ROOT/data" -l "$ROOT/pg.log" -w -o "-p $PG_PORT -k $ROOT -c listen_addresses=127.0.0.1" start >/dev/null
PGPASSWORD=$PASSWORD "$BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U ketamine mlflow
echo "--- PostgreSQL 127.0.0.1:$PG_PORT; team server on 127.0.0.1:$PORT ---"
MLFLOW_BACKEND_STORE_URI="postgresql://ketamine:$PASSWORD@127.0.0.1:$PG_PORT/mlflow" \
  "$CLI" server --artifacts "$ROOT/artifacts" --port "$PORT" > "$ROOT/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 120); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 1; done
head -2 "$ROOT/server.log"
export MLFLOW_TRACKING_URI="http://127.0.0.1:$PORT"
mkdir -p "$ROOT/alice" "$ROOT/bob"
"$CLI" synth --n 400 --seed 11 --scenario strong --out "$ROOT/cohort.csv"
echo "--- two members train at once against the server ---"
(cd "$ROOT/alice" && "$CLI" train "$ROOT/cohort.csv" --target response_24h --config train_small --permutations 0 > train.txt 2>&1) &
A=$!
(cd "$ROOT/bob" && "$CLI" train "$ROOT/cohort.csv" --target response_24h --cv site --config train_small --permutations 0 > train.txt 2>&1) &
B=$!
wait $A; wait $B
grep -h "MLflow run" "$ROOT/alice/train.txt" "$ROOT/bob/train.txt"
echo "--- runs, compared ---"
"$CLI" runs
