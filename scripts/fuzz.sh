#!/usr/bin/env bash
# `make fuzz`: fuzz a live, throwaway anchorage node.
#   - a PostgreSQL 15 cluster, the fake Kubo and `anchorage serve` (with its embedded nats-server),
#     all on free loopback ports, in one temp dir under /var/tmp; removed on exit, even on failure
#   - schemathesis (pinned, in .anchorage/fuzz-venv) against the spec, every check, with real CIDs
#     (scripts/fuzz/hooks.py), then the storage and tenancy properties (scripts/fuzz/test_storage.py)
#   - exits non-zero on any failure: a 5xx, a response that breaks the schema, a failed property
# Knobs: FUZZ_MAX_SECONDS (schemathesis' time budget, default 150), FUZZ_STORAGE_EXAMPLES
# (hypothesis examples per storage property, default 150), FUZZ_SEED, FUZZ_WORKERS (default 2),
# ANCHORAGE_FUZZ_SPEC (the OpenAPI document), ANCHORAGE_FUZZ_NO_BUILD=1 (use .build/debug as is).
# Reports: .anchorage/fuzz/ (schemathesis' JSON/NDJSON/JUnit, the node's log), kept after the run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

spec=${ANCHORAGE_FUZZ_SPEC:-$root/../shared/spec/ipfs-pinning-service.yaml}
max_seconds=${FUZZ_MAX_SECONDS:-150}
storage_examples=${FUZZ_STORAGE_EXAMPLES:-150}
seed=${FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
workers=${FUZZ_WORKERS:-2}
pg_bin=${ANCHORAGE_PG_BIN:-/usr/lib/postgresql/15/bin}
venv="$root/.anchorage/fuzz-venv"
reports="$root/.anchorage/fuzz"

if [ ! -f "$spec" ]; then
  echo "fuzz: no OpenAPI document at $spec (set ANCHORAGE_FUZZ_SPEC)" >&2
  exit 2
fi

# schemathesis and its pinned dependencies, in a venv of their own (nats-server's stays untouched).
if ! cmp -s scripts/fuzz/requirements.txt "$venv/requirements.txt" 2>/dev/null; then
  echo "==> installing schemathesis into .anchorage/fuzz-venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r scripts/fuzz/requirements.txt
  cp scripts/fuzz/requirements.txt "$venv/requirements.txt"
fi

# Binaries are copied out so that a rebuild during the run cannot swap them under the node.
if [ "${ANCHORAGE_FUZZ_NO_BUILD:-}" = 1 ]; then
  bindir="$root/.build/debug"
else
  echo "==> building anchorage and fake-kubo (swift build)"
  swift build --product anchorage
  swift build --product fake-kubo
  bindir="$(swift build --show-bin-path)"
fi

# As root, PostgreSQL runs as the postgres user, which cannot reach mktemp's usual private dirs:
# the run dir lives in /var/tmp and lets others traverse it; only pg/ is handed to postgres.
work=$(mktemp -d /var/tmp/anchorage-fuzz.XXXXXX)
chmod 711 "$work"
pgdata="$work/pg/data"
pids=()

as_pg() { if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

cleanup() {
  local rc=$?
  trap '' INT TERM  # a second Ctrl-C must not interrupt the clean-up itself
  # serve stops its own nats-server on TERM; the fake Kubo has no children.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  # A nats-server orphaned by a killed serve is found by its store dir, which only this run uses.
  pkill -KILL -f -- "-sd $work/" 2>/dev/null || true
  if [ -f "$pgdata/postmaster.pid" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  [ -f "$work/node.log" ] && cp "$work/node.log" "$reports/node.log" 2>/dev/null
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$work/bin" "$work/pg" "$reports"
cp "$bindir/anchorage" "$bindir/fake-kubo" "$work/bin/"
bin="$work/bin/anchorage"

# Four distinct free loopback ports (the sockets stay open until all four are chosen).
read -r pgport kuboport natsport httpport < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
PY
)

echo "==> PostgreSQL on 127.0.0.1:$pgport (in $work)"
if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$work/pg"; fi
as_pg "$pg_bin/initdb" -D "$pgdata" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
# Durability buys nothing for a throwaway cluster.
as_pg "$pg_bin/pg_ctl" -D "$pgdata" -l "$work/pg/postgres.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $pgport -k $work/pg -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null

echo "==> fake Kubo on 127.0.0.1:$kuboport"
"$work/bin/fake-kubo" --listen "127.0.0.1:$kuboport" --state "$work/fake-kubo.json" --log-level warning \
  >"$work/fake-kubo.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -s -m 1 -X POST "http://127.0.0.1:$kuboport/api/v0/version" >/dev/null 2>&1 && break
  sleep 0.1
done

export ANCHORAGE_DB_URL="postgres://anchorage_api@127.0.0.1:$pgport/anchorage"
export ANCHORAGE_DB_OPS_URL="postgres://anchorage_ops@127.0.0.1:$pgport/anchorage"
export ANCHORAGE_DB_OWNER_URL="postgres://anchorage_owner@127.0.0.1:$pgport/anchorage"
export ANCHORAGE_KUBO_URL="http://127.0.0.1:$kuboport"
export ANCHORAGE_NATS_PORT=$natsport
export ANCHORAGE_NODE_DATA_DIR="$work/node"
export ANCHORAGE_LOG_LEVEL=${ANCHORAGE_LOG_LEVEL:-warning}
"$bin" migrate bootstrap --superuser-url "postgres://postgres@127.0.0.1:$pgport/postgres" --database anchorage >/dev/null
"$bin" migrate up >/dev/null
# Two orgs: the fuzzer acts as "fuzz"; "fuzz-peer" must never see its pins.
token=$("$bin" admin mint-token --org fuzz --create-org --ttl 1d --name fuzz)
peer_token=$("$bin" admin mint-token --org fuzz-peer --create-org --ttl 1d --name fuzz)

echo "==> anchorage serve on 127.0.0.1:$httpport"
"$bin" serve --host 127.0.0.1 --port "$httpport" >"$work/node.log" 2>&1 &
pids+=($!)
url="http://127.0.0.1:$httpport"
for _ in $(seq 1 300); do
  if curl -sf -m 1 "$url/v1/ready" >/dev/null 2>&1; then break; fi
  if ! kill -0 "${pids[-1]}" 2>/dev/null; then
    echo "fuzz: anchorage serve exited; its log:" >&2
    cat "$work/node.log" >&2
    exit 1
  fi
  sleep 0.1
done
curl -sf -m 1 "$url/v1/ready" >/dev/null || { echo "fuzz: $url/v1/ready never answered 200" >&2; tail -n 50 "$work/node.log" >&2; exit 1; }

# Both phases run whatever the other found; the exit code says whether either failed.
status=0
echo "==> schemathesis $("$venv/bin/schemathesis" --version | awk '{print $NF}'): all checks, ${max_seconds}s, seed $seed"
rm -f "$reports"/schemathesis.*
SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$root/scripts/fuzz" \
  "$venv/bin/schemathesis" --config-file scripts/fuzz/schemathesis.toml run "$spec" \
  --url "$url" \
  -H "Authorization: Bearer $token" \
  --checks all \
  --max-time "$max_seconds" \
  --seed "$seed" \
  --workers "$workers" \
  --report json,ndjson,junit \
  --report-json-path "$reports/schemathesis.json" \
  --report-ndjson-path "$reports/schemathesis.ndjson" \
  --report-junit-path "$reports/schemathesis.junit.xml" \
  || status=1

echo "==> storage and tenancy properties (hypothesis, $storage_examples examples each)"
ANCHORAGE_FUZZ_URL="$url" ANCHORAGE_FUZZ_TOKEN="$token" ANCHORAGE_FUZZ_PEER_TOKEN="$peer_token" \
  FUZZ_STORAGE_EXAMPLES="$storage_examples" FUZZ_SEED="$seed" PYTHONPATH="$root/scripts/fuzz" \
  "$venv/bin/python" -m pytest -q -p no:cacheprovider scripts/fuzz/test_storage.py \
  --junitxml "$reports/storage.junit.xml" || status=1

"$venv/bin/python" scripts/fuzz/summary.py "$reports" || true
exit "$status"
