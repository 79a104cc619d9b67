# Builds a Rust function for the Node.js runtime of Google Cloud Functions, serves it
# locally the way the cloud loads it, and runs the project's test suite. `make help` lists
# the targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := package
MAKEFLAGS += --no-print-directory

# The crate whose binary `function` the package ships (see function/src/main.rs); any
# crate made by `ff-rust new` or `ff-rust convert` works too: make FUNCTION_DIR=path.
FUNCTION_DIR ?= function
FUNCTION_BIN ?= function
# Where the package goes (not `ZIP`: zip reads that variable as options).
FUNCTION_ZIP ?= function.zip
# What node_modules/.bin/functions-framework is in the package, the command the runtime
# starts: `node` (a small Node.js launcher requiring index.js, whose shim execs the binary)
# or `direct` (the Rust binary itself; Node.js never starts). See docs/deploy.md.
LAUNCHER ?= node
# The function `make test` and `make dev` serve (by default the only one registered), and
# where.
TARGET ?=
PORT ?= 8080
# The local workflow (make dev, make invoke) is ff-rust's, built from this checkout.
FF_RUST := cargo run --quiet -p functions-framework-cli --bin ff-rust --

# Shipped ELF files must load on the cloud's oldest supported glibc.
GLIBC ?= 2.17
TRIPLE := x86_64-unknown-linux-gnu
RELEASE := target/$(TRIPLE)/release
PACKAGE ?= build/package

# Build tools are installed on first use into a cache outside the repository.
TOOLS ?= $(HOME)/.cache/functions-framework-rust
ZIG_VERSION := 0.17.1
ZIGBUILD_VERSION := 0.24.1
ZIG := $(TOOLS)/ziglang-$(ZIG_VERSION)/ziglang/zig
ZIGBUILD := $(TOOLS)/cargo-zigbuild-$(ZIGBUILD_VERSION)/bin/cargo-zigbuild
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ_BIN := $(TOOLS)/cargo-fuzz-$(CARGO_FUZZ_VERSION)/bin
# Fuzzing: how long each target runs in `make fuzz` (and so in `make check`).
FUZZ_SECONDS ?= 15
FUZZ_TARGETS := cloudevent_decode google_event_data convert config

NODE_TESTS := tests/node
INJECTED_FF := $(NODE_TESTS)/injected-ff

# The benchmark's tools and peers (wrk, the Node.js and Python Functions Frameworks,
# matplotlib), installed on first use into a cache outside the repository.
BENCH_CACHE ?= $(TOOLS)/bench
BENCH_VENV := $(BENCH_CACHE)/venv
BENCH_NODE_PEER := $(BENCH_CACHE)/node-peer
BENCH_PEERS := benches/peers
MATPLOTLIB_VERSION := 3.11.2

.PHONY: help package release check test dev invoke clean distclean tools node-deps system-tools test-tools fuzz soak bench bench-tools generate protobuf-fixtures cli publish-check

# The event types are generated from third_party/google-cloudevents by tools/events-codegen
# (prost, pbjson and protox: no protoc) and checked in.
EVENTS_CODEGEN := cargo run --quiet --locked --release --manifest-path tools/events-codegen/Cargo.toml \
	--target-dir $(CURDIR)/target/events-codegen --
EVENTS_GENERATED := events/src/generated
# Google's Python CloudEvents library, which encodes the protobuf fixtures: pinned in
# tools/events/requirements.txt, installed on first use into the tool cache.
EVENTS_PY := $(TOOLS)/google-events-py-$(shell cksum < tools/events/requirements.txt | cut -d' ' -f1)

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 20

package: $(FUNCTION_ZIP) ## (default) build function.zip for a Node.js Cloud Functions runtime (LAUNCHER=node|direct)

$(ZIG):
	@echo "==> First use: installing zig $(ZIG_VERSION) (PyPI package ziglang) into $(TOOLS)"
	@command -v python3 >/dev/null || { echo "python3 is needed to install zig: install Python 3 and retry" >&2; exit 1; }
	python3 -m pip install --quiet --disable-pip-version-check --target $(TOOLS)/ziglang-$(ZIG_VERSION) ziglang==$(ZIG_VERSION)

$(ZIGBUILD):
	@echo "==> First use: installing cargo-zigbuild $(ZIGBUILD_VERSION) into $(TOOLS) (a minute or two, once)"
	cargo install --quiet --locked cargo-zigbuild@$(ZIGBUILD_VERSION) --root $(TOOLS)/cargo-zigbuild-$(ZIGBUILD_VERSION)

tools: $(ZIG) $(ZIGBUILD) ## install zig and cargo-zigbuild into the tool cache

$(CARGO_FUZZ_BIN)/cargo-fuzz:
	@echo "==> First use: installing cargo-fuzz $(CARGO_FUZZ_VERSION) into $(TOOLS) (a minute or two, once)"
	cargo install --quiet --locked cargo-fuzz@$(CARGO_FUZZ_VERSION) --root $(TOOLS)/cargo-fuzz-$(CARGO_FUZZ_VERSION)

# zip and unzip for the package, objdump for its glibc check: Debian/Ubuntu packages.
system-tools: ## install zip, unzip and binutils with apt-get (as root) when one is missing
	@missing=""; for tool in zip unzip objdump; do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		echo "==> First use: installing$$missing (apt packages zip unzip binutils)"; \
		apt-get update -qq && apt-get install -y -qq zip unzip binutils >/dev/null \
			|| { echo "could not install$$missing: install the packages zip, unzip and binutils and retry" >&2; exit 1; }; \
	fi

release: tools ## build the function binary and the shim in release mode, for glibc 2.17 and later
	CARGO_ZIGBUILD_ZIG_PATH=$(ZIG) $(ZIGBUILD) zigbuild --release --target $(TRIPLE).$(GLIBC) \
		--manifest-path $(FUNCTION_DIR)/Cargo.toml --target-dir $(CURDIR)/target --bin $(FUNCTION_BIN)
	CARGO_ZIGBUILD_ZIG_PATH=$(ZIG) $(ZIGBUILD) zigbuild --release --target $(TRIPLE).$(GLIBC) -p shim-node

$(FUNCTION_ZIP): release system-tools
	node tools/package.js --binary $(RELEASE)/$(FUNCTION_BIN) --shim $(RELEASE)/libshim_node.so \
		--launcher $(LAUNCHER) --stage $(PACKAGE) --out $@
	@echo "==> $@ ($$(du -k $@ | cut -f1) KiB, $(LAUNCHER) launcher): upload it to a Node.js Cloud Functions runtime (see README)"

test: $(FUNCTION_ZIP) ## serve the function on localhost:8080 (PORT=...) the way the cloud loads it
	@echo "==> Serving $(PACKAGE) through Node.js and the shim"
	cd $(PACKAGE) && $(if $(TARGET),FUNCTION_TARGET=$(TARGET)) FUNCTIONS_FRAMEWORK_EXEC=1 PORT=$(PORT) \
		exec node $(CURDIR)/tools/cloud-worker.js

dev: ## run the function binary directly (no Node.js), rebuilt and restarted on every change (ff-rust dev)
	$(FF_RUST) dev --manifest-path $(FUNCTION_DIR)/Cargo.toml --bin $(FUNCTION_BIN) --port $(PORT) \
		$(if $(TARGET),--target $(TARGET))

invoke: ## send a test event to the local function: make invoke FIXTURE=pubsub-binary [FORM=binary|structured|legacy] (without FIXTURE: the list)
	$(FF_RUST) invoke $(or $(FIXTURE),--list) --url http://localhost:$(PORT)/ $(if $(FORM),--as $(FORM))

cli: tools ## ff-rust for distribution: a release build that carries the prebuilt shim (target/release/ff-rust, cargo-ff-rust)
	CARGO_ZIGBUILD_ZIG_PATH=$(ZIG) $(ZIGBUILD) zigbuild --release --target $(TRIPLE).$(GLIBC) -p shim-node
	FF_RUST_SHIM=$(CURDIR)/$(RELEASE)/libshim_node.so cargo build --release -p functions-framework-cli
	@echo "==> target/release/ff-rust and target/release/cargo-ff-rust carry the shim: put them on PATH"

# The crates meant for crates.io, packaged and built from their packages as `cargo publish`
# would (the unpublished ones resolve among themselves).
CRATE_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
PUBLISHED := functions-framework functions-framework-macros functions-framework-events functions-framework-handover functions-framework-cli
publish-check: ## cargo package (and its verifying build) of every crate meant for crates.io
	@# The verifying build unpacks each package into CARGO_HOME, under the name of a temporary
	@# registry, and reuses a copy unpacked by an earlier run of the same version: ours are
	@# removed first, so that today's sources are the ones verified.
	rm -rf $${CARGO_HOME:-$$HOME/.cargo}/registry/src/-*/functions-framework*-$(CRATE_VERSION)
	cargo package --quiet --allow-dirty $(addprefix -p ,$(PUBLISHED)) --target-dir target/package-check

node-deps: $(NODE_TESTS)/node_modules/.package-lock.json $(INJECTED_FF)/node_modules/.package-lock.json ## install the Node.js tests' packages (npm ci)

$(NODE_TESTS)/node_modules/.package-lock.json: $(NODE_TESTS)/package.json $(NODE_TESTS)/package-lock.json
	cd $(NODE_TESTS) && npm ci --no-audit --no-fund --loglevel=error

# The Functions Framework the cloud's build injects into packages that do not depend on it,
# installed the way the build installs it, for the cloud build-and-launch emulation.
$(INJECTED_FF)/node_modules/.package-lock.json: $(INJECTED_FF)/package.json $(INJECTED_FF)/package-lock.json
	npm ci --quiet --production --no-audit --no-fund --prefix $(INJECTED_FF)

# h2load for the HTTP/2 tests (Debian package nghttp2-client); curl must speak HTTP/2 too.
test-tools: ## install the HTTP/2 load client the tests use (apt package nghttp2-client)
	@command -v h2load >/dev/null || { \
		echo "==> First use: installing h2load (apt package nghttp2-client)"; \
		{ apt-get install -y -qq nghttp2-client >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq nghttp2-client >/dev/null; }; } \
			|| { echo "could not install h2load: install the package nghttp2-client and retry" >&2; exit 1; }; }
	@curl --version | grep -q HTTP2 || { echo "curl without HTTP/2 support: install a curl built with nghttp2" >&2; exit 1; }

generate: ## regenerate the event types (events/src/generated) from third_party/google-cloudevents
	$(EVENTS_CODEGEN) --cargo-toml events/Cargo.toml $(EVENTS_GENERATED)

$(EVENTS_PY)/.installed: tools/events/requirements.txt
	@echo "==> First use: installing Google's google-events Python library into $(EVENTS_PY)"
	python3 -m pip install --quiet --disable-pip-version-check --target $(EVENTS_PY) -r $<
	touch $@

protobuf-fixtures: $(EVENTS_PY)/.installed ## re-encode the event fixtures as protobuf with Google's Python library
	PYTHONPATH=$(EVENTS_PY) python3 tools/events/protobuf_fixtures.py

check: node-deps test-tools ## every test: formatting, clippy, Rust tests, Node.js end-to-end tests, the package, fuzzing
	cargo fmt --all -- --check
	@# The checked-in event types are what the protos give, and the invoke fixtures what the
	@# test data gives.
	$(EVENTS_CODEGEN) --check --cargo-toml events/Cargo.toml $(EVENTS_GENERATED)
	python3 tools/events/invoke_fixtures.py --check
	@# The protobuf fixtures are what Google's own library makes of the JSON ones.
	$(MAKE) $(EVENTS_PY)/.installed
	PYTHONPATH=$(EVENTS_PY) python3 tools/events/protobuf_fixtures.py --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p functions-framework-events --all-targets --features full -- -D warnings
	cargo test --workspace
	$(MAKE) publish-check
	@# Panics in the profile that ships: named frames, memory back to idle.
	cargo build --release -p test-functions --no-default-features
	cargo test -p test-functions --test release_panics -- --ignored
	cargo build -p shim-node -p test-functions
	$(MAKE) function.zip
	$(MAKE) package LAUNCHER=direct FUNCTION_ZIP=build/function-direct.zip PACKAGE=build/package-direct
	cd $(NODE_TESTS) && node --test --test-concurrency=1 ./*.test.js
	$(MAKE) fuzz
	@# The fuzz crate's lockfile is committed: a build that changes it means it went stale.
	git diff --exit-code --stat -- fuzz/Cargo.lock || { echo "fuzz/Cargo.lock is stale: commit the updated file" >&2; exit 1; }

fuzz: $(CARGO_FUZZ_BIN)/cargo-fuzz ## fuzz each target for FUZZ_SECONDS (15); crashes land in fuzz/artifacts
	@rustup toolchain list | grep -q '^nightly' || { echo "cargo fuzz needs the nightly toolchain: rustup toolchain install nightly" >&2; exit 1; }
	cd fuzz && mkdir -p logs && for target in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$target; \
		echo "==> fuzzing $$target for $(FUZZ_SECONDS)s"; \
		if PATH="$(CARGO_FUZZ_BIN):$$PATH" cargo +nightly fuzz run $$target corpus/$$target -- \
			-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -print_final_stats=1 > logs/$$target.log 2>&1; then \
			grep -E '^stat::number_of_executed_units' logs/$$target.log || true; \
		else \
			tail -40 logs/$$target.log; \
			echo "fuzz target $$target failed: the crashing input is in fuzz/artifacts/$$target" >&2; exit 1; \
		fi; \
	done

soak: ## the long variants: 1,000,000 requests, 20,000 panics, 10 minutes of fuzzing per target
	FF_SOAK=1 cargo test -p test-functions --test reliability -- --nocapture
	$(MAKE) fuzz FUZZ_SECONDS=600

bench-tools: $(BENCH_VENV)/.installed $(BENCH_NODE_PEER)/node_modules/.package-lock.json ## install what make bench needs: wrk, the Node.js and Python peers, matplotlib
	@command -v wrk >/dev/null || { \
		echo "==> First use: installing the load generator wrk (apt package wrk)"; \
		{ apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }; } \
			|| { echo "could not install wrk: install the package wrk and retry" >&2; exit 1; }; }

$(BENCH_VENV)/.installed: $(BENCH_PEERS)/python/requirements.txt
	@echo "==> First use: installing the Python Functions Framework, gunicorn and matplotlib into $(BENCH_VENV)"
	@command -v python3 >/dev/null || { echo "python3 is needed for the benchmark: install Python 3 and retry" >&2; exit 1; }
	rm -rf $(BENCH_VENV)
	python3 -m venv $(BENCH_VENV) || { echo "python3 -m venv failed: install the venv module (apt package python3-venv) and retry" >&2; exit 1; }
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r $< matplotlib==$(MATPLOTLIB_VERSION)
	touch $@

$(BENCH_NODE_PEER)/node_modules/.package-lock.json: $(BENCH_PEERS)/node/package.json $(BENCH_PEERS)/node/package-lock.json
	@echo "==> First use: installing the Node.js Functions Framework into $(BENCH_NODE_PEER)"
	rm -rf $(BENCH_NODE_PEER) && mkdir -p $(BENCH_NODE_PEER)
	cp $(BENCH_PEERS)/node/package.json $(BENCH_PEERS)/node/package-lock.json $(BENCH_PEERS)/node/.npmrc $(BENCH_NODE_PEER)/
	cd $(BENCH_NODE_PEER) && npm ci --no-audit --no-fund --loglevel=error

bench: bench-tools test-tools $(INJECTED_FF)/node_modules/.package-lock.json ## compare with bare hyper and the Node.js and Python frameworks (BENCH_QUICK=1: short run)
	cargo build --release -p test-functions --no-default-features
	cargo build --release -p hyper-hello -p shim-node
	BENCH_CACHE=$(BENCH_CACHE) $(BENCH_VENV)/bin/python benches/run.py

# Build outputs only: the workspace's target folder, the fuzz crate's own (fuzz/target), the
# fuzz logs, the package and its staging folders. Kept: benchmark reports (results/), which
# are runs people compare, the fuzz corpora and crash inputs (fuzz/corpus, fuzz/artifacts),
# the installed node_modules (see distclean) and the tool cache.
clean: ## remove build outputs (benchmark results, fuzz corpora and installed packages stay)
	cargo clean
	rm -rf fuzz/target fuzz/logs build function.zip function.zip.tmp.zip

distclean: clean ## make clean, and remove the Node.js tests' installed node_modules
	rm -rf $(NODE_TESTS)/node_modules $(INJECTED_FF)/node_modules
