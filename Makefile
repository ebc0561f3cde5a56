# The two commands a new user needs: `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
PORT ?= 6379
MODULE := target/release/libredis_whitelist.so
# The integration tests load this build: debug, with the test-only
# WHITELIST.DEBUG-PANIC command that release builds never contain.
TEST_MODULE := target/debug/libredis_whitelist.so

.PHONY: deps build run test unit integration bench bench-server fuzz soak clean

deps:
	@scripts/deps.sh

build: deps
	$(CARGO) build --release

# Starts redis-server in the foreground with redis.conf.example and the module
# (its dump.rdb lands in this directory). Stop it with Ctrl-C.
run: build
	@if (exec 3<>/dev/tcp/127.0.0.1/$(PORT)) 2>/dev/null; then \
		echo "Port $(PORT) is already in use (Debian starts its own redis-server service)." >&2; \
		echo "Stop it with 'sudo systemctl stop redis-server', or use another port: make run PORT=6380" >&2; \
		exit 1; \
	fi
	redis-server redis.conf.example --port $(PORT)

# The whole gate: formatting, lints, unit and property tests, integration tests.
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --workspace --all-targets --features debug-panic -- -D warnings
	$(MAKE) --no-print-directory unit integration

unit:
	$(CARGO) test -p redis-whitelist-core

integration:
	$(CARGO) build -p redis-whitelist --features debug-panic
	WHITELIST_MODULE="$(CURDIR)/$(TEST_MODULE)" $(CARGO) test -p redis-whitelist --tests -- --test-threads 2

# Matcher benchmarks (criterion): lookup, rebuild, memory per entry.
bench: deps
	$(CARGO) bench -p redis-whitelist-core --bench matcher

# Whole-server figures: Redis with the module against Redis without it, and
# the floor module, in the same run (see BENCHMARKS.md).
bench-server: deps
	@scripts/deps.sh valgrind
	$(CARGO) build --release --lib --example floor
	scripts/bench-server.sh

# Bounded fuzzing of the parsers (entries, commands, JSON documents, CLIENT
# LIST, config lines) and the aux decoder; FUZZ_SECONDS per target (default 60).
fuzz: deps
	scripts/fuzz.sh

# The long soak: allowed clients at work while denied connections flood in
# and the rules change (the tests run a 10-second version).
soak: deps
	$(CARGO) build --release --lib
	scripts/soak.sh

clean:
	$(CARGO) clean
	rm -rf dump.rdb appendonlydir
