# turnwall — build, demo and test targets. `make demo` and `make test` are the
# two commands a fresh machine needs (see README).

GO        ?= go
BIN       := bin/turnwall
DEMO      ?= policies/private-relay
FUZZTIME  ?= 15s
PKGS      := ./...
DEB_PKGS  := nftables iproute2 coturn graphviz prometheus chromium nodejs npm
# The pinned Mermaid CLI the graph tests render with (npm ci, node_modules
# not committed); it drives Debian's chromium, never a downloaded browser.
MERMAID_DIR := deploy/mermaid

.PHONY: all build demo verify test unit vet fmt fmt-check bench fuzz deps clean golden

all: build

build:
	$(GO) build -o $(BIN) ./cmd/turnwall

# The main job on a shipped example: validate, then compile to the IR and nftables.
demo: build
	$(BIN) validate $(DEMO)
	$(BIN) compile $(DEMO) --target ir,nftables

# Prove every shipped example end to end in network namespaces: flows, the
# relays, ICE servers and WebRTC calls (root, iproute2, nftables).
verify: build deps
	@for p in policies/*/; do echo "== turnwall verify $$p"; $(BIN) verify -q $$p || exit 1; done

# Every test: formatting, vet, unit, golden, CLI scripts, fuzz seed corpora
# (go test runs them as regression tests) and kernel tests where they exist.
test: fmt-check vet unit

unit:
	$(GO) test -count=1 $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Rewrite golden files after an intended output change; review the diff.
GOLDEN_PKGS := ./compiler/ ./compiler/ranges/ ./backends/asa/ ./backends/coturn/ ./backends/fortios/ \
	./backends/nftables/ ./backends/panos/ ./backends/platform/ ./backends/graph/ ./cmd/turnwall/
golden:
	$(GO) test $(GOLDEN_PKGS) -update

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

FUZZ_PKGS := ./compiler/ ./compiler/ranges/ ./relay/peerfilter/

# A short coverage-guided run of every fuzz target.
fuzz:
	@for pkg in $(FUZZ_PKGS); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# Debian packages the tests need, installed when missing: nftables,
# iproute2, coturn (kernel and relay tests), graphviz (dot renders the graph
# output), prometheus (promtool checks the alerting rules), chromium and
# nodejs/npm (the pinned Mermaid CLI renders the Mermaid output). Then the
# Mermaid CLI itself, from deploy/mermaid/package-lock.json. Needs root, as on CI.
deps:
	@missing=""; \
	command -v nft >/dev/null 2>&1 || missing="$$missing nftables"; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v turnserver >/dev/null 2>&1 || missing="$$missing coturn"; \
	command -v dot >/dev/null 2>&1 || missing="$$missing graphviz"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root to install$$missing" >&2; exit 1; fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	else echo "deps: $(DEB_PKGS) present"; fi
	$(GO) mod download
	@$(MAKE) --no-print-directory $(MERMAID_DIR)/node_modules/.installed

# npm ci of the pinned versions; scripts off and PUPPETEER_SKIP_DOWNLOAD so
# that no browser is fetched (puppeteer-config.json points at Debian's).
$(MERMAID_DIR)/node_modules/.installed: $(MERMAID_DIR)/package.json $(MERMAID_DIR)/package-lock.json
	cd $(MERMAID_DIR) && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund
	touch $@

clean:
	rm -rf bin
