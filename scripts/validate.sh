#!/usr/bin/env bash
# House checks that need no network and no build. Run from anywhere; works on the repo root.
#
#   scripts/validate.sh              all checks
#   scripts/validate.sh --no-format  skip the swift-format lint (e.g. before a format pass)
#
# Checks:
#   format      `swift format lint --strict` over Sources, Tests and Package.swift (.swift-format)
#   layer       a target depends only on lower layers or on an allowed same-layer edge
#               (the table below); every non-test target must be in the table
#   unused      every declared dependency of a target is imported by one of its files
#   undeclared  a target imports no target of this package that it does not declare
#               (SwiftPM lets a transitive dependency be imported; we don't)
# Exits 1 if any check has a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

run_format=1
for arg in "$@"; do
    case "$arg" in
        --no-format) run_format=0 ;;
        -h | --help)
            sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "validate.sh: unknown argument: $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

status=0

if [[ $run_format == 1 ]]; then
    echo "== format: swift format lint --strict"
    if swift format lint --strict --recursive --parallel Sources Tests Package.swift; then
        echo "format: clean"
    else
        echo "format: FAILED (fix with: swift format -i -r --parallel Sources Tests Package.swift)"
        status=1
    fi
fi

echo "== package graph: layer, unused, undeclared"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
manifest="$work/package.json"
if [[ -n ${VALIDATE_MANIFEST:-} ]]; then
    cp "$VALIDATE_MANIFEST" "$manifest"  # for testing the checks on an edited dump-package
else
    # Own scratch path: never waits for (or touches) a build running in .build.
    swift package --scratch-path "$work/scratch" dump-package >"$manifest"
fi

python3 - "$manifest" <<'PY' || status=1
import json
import os
import re
import sys

# ---------------------------------------------------------------------------------------------
# The layer table: the one place that says which target sits where. A target may depend on
# targets of a lower layer, and on a target of its own layer only through ALLOWED_SAME_LAYER.
# Test targets are exempt from the layer rule (not from the import checks).
LAYERS = {
    0: ["Seams"],  # time, randomness and pure value types; no I/O
    1: [  # core: reaches the world only through Seams; and the pure simulation kit
        "Pins", "Worker", "Cluster", "Tokens",
        "DeterministicSeams", "SimKernel",  # seams' deterministic implementations; the generic kernel
    ],
    2: [  # adapters and local tooling
        "PinsHTTP", "PostgresStore", "NATS", "NATSBus", "KuboRPC", "FakeKubo", "Live",
        "LocalProcess", "LocalPostgres", "LocalNATS", "SimBus", "ConformanceKit",
        "Caches", "Observability",  # node caches; the node's Prometheus families
    ],
    3: ["AnchorageNode"],  # composition: the one node builder (DESIGN §9)
    4: ["AnchorageTesting", "Simulation", "ProcessCluster"],  # kits that build nodes with it, or run them as processes
    5: ["Server", "Bench", "SimCLI", "FakeKuboServer", "ConformanceCLI"],  # executables
}
ALLOWED_SAME_LAYER = {
    ("Tokens", "Pins"),
    ("SimKernel", "DeterministicSeams"),
    ("NATSBus", "NATS"),
    ("LocalPostgres", "PostgresStore"),
    ("LocalPostgres", "LocalProcess"),
    ("LocalNATS", "LocalProcess"),
    ("Observability", "Caches"),
    ("ProcessCluster", "AnchorageTesting"),  # the shared throwaway PostgreSQL
}
# The only products of other packages that core (L0, L1) targets may depend on: the core
# reaches I/O (HTTP, SQL, NIO) only through the seams, never through a library.
CORE_PRODUCTS = {"Logging", "Crypto"}
# Products of other packages whose module names differ from the product name (or that vend
# several modules). Any product not listed here is taken to vend one module of its own name.
PRODUCT_MODULES = {
    # "ProductName": ["ModuleA", "ModuleB"],
}
# ---------------------------------------------------------------------------------------------

LAYER_OF = {name: layer for layer, names in LAYERS.items() for name in names}

with open(sys.argv[1]) as f:
    package = json.load(f)
targets = {t["name"]: t for t in package["targets"]}

IMPORT = re.compile(
    r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*"  # @testable, @preconcurrency, @_implementationOnly ...
    r"(?:(?:public|package|internal|fileprivate|private)\s+)?"
    r"import\s+(?:(?:typealias|struct|class|enum|protocol|let|var|func)\s+)?"
    r"([A-Za-z_][A-Za-z0-9_]*)",
    re.MULTILINE,
)


def target_dir(t):
    if t.get("path"):
        return t["path"]
    return os.path.join("Tests" if t["type"] == "test" else "Sources", t["name"])


def imports_of(t):
    found = {}
    root = target_dir(t)
    for dirpath, _, files in os.walk(root):
        for name in sorted(files):
            if name.endswith(".swift"):
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8") as f:
                    for module in IMPORT.findall(f.read()):
                        found.setdefault(module, path)
    return found


def dependencies(t):
    """(kind, name, modules): kind is "target" or "product"."""
    out = []
    for dep in t["dependencies"]:
        if "product" in dep:
            name = dep["product"][0]
            out.append(("product", f"{name} ({dep['product'][1]})", PRODUCT_MODULES.get(name, [name])))
        else:
            name = (dep.get("byName") or dep.get("target"))[0]
            kind = "target" if name in targets else "product"
            out.append((kind, name, PRODUCT_MODULES.get(name, [name])))
    return out


findings = []  # (check, target, dependency, problem)

for name, t in targets.items():
    if t["type"] not in ("regular", "executable", "test"):
        continue
    deps = dependencies(t)
    imported = imports_of(t)

    # layer
    if t["type"] != "test":
        if name not in LAYER_OF:
            findings.append(("layer", name, "-", "not in the layer table: add it to LAYERS in scripts/validate.sh"))
        else:
            for kind, dep, _ in deps:
                if kind == "product" and LAYER_OF[name] <= 1 and dep.split(" ")[0] not in CORE_PRODUCTS:
                    findings.append(("layer", name, dep, f"core (L{LAYER_OF[name]}) may use only {sorted(CORE_PRODUCTS)} from other packages"))
                if kind != "target" or dep not in LAYER_OF:
                    continue  # an unknown dependency is reported as its own target
                mine, theirs = LAYER_OF[name], LAYER_OF[dep]
                if theirs > mine:
                    findings.append(("layer", name, dep, f"L{mine} depends on higher L{theirs}"))
                elif theirs == mine and (name, dep) not in ALLOWED_SAME_LAYER:
                    findings.append(("layer", name, dep, f"same-layer (L{mine}) edge not in ALLOWED_SAME_LAYER"))

    # unused
    for kind, dep, modules in deps:
        if not any(m in imported for m in modules):
            findings.append(("unused", name, dep, f"declared but no file imports {' or '.join(modules)}"))

    # undeclared
    declared = {m for _, _, modules in deps for m in modules}
    for module, path in sorted(imported.items()):
        if module in targets and module != name and module not in declared:
            findings.append(("undeclared", name, module, f"imported by {path} but not a declared dependency"))

if findings:
    headers = ("CHECK", "TARGET", "DEPENDENCY", "PROBLEM")
    widths = [max(len(h), *(len(f[i]) for f in findings)) for i, h in enumerate(headers[:3])]
    line = lambda row: "  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3]
    print(line(headers))
    print(line(tuple("-" * w for w in widths) + ("-" * 7,)))
    for f in sorted(findings):
        print(line(f))
    print(f"package graph: {len(findings)} finding(s)")
    sys.exit(1)
print(f"package graph: clean ({len(targets)} targets)")
PY

if [[ $status != 0 ]]; then
    echo "validate: FAILED"
else
    echo "validate: OK"
fi
exit "$status"
