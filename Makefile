# The two commands that set up a fresh machine (see README.md):
#   make run    a working node on 127.0.0.1:8080 (PostgreSQL, nats-server and a Kubo started for you)
#   make test   the whole test suite
.PHONY: run test deps build bench clean-dev validate format fuzz

deps:
	@scripts/install-deps.sh

build: deps
	swift build

run: deps
	@scripts/dev-run.sh

# --no-parallel: the multi-process cluster tests (4 servers, 4 fake Kubos, nats-server,
# PostgreSQL) and the timing-checked Kubo contract tests starve each other on 2 cores.
test: deps
	swift test --no-parallel

# schemathesis (every check) and the storage/tenancy properties against a throwaway node
# (scripts/fuzz.sh; FUZZ_MAX_SECONDS bounds it). Installs schemathesis into .anchorage/fuzz-venv.
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
