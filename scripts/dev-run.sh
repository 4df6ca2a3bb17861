#!/usr/bin/env bash
# `make run`: a working anchorage node for development.
#   - PostgreSQL in .anchorage/dev/pg (created once, kept between runs) on 127.0.0.1:$ANCHORAGE_DEV_PG_PORT
#   - roles, database and migrations; a token for org "dev" in .anchorage/dev/token
#   - .anchorage/dev/env: source it to point `swift run anchorage admin …`/`migrate …` at this node
#   - Kubo: the one on $ANCHORAGE_KUBO_URL (default http://127.0.0.1:5001), or else the fake Kubo
#     (`fake-kubo`, state in .anchorage/dev/fake-kubo.json); its `id` addresses become delegates
#   - nats-server: started and supervised by anchorage serve itself (embedded mode, JetStream store
#     in .anchorage/dev/node/nats, client port 127.0.0.1:$ANCHORAGE_NATS_PORT, default 4222)
#   - anchorage serve on 127.0.0.1:8080 in the foreground; Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dev="$root/.anchorage/dev"
# As root, PostgreSQL runs as the postgres user, which must reach its directory: a checkout under
# a private directory (mktemp -d, /root) is out of its reach, so its cluster goes to /var/tmp.
pgdir="$dev"
if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$root" 2>/dev/null; then
  pgdir="/var/tmp/anchorage-dev-$(printf %s "$root" | sha256sum | cut -c1-12)"
fi
pgdata="$pgdir/pg"
pgport=${ANCHORAGE_DEV_PG_PORT:-54329}
httpport=${ANCHORAGE_HTTP_PORT:-8080}
pg_bin=${ANCHORAGE_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}
mkdir -p "$dev" "$pgdir"
# Everything written under .anchorage/dev (passwords, the token, the env file) is private.
umask 077
# Dev passwords, made once: the superuser's (PostgreSQL's own, readable by the postgres user
# that runs initdb) and the anchorage roles'. Not `trust`: any local user could otherwise
# connect as the superuser and run programs as postgres.
[ -s "$dev/db-password" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dev/db-password"
[ -s "$pgdir/superuser-password" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$pgdir/superuser-password"
dbpw=$(cat "$dev/db-password")
superpw=$(cat "$pgdir/superuser-password")

as_pg() { if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

stop_pg() {
  if [ -f "$pgdata/postmaster.pid" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

if [ "${1:-}" = "--stop-only" ]; then stop_pg; exit 0; fi

if [ ! -f "$pgdata/PG_VERSION" ]; then
  echo "==> creating PostgreSQL cluster in $pgdata"
  mkdir -p "$pgdata"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$pgdir"; chmod 700 "$pgdir"; fi
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$pgdir/superuser-password"; fi
  as_pg "$pg_bin/initdb" -D "$pgdata" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
    --pwfile="$pgdir/superuser-password" -E UTF8 --locale=C.UTF-8 >/dev/null
fi
if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$pgdir"; fi

if ! as_pg "$pg_bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
  echo "==> starting PostgreSQL on 127.0.0.1:$pgport"
  as_pg "$pg_bin/pg_ctl" -D "$pgdata" -l "$pgdir/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $pgport -k $pgdir" start >/dev/null
fi
trap 'trap "" INT TERM; echo "==> stopping PostgreSQL"; stop_pg' EXIT

echo "==> building anchorage (swift build)"
swift build --product anchorage
swift build --product fake-kubo
bindir="$(swift build --show-bin-path)"
bin="$bindir/anchorage"

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
export ANCHORAGE_KUBO_URL="$kubo_url"
cleanup() {
  trap '' INT TERM  # a second Ctrl-C must not interrupt the clean-up itself
  echo "==> stopping${kubo_pid:+ the fake Kubo and} PostgreSQL"
  if [ -n "$kubo_pid" ]; then kill "$kubo_pid" 2>/dev/null || true; fi
  stop_pg
}
trap cleanup EXIT

printf 'postgres://postgres:%s@127.0.0.1:%s/postgres\n' "$superpw" "$pgport" > "$dev/superuser-url"
export ANCHORAGE_DB_URL="postgres://anchorage_api:$dbpw@127.0.0.1:$pgport/anchorage"
export ANCHORAGE_DB_OPS_URL="postgres://anchorage_ops:$dbpw@127.0.0.1:$pgport/anchorage"
export ANCHORAGE_DB_OWNER_URL="postgres://anchorage_owner:$dbpw@127.0.0.1:$pgport/anchorage"
# Signing secrets sealed at rest, as in production (docs/security.md).
[ -s "$dev/secrets.key" ] || head -c 32 /dev/urandom | base64 > "$dev/secrets.key"
export ANCHORAGE_AUTH_SECRETS_KEY_FILE="$dev/secrets.key"
"$bin" migrate bootstrap --superuser-url-file "$dev/superuser-url" --database anchorage
"$bin" migrate up

cat > "$dev/env" <<ENV
# Source this file to reach the development node's database with anchorage's CLIs.
export ANCHORAGE_DB_URL=$ANCHORAGE_DB_URL
export ANCHORAGE_DB_OPS_URL=$ANCHORAGE_DB_OPS_URL
export ANCHORAGE_DB_OWNER_URL=$ANCHORAGE_DB_OWNER_URL
export ANCHORAGE_HTTP_PORT=$httpport
export ANCHORAGE_KUBO_URL=$kubo_url
export ANCHORAGE_NODE_DATA_DIR=$dev/node
export ANCHORAGE_NATS_PORT=${ANCHORAGE_NATS_PORT:-4222}
export ANCHORAGE_AUTH_SECRETS_KEY_FILE=$dev/secrets.key
ENV
export ANCHORAGE_NODE_DATA_DIR="$dev/node"
export ANCHORAGE_NATS_PORT=${ANCHORAGE_NATS_PORT:-4222}

"$bin" admin mint-token --org dev --create-org --ttl 30d --name dev > "$dev/token"

cat <<MSG

anchorage is starting on http://127.0.0.1:$httpport  (Ctrl-C stops it, PostgreSQL${kubo_pid:+ and the fake Kubo})
  token:  $dev/token        settings for the CLIs:  source $dev/env
  try:    curl -H "Authorization: Bearer \$(cat .anchorage/dev/token)" localhost:$httpport/pins
          source $dev/env && $bin admin cluster-presences

MSG
"$bin" serve --port "$httpport"
