# The two commands a newcomer needs are `make run` and `make test`; each installs what it lacks.
SHELL := /bin/bash
# The build's npm tools (tools/: wasm-opt, lightningcss, terser) come first. Debian
# puts mosquitto in /usr/sbin, which is not on a normal user's PATH.
export PATH := $(CURDIR)/tools/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH):/usr/sbin
# cargo with the flags the site is built with, so it reuses that build (see scripts/lib.sh).
CARGO_SAME := RUSTFLAGS="--cfg erase_components" cargo

.PHONY: run test soak dev build release dist lint bench screenshots clean-data cluster

## run: build the release dashboard and start it with three simulated devices (http://127.0.0.1:3000)
run: release
	$(CARGO_SAME) build --release -p simulator
	scripts/run.sh target/release

## test: dependency checks (cargo deny), Rust unit and integration tests, then Playwright in Chromium
test:
	scripts/setup.sh test
	scripts/test.sh

## soak: kill -9 the server 20 times under load (embedded broker, and behind Mosquitto), restart
## Mosquitto 10 times under load, 20 stuck live clients, 200 devices for 30 minutes; prints the counts
soak:
	scripts/setup.sh test
	$(CARGO_SAME) build -p simulator
	$(CARGO_SAME) test -p server --test soak -- --ignored --nocapture --test-threads 1

## cluster: cluster mode on this machine: PostgreSQL, Mosquitto, three release nodes behind haproxy on
## http://127.0.0.1:3000 (no stickiness), and six simulated devices; Ctrl-C stops everything
cluster: release
	scripts/setup.sh cluster
	$(CARGO_SAME) build --release -p simulator
	scripts/cluster.sh target/release

## dev: cargo leptos watch (rebuild and reload on change) plus the simulator; no service worker
dev:
	scripts/setup.sh dev
	$(CARGO_SAME) build -p simulator
	# cargo-leptos writes unhashed files: a manifest left by scripts/site.sh would point pages
	# at an older build's hashed ones.
	rm -f target/site/asset-manifest.json
	trap 'kill 0' EXIT; (sleep 20; until curl -fsS http://127.0.0.1:3000/healthz >/dev/null 2>&1; do sleep 1; done; target/debug/simulator) & cargo leptos watch

## build: debug build of the server and site
build:
	scripts/setup.sh build
	scripts/build.sh
	scripts/site.sh

## release: size-optimised WASM (wasm-opt) and the release server binary, site in target/site
release:
	scripts/setup.sh run
	scripts/build.sh release
	scripts/site.sh target/site best

## dist: one tarball (server, simulator, web client, configuration, systemd unit) that runs on
## another Debian machine without a toolchain; checked by unpacking and starting it in an empty folder
dist: release
	$(CARGO_SAME) build --release -p simulator
	scripts/dist.sh

## bench: every benchmark (ingest, latency, history vs SQLite, storage, alarms, memory, client, fleet, commands, PostgreSQL, cluster); prints tables and
## writes docs/benchmarks.md
bench: release
	scripts/setup.sh test
	scripts/bench.sh

## screenshots: the README's screenshots (docs/screenshots/, each under 150 KB) from Playwright
## against the real server with a day of the simulator's kind of readings
screenshots:
	scripts/setup.sh test
	scripts/build.sh
	scripts/site.sh
	scripts/screenshots.sh

## lint: formatting, the icons file up to date (tools/icons.mjs), no import circles between modules
## (tools/module_cycles.py: the server's modules, the app's modules and rooms), and clippy, warnings
## as errors
lint:
	cargo fmt --all --check
	node tools/icons.mjs --check
	python3 tools/module_cycles.py server/src
	python3 tools/module_cycles.py app/src
	python3 tools/module_cycles.py --depth 1 app/src
	$(CARGO_SAME) clippy --workspace --all-targets -- -D warnings

## clean-data: delete the local database (data/)
clean-data:
	rm -rf data
