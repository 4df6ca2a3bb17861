#!/usr/bin/env bash
# `make fuzz`: fuzz a live, throwaway anchorage node.
#   - PostgreSQL 15, the fake Kubo and `anchorage serve` (with its embedded nats-server) on free
#     loopback ports, all in one temp dir under /var/tmp, removed on exit (failure and Ctrl-C too)
#   - schemathesis (pinned, in .anchorage/fuzz-venv) against the spec with every check and real
#     CIDs (scripts/fuzz/hooks.py, scripts/fuzz/schemathesis.toml), then the storage and tenancy
#     properties (scripts/fuzz/test_storage.py) as org "fuzz", with org "fuzz-peer" as the outsider
#   - exits non-zero on any failure (a 5xx, a response outside the schema, any other check, a
#     failed property) or when fewer than FUZZ_MIN_CASES schemathesis cases ran
#   - failures that anchorage's deliberate differences from the spec explain (scripts/fuzz/
#     contract.py: byte limits, control characters, lenient filters) are counted, not failed
# Knobs: FUZZ_MAX_EXAMPLES (cases per operation, default 600), FUZZ_MAX_SECONDS (a time budget
# instead, used when FUZZ_MAX_EXAMPLES=0; default 120), FUZZ_MIN_CASES (default 2000),
# FUZZ_STORAGE_EXAMPLES (examples per property, default 150), FUZZ_SEED, FUZZ_STRICT=1 (excuse
# nothing), ANCHORAGE_FUZZ_SPEC (the OpenAPI document), ANCHORAGE_FUZZ_NO_BUILD=1 (use
# .build/debug as it is, no swift build).
# Reports stay in .anchorage/fuzz/: schemathesis' JSON, NDJSON and JUnit, the excused failures,
# the properties' JUnit, the node's log.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

spec=${ANCHORAGE_FUZZ_SPEC:-$root/Fixtures/spec/ipfs-pinning-service.yaml}
max_seconds=${FUZZ_MAX_SECONDS:-120}
min_cases=${FUZZ_MIN_CASES:-2000}
max_examples=${FUZZ_MAX_EXAMPLES:-600}
storage_examples=${FUZZ_STORAGE_EXAMPLES:-150}
seed=${FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
pg_bin=${ANCHORAGE_PG_BIN:-/usr/lib/postgresql/15/bin}
venv="$root/.anchorage/fuzz-venv"
reports="$root/.anchorage/fuzz"
# The hooks and properties are imported from scripts/fuzz: no __pycache__ left in the work tree.
export PYTHONDONTWRITEBYTECODE=1

if [ ! -f "$spec" ]; then
  echo "fuzz: no OpenAPI document at $spec (set ANCHORAGE_FUZZ_SPEC)" >&2
  exit 2
fi

# schemathesis and the tools the properties use, pinned, in a venv of their own (nats-server's
# .anchorage/venv stays as install-deps.sh made it); reinstalled when the pins change.
if ! cmp -s scripts/fuzz/requirements.txt "$venv/requirements.txt" 2>/dev/null; then
  echo "==> installing schemathesis into .anchorage/fuzz-venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r scripts/fuzz/requirements.txt
  cp scripts/fuzz/requirements.txt "$venv/requirements.txt"
fi

if [ "${ANCHORAGE_FUZZ_NO_BUILD:-}" = 1 ]; then
  bindir="$root/.build/debug"
else
  echo "==> building anchorage and fake-kubo (swift build)"
  swift build --product anchorage
  swift build --product fake-kubo
  bindir="$(swift build --show-bin-path)"
fi

# As root, PostgreSQL runs as the postgres user, which cannot enter mktemp's private /tmp dirs: the
# run dir is in /var/tmp and lets others through (mode 711); only pg/ is handed to postgres.
work=$(mktemp -d /var/tmp/anchorage-fuzz.XXXXXX)
chmod 711 "$work"
pgdata="$work/pg/data"
pids=()
stage_pid=

as_pg() { if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

cleanup() {
  local rc=$?
  trap '' INT TERM  # a second Ctrl-C must not interrupt the clean-up itself
  # serve's nats-server is its child: remembered first, killed too if serve dies without stopping it.
  local children=() pid
  if [ -n "$stage_pid" ]; then pids+=("$stage_pid"); fi
  for pid in "${pids[@]}"; do
    while read -r child; do children+=("$child"); done < <(pgrep -P "$pid" || true)
  done
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}" "${children[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ -f "$pgdata/postmaster.pid" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The binaries are copied out: a rebuild during the run must not swap them under the node.
mkdir -p "$work/bin" "$work/pg" "$reports"
cp "$bindir/anchorage" "$bindir/fake-kubo" "$work/bin/"
bin="$work/bin/anchorage"

# Four distinct free loopback ports (each socket stays bound until all four are chosen).
read -r pgport kuboport natsport httpport < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')

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
# Errors only: every 5xx is logged with its cause, and the summary groups them.
export ANCHORAGE_LOG_LEVEL=warning
# The fuzzer judges answers, not the per-token rate limiter (100/s by default, tested on its own):
# with it, the storage properties would spend most of their time waiting on 429s.
export ANCHORAGE_LIMITS_REQUESTS_PER_SECOND=0
"$bin" migrate bootstrap --superuser-url "postgres://postgres@127.0.0.1:$pgport/postgres" --database anchorage >/dev/null
"$bin" migrate up >/dev/null
token=$("$bin" admin mint-token --org fuzz --create-org --ttl 1d --name fuzz)
peer_token=$("$bin" admin mint-token --org fuzz-peer --create-org --ttl 1d --name fuzz)

echo "==> anchorage serve on 127.0.0.1:$httpport"
"$bin" serve --host 127.0.0.1 --port "$httpport" >"$reports/node.log" 2>&1 &
pids+=($!)
url="http://127.0.0.1:$httpport"
for _ in $(seq 1 300); do
  curl -sf -m 1 "$url/v1/ready" >/dev/null 2>&1 && break
  if ! kill -0 "${pids[-1]}" 2>/dev/null; then
    echo "fuzz: anchorage serve exited:" >&2
    tail -n 30 "$reports/node.log" >&2
    exit 1
  fi
  sleep 0.1
done
if ! curl -sf -m 1 "$url/v1/ready" >/dev/null; then
  echo "fuzz: $url/v1/ready never answered 200" >&2
  tail -n 30 "$reports/node.log" >&2
  exit 1
fi

# stage DIR CMD...: runs CMD in DIR in the background and waits for it. Python catches Ctrl-C
# itself and exits normally, so a foreground stage would leave bash running the next one; a
# `wait` returns to the INT trap at once, and the clean-up stops the stage.
stage() {
  (cd "$1" && shift && exec "$@") &
  stage_pid=$!
  wait "$stage_pid"
  local rc=$?
  stage_pid=
  return "$rc"
}

# Both stages always run, so that one run reports everything; the exit code says if either failed.
# They run in the reports dir, where hypothesis keeps the failing examples it replays next time.
status=0
rm -f "$reports"/schemathesis.* "$reports"/excused.jsonl "$reports"/storage.junit.xml
# The gate is a number of cases, so the run is sized by cases too: a 30 s budget ran 1,698 cases on
# one CI run and 2,100 on another, and a gate that depends on the machine's load is a flaky gate.
# FUZZ_MAX_EXAMPLES is per operation: 600 gives about 2,100 cases from the fuzzing and coverage
# phases alone (the two by-id operations run out of distinct inputs near 200), and the stateful
# phase adds a seed-dependent few hundred to a few thousand. With FUZZ_MAX_EXAMPLES=0 the time
# budget (FUZZ_MAX_SECONDS) decides instead; schemathesis would otherwise repeat fuzzing until it
# is spent, so the two are not combined.
if [ "$max_examples" -gt 0 ]; then
  budget=(--max-examples "$max_examples")
  echo "==> schemathesis: every check, $max_examples examples per operation, seed $seed"
else
  budget=(--max-time "$max_seconds")
  echo "==> schemathesis: every check, ${max_seconds}s, seed $seed"
fi
stage "$reports" env SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$root/scripts/fuzz" ANCHORAGE_FUZZ_SPEC="$spec" \
  FUZZ_EXCUSED_LOG="$reports/excused.jsonl" \
  "$venv/bin/schemathesis" --config-file "$root/scripts/fuzz/schemathesis.toml" run "$spec" \
  --url "$url" \
  -H "Authorization: Bearer $token" \
  --checks all \
  "${budget[@]}" \
  --seed "$seed" \
  --report json,ndjson,junit \
  --report-json-path "$reports/schemathesis.json" \
  --report-ndjson-path "$reports/schemathesis.ndjson" \
  --report-junit-path "$reports/schemathesis.junit.xml" || status=1

echo "==> storage and tenancy properties: $storage_examples examples each, seed $seed"
# -p no:schemathesis: its pytest plugin blanks hypothesis' report of the failing example.
stage "$reports" env ANCHORAGE_FUZZ_URL="$url" ANCHORAGE_FUZZ_TOKEN="$token" ANCHORAGE_FUZZ_PEER_TOKEN="$peer_token" \
  ANCHORAGE_FUZZ_SPEC="$spec" FUZZ_STORAGE_EXAMPLES="$storage_examples" PYTHONPATH="$root/scripts/fuzz" \
  "$venv/bin/python" -m pytest -q -p no:cacheprovider -p no:schemathesis "$root/scripts/fuzz/test_storage.py" \
  --hypothesis-seed "$seed" --junitxml "$reports/storage.junit.xml" || status=1

"$venv/bin/python" scripts/fuzz/summary.py "$reports" "$min_cases" || status=1
exit "$status"
