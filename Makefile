# Builds a Rust function for the Node.js runtime of Google Cloud Functions, serves it
# locally the way the cloud loads it, and runs the project's test suite. `make help` lists
# the targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := package
MAKEFLAGS += --no-print-directory

# The crate and binary that function.zip ships (see function/src/main.rs).
FUNCTION_CRATE ?= function
FUNCTION_BIN ?= function
# The function `make test` and `make dev` serve, and where.
TARGET ?= hello
PORT ?= 8080

# Shipped ELF files must load on the cloud's oldest supported glibc.
GLIBC ?= 2.17
TRIPLE := x86_64-unknown-linux-gnu
RELEASE := target/$(TRIPLE)/release
PACKAGE := build/package

# Build tools are installed on first use into a cache outside the repository.
TOOLS ?= $(HOME)/.cache/functions-framework-rust
ZIG_VERSION := 0.17.1
ZIGBUILD_VERSION := 0.24.1
ZIG := $(TOOLS)/ziglang-$(ZIG_VERSION)/ziglang/zig
ZIGBUILD := $(TOOLS)/cargo-zigbuild-$(ZIGBUILD_VERSION)/bin/cargo-zigbuild

NODE_TESTS := tests/node

.PHONY: help package release check test dev clean tools node-deps system-tools

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 20

package: function.zip ## (default) build function.zip for a Node.js Cloud Functions runtime

$(ZIG):
	@echo "==> First use: installing zig $(ZIG_VERSION) (PyPI package ziglang) into $(TOOLS)"
	@command -v python3 >/dev/null || { echo "python3 is needed to install zig: install Python 3 and retry" >&2; exit 1; }
	python3 -m pip install --quiet --disable-pip-version-check --target $(TOOLS)/ziglang-$(ZIG_VERSION) ziglang==$(ZIG_VERSION)

$(ZIGBUILD):
	@echo "==> First use: installing cargo-zigbuild $(ZIGBUILD_VERSION) into $(TOOLS) (a minute or two, once)"
	cargo install --quiet --locked cargo-zigbuild@$(ZIGBUILD_VERSION) --root $(TOOLS)/cargo-zigbuild-$(ZIGBUILD_VERSION)

tools: $(ZIG) $(ZIGBUILD)

# zip and unzip for the package, objdump for its glibc check: Debian/Ubuntu packages.
system-tools:
	@missing=""; for tool in zip unzip objdump; do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		echo "==> First use: installing$$missing (apt packages zip unzip binutils)"; \
		apt-get update -qq && apt-get install -y -qq zip unzip binutils >/dev/null \
			|| { echo "could not install$$missing: install the packages zip, unzip and binutils and retry" >&2; exit 1; }; \
	fi

release: tools ## build the function binary and the shim in release mode, for glibc 2.17 and later
	CARGO_ZIGBUILD_ZIG_PATH=$(ZIG) $(ZIGBUILD) zigbuild --release --target $(TRIPLE).$(GLIBC) \
		-p $(FUNCTION_CRATE) -p shim-node

function.zip: release system-tools
	rm -rf $(PACKAGE) && mkdir -p $(PACKAGE)
	install -m 0644 index.js $(PACKAGE)/index.js
	install -m 0755 $(RELEASE)/libshim_node.so $(PACKAGE)/shim.node
	install -m 0755 $(RELEASE)/$(FUNCTION_BIN) $(PACKAGE)/function-server
	node tools/package-json.js $(PACKAGE)/function-server $(PACKAGE)/package.json
	rm -f $@.tmp && (cd $(PACKAGE) && zip -q -X ../../$@.tmp index.js package.json shim.node function-server)
	mv $@.tmp $@
	@echo "==> function.zip ($$(du -k $@ | cut -f1) KiB): upload it to a Node.js Cloud Functions runtime (see README)"

test: function.zip ## serve the function on localhost:8080 (PORT=...) the way the cloud loads it
	@echo "==> Serving $(PACKAGE) through Node.js and the shim (FUNCTION_TARGET=$(TARGET))"
	cd $(PACKAGE) && FUNCTION_TARGET=$(TARGET) PORT=$(PORT) exec node ../../tools/cloud-worker.js

dev: ## run the function binary directly, without Node.js
	FUNCTION_TARGET=$(TARGET) PORT=$(PORT) cargo run -p $(FUNCTION_CRATE)

node-deps: $(NODE_TESTS)/node_modules/.package-lock.json

$(NODE_TESTS)/node_modules/.package-lock.json: $(NODE_TESTS)/package.json $(NODE_TESTS)/package-lock.json
	cd $(NODE_TESTS) && npm ci --no-audit --no-fund --loglevel=error

check: node-deps ## every test: formatting, clippy, Rust tests, Node.js end-to-end tests, the package
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test --workspace
	cargo build -p shim-node -p test-functions
	$(MAKE) function.zip
	cd $(NODE_TESTS) && node --test --test-concurrency=1 ./*.test.js

clean: ## remove build outputs (the tool cache stays)
	cargo clean
	rm -rf build function.zip function.zip.tmp $(NODE_TESTS)/node_modules
