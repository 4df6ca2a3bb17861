#!/usr/bin/env bash
# The development PostgreSQL and node.
#
#   scripts/dev-run.sh              `make run`: a working anchorage node for development (below)
#   scripts/dev-run.sh --db-only    `make db`: only the dev PostgreSQL (created, started, roles,
#                                   schema, .anchorage/dev/db.env); left running
#   scripts/dev-run.sh --stop-only  `make db-stop`: stops the dev PostgreSQL
#
# What it sets up:
#   - PostgreSQL in .anchorage/dev/pg (created once, kept between runs) on 127.0.0.1:$ANCHORAGE_DEV_PG_PORT
#     (default 54329, also written into its postgresql.conf)
#   - roles, database and migrations; a token for org "dev" in .anchorage/dev/token (make run)
#   - .anchorage/dev/db.env: the database URLs and the signing-secrets key file, nothing per node;
#     source it to point `anchorage admin …`/`migrate …`/`serve` at this database
#   - Kubo (make run): the one on $ANCHORAGE_KUBO_URL (default http://127.0.0.1:5001), or else the
#     fake Kubo (`fake-kubo`, state in .anchorage/dev/fake-kubo.json); its `id` addresses become delegates
#   - nats-server (make run): started and supervised by anchorage serve itself (embedded mode,
#     JetStream store in .anchorage/dev/node/nats, client port 127.0.0.1:$ANCHORAGE_NATS_PORT, default 4222)
#   - anchorage serve on 127.0.0.1:$ANCHORAGE_HTTP_PORT (default 8080) in the foreground. Ctrl-C
#     stops what this run started: the server, the fake Kubo, and PostgreSQL unless it was
#     already running (e.g. from `make db`), which it leaves running.
#
# Environment: ANCHORAGE_DEV_DIR (default .anchorage/dev), ANCHORAGE_DEV_PG_PORT, ANCHORAGE_PG_BIN,
# ANCHORAGE_BIN_DIR (take anchorage and fake-kubo from there instead of running `swift build`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dev=${ANCHORAGE_DEV_DIR:-"$root/.anchorage/dev"}
mkdir -p "$dev"
dev=$(cd "$dev" && pwd)
# As root, PostgreSQL runs as the postgres user, which must reach its directory: a checkout under
# a private directory (mktemp -d, /root) is out of its reach, so its cluster goes to /var/tmp.
pgdir="$dev"
if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$dev" 2>/dev/null; then
  pgdir="/var/tmp/anchorage-dev-$(printf %s "$dev" | sha256sum | cut -c1-12)"
fi
pgdata="$pgdir/pg"
pgport=${ANCHORAGE_DEV_PG_PORT:-54329}
httpport=${ANCHORAGE_HTTP_PORT:-8080}
pg_bin=${ANCHORAGE_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}
mode=run
case "${1:-}" in
  --db-only) mode=db ;;
  --stop-only) mode=stop ;;
  "") ;;
  *) echo "dev-run.sh: unknown argument: $1 (--db-only, --stop-only)" >&2; exit 2 ;;
esac
mkdir -p "$pgdir"
# Everything written under .anchorage/dev (passwords, the token, the env file) is private.
umask 077

as_pg() { if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

stop_pg() {
  if [ -f "$pgdata/postmaster.pid" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

if [ "$mode" = stop ]; then
  if [ -f "$pgdata/postmaster.pid" ]; then echo "==> stopping the dev PostgreSQL ($pgdata)"; fi
  stop_pg
  exit 0
fi

# Dev passwords, made once: the superuser's (PostgreSQL's own, readable by the postgres user
# that runs initdb) and the anchorage roles'. Not `trust`: any local user could otherwise
# connect as the superuser and run programs as postgres.
[ -s "$dev/db-password" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dev/db-password"
[ -s "$pgdir/superuser-password" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$pgdir/superuser-password"
dbpw=$(cat "$dev/db-password")
superpw=$(cat "$pgdir/superuser-password")

if [ ! -f "$pgdata/PG_VERSION" ]; then
  echo "==> creating PostgreSQL cluster in $pgdata"
  mkdir -p "$pgdata"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$pgdir"; chmod 700 "$pgdir"; fi
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$pgdir/superuser-password"; fi
  as_pg "$pg_bin/initdb" -D "$pgdata" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
    --pwfile="$pgdir/superuser-password" -E UTF8 --locale=C.UTF-8 >/dev/null
  # The address, port and socket directory live in the cluster's own configuration, so a plain
  # `pg_ctl -D .anchorage/dev/pg start` (as the postgres user when root) comes up where the URLs point.
  printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\n" "$pgport" "$pgdir" \
    | as_pg tee -a "$pgdata/postgresql.conf" >/dev/null
fi
if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$pgdir"; fi

started_pg=
if ! as_pg "$pg_bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
  echo "==> starting PostgreSQL on 127.0.0.1:$pgport"
  as_pg "$pg_bin/pg_ctl" -D "$pgdata" -l "$pgdir/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $pgport -k $pgdir" start >/dev/null
  started_pg=1
else
  echo "==> PostgreSQL is already running ($pgdata)"
fi
# `make run` stops PostgreSQL on exit only if it started it; `make db` leaves it running.
if [ "$mode" = run ] && [ -n "$started_pg" ]; then
  trap 'trap "" INT TERM; echo "==> stopping PostgreSQL"; stop_pg' EXIT
fi

if [ -n "${ANCHORAGE_BIN_DIR:-}" ]; then
  bindir=$(cd "$ANCHORAGE_BIN_DIR" && pwd)
else
  echo "==> building anchorage (swift build)"
  swift build --product anchorage
  if [ "$mode" = run ]; then swift build --product fake-kubo; fi
  bindir="$(swift build --show-bin-path)"
fi
bin="$bindir/anchorage"

printf 'postgres://postgres:%s@127.0.0.1:%s/postgres\n' "$superpw" "$pgport" > "$dev/superuser-url"
export ANCHORAGE_DB_URL="postgres://anchorage_api:$dbpw@127.0.0.1:$pgport/anchorage"
export ANCHORAGE_DB_OPS_URL="postgres://anchorage_ops:$dbpw@127.0.0.1:$pgport/anchorage"
export ANCHORAGE_DB_OWNER_URL="postgres://anchorage_owner:$dbpw@127.0.0.1:$pgport/anchorage"
# Signing secrets sealed at rest, as in production (docs/security.md).
[ -s "$dev/secrets.key" ] || head -c 32 /dev/urandom | base64 > "$dev/secrets.key"
export ANCHORAGE_AUTH_SECRETS_KEY_FILE="$dev/secrets.key"
"$bin" migrate bootstrap --superuser-url-file "$dev/superuser-url" --database anchorage
"$bin" migrate up

# Only what every node and CLI of this database shares: no port, data directory or Kubo, so that
# sourcing it never overrides a node's own settings (docs/operations.md runs three nodes with it).
cat > "$dev/db.env" <<ENV
# Source this file to reach the development database with anchorage's CLIs and servers.
export ANCHORAGE_DB_URL=$ANCHORAGE_DB_URL
export ANCHORAGE_DB_OPS_URL=$ANCHORAGE_DB_OPS_URL
export ANCHORAGE_DB_OWNER_URL=$ANCHORAGE_DB_OWNER_URL
export ANCHORAGE_AUTH_SECRETS_KEY_FILE=$dev/secrets.key
ENV
# The former env file also exported per-node settings (port, data directory, Kubo, NATS port).
rm -f "$dev/env"

if [ "$mode" = db ]; then
  cat <<MSG
==> the dev PostgreSQL is running on 127.0.0.1:$pgport and stays up (make db-stop stops it)
    settings for the CLIs and servers:  source ${dev#"$root/"}/db.env
MSG
  exit 0
fi

# Kubo: use the one answering on $ANCHORAGE_KUBO_URL, or start the fake Kubo in its place.
kubo_url=${ANCHORAGE_KUBO_URL:-http://127.0.0.1:5001}
kubo_pid=
if curl -s -m 2 -X POST "$kubo_url/api/v0/version" >/dev/null 2>&1; then
  echo "==> using the Kubo answering on $kubo_url"
else
  kubo_listen=${kubo_url#http://}
  echo "==> no Kubo answers on $kubo_url: starting the FAKE Kubo (fake-kubo) on $kubo_listen"
  "$bindir/fake-kubo" --listen "$kubo_listen" --state "$dev/fake-kubo.json" --log-level warning \
    > "$dev/fake-kubo.log" 2>&1 &
  kubo_pid=$!
  for _ in $(seq 1 50); do
    curl -s -m 1 -X POST "$kubo_url/api/v0/version" >/dev/null 2>&1 && break
    sleep 0.1
  done
fi
cleanup() {
  trap '' INT TERM  # a second Ctrl-C must not interrupt the clean-up itself
  if [ -n "$kubo_pid" ]; then
    echo "==> stopping the fake Kubo"
    kill "$kubo_pid" 2>/dev/null || true
  fi
  if [ -n "$started_pg" ]; then
    echo "==> stopping PostgreSQL"
    stop_pg
  else
    echo "==> PostgreSQL keeps running (it was running before; make db-stop stops it)"
  fi
}
trap cleanup EXIT

"$bin" admin mint-token --org dev --create-org --ttl 30d --name dev > "$dev/token"

pg_note="PostgreSQL keeps running"
if [ -n "$started_pg" ]; then pg_note="PostgreSQL stops too"; fi
cat <<MSG

anchorage is starting on http://127.0.0.1:$httpport  (Ctrl-C stops it${kubo_pid:+ and the fake Kubo}; $pg_note)
  token:  $dev/token        settings for the CLIs:  source $dev/db.env
  try:    curl -H "Authorization: Bearer \$(cat $dev/token)" localhost:$httpport/pins
          source $dev/db.env && $bin admin cluster-presences

MSG
# This node's own settings go to its process only, never into db.env.
ANCHORAGE_KUBO_URL="$kubo_url" ANCHORAGE_NODE_DATA_DIR="$dev/node" ANCHORAGE_NATS_PORT=${ANCHORAGE_NATS_PORT:-4222} \
  "$bin" serve --port "$httpport"
