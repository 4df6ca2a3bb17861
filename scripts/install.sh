#!/usr/bin/env bash
# `make install`: builds anchorage and fake-kubo (debug) and links them into .anchorage/bin, so that
#   export PATH="$PWD/.anchorage/bin:$PATH"
# puts `anchorage` and `fake-kubo` on PATH (the links follow every later `swift build`).
# ANCHORAGE_BIN_DIR: link the executables of that directory instead of building (the doc test).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${ANCHORAGE_BIN_DIR:-}" ]; then
  bindir=$(cd "$ANCHORAGE_BIN_DIR" && pwd)
else
  swift build --product anchorage
  swift build --product fake-kubo
  swift build --product anchorage-conformance
  bindir=$(swift build --show-bin-path)
fi
mkdir -p .anchorage/bin
for exe in anchorage fake-kubo; do
  [ -x "$bindir/$exe" ] || { echo "install.sh: no $bindir/$exe" >&2; exit 1; }
  ln -sfn "$bindir/$exe" ".anchorage/bin/$exe"
done
# The conformance suite, with its fixtures where it looks for them: <bin>/../share/anchorage-conformance.
if [ -x "$bindir/anchorage-conformance" ]; then
  ln -sfn "$bindir/anchorage-conformance" .anchorage/bin/anchorage-conformance
  mkdir -p .anchorage/share/anchorage-conformance
  ln -sfn "$PWD/Fixtures/pinning-api" .anchorage/share/anchorage-conformance/pinning-api
fi
echo "==> linked anchorage and fake-kubo into .anchorage/bin; put them on PATH with:"
echo '    export PATH="$PWD/.anchorage/bin:$PATH"'
