# The two commands that set up a fresh machine (see README.md):
#   make run    a working node on 127.0.0.1:8080 (PostgreSQL, nats-server and a Kubo started for you)
#   make test   the whole test suite
# For a cluster on one machine (docs/operations.md):
#   make install  links anchorage and fake-kubo into .anchorage/bin (export PATH="$PWD/.anchorage/bin:$PATH")
#   make db       only the dev PostgreSQL (roles, schema, .anchorage/dev/db.env); it stays up
#   make db-stop  stops it
.PHONY: run test deps build install db db-stop bench clean-dev validate format fuzz

deps:
	@scripts/install-deps.sh

build: deps
	swift build

# Ctrl-C stops the node, the fake Kubo, and PostgreSQL if this run started it (one left running
# by `make db` keeps running).
run: deps
	@scripts/dev-run.sh

install: deps
	@scripts/install.sh

db: deps
	@scripts/dev-run.sh --db-only

db-stop:
	@scripts/dev-run.sh --stop-only

# --no-parallel: the multi-process cluster tests (4 servers, 4 fake Kubos, nats-server,
# PostgreSQL) and the timing-checked Kubo contract tests starve each other on 2 cores.
# The suite includes the doc runner (Tests/ClusterProcessTests/OperationsDocTests.swift), which
# runs docs/operations.md's commands; it needs ports 4222, 5001-5003 and 8081-8083 free.
test: deps
	swift test --no-parallel

# schemathesis (every check) and the storage/tenancy properties against a throwaway node
# (scripts/fuzz.sh; FUZZ_MAX_EXAMPLES sizes it). Installs schemathesis into .anchorage/fuzz-venv.
fuzz: deps
	@scripts/fuzz.sh

# Format lint, module layers and declared-vs-imported dependencies (docs/contributing.md).
validate:
	@scripts/validate.sh

format:
	swift format -i -r --parallel Sources Tests Package.swift

bench: deps
	swift run -c release anchorage-bench api

clean-dev:
	@scripts/dev-run.sh --stop-only || true
	rm -rf .anchorage/dev
