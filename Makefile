# turnwall — build, demo and test targets. `make demo` and `make test` are the
# two commands a fresh machine needs (see README).

GO        ?= go
BIN       := bin/turnwall
DEMO      ?= policies/private-relay
FUZZTIME  ?= 15s
PKGS      := ./...
DEB_PKGS  := nftables iproute2 coturn chromium lintian dpkg-dev systemd util-linux redis-server postgresql graphviz prometheus nodejs npm python3-pyfg ansible
# nfpm builds the Debian package; pinned, fetched through the Go module proxy.
NFPM_VERSION := v2.48.0
NFPM      ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
DIST      ?= dist
# The pinned Mermaid CLI the graph tests render with (npm ci, node_modules
# not committed); it drives Debian's chromium, never a downloaded browser.
MERMAID_DIR := deploy/mermaid

.PHONY: all build demo verify test unit vet fmt fmt-check bench bench-nftables bench-compile fuzz deps clean golden deb man screenshots

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

# Pictures of the readiness pages for docs/, taken by the browser test.
screenshots:
	TURNWALL_SCREENSHOTS=$(CURDIR)/docs $(GO) test -count=1 -run '^TestBrowserWorkingPath$$' ./relay/readiness/

# Every benchmark. Among them (root; they fail instead of skipping when
# CI=true): backends/nftables/apply's BenchmarkApply/Reapply/Delta (netlink
# against `nft -f` of the same text, alternately, at 1, 2 and 4 x 100,000
# intervals and the 100,000-prefix policy) and BenchmarkForward (packets per
# second through a gateway namespace per ruleset against conntrack only).
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Only the nftables apply and forwarding benchmarks, three iterations each.
bench-nftables:
	$(GO) test -run '^$$' -bench 'Apply|Reapply|Delta|Forward' -benchtime 3x ./backends/nftables/apply/

# Compile throughput alone (README, Speed): a 50,000-prefix ranges_file policy
# against its floor (read, parse and write the prefixes) measured in the same
# run, in process up to the IR, then as whole `turnwall` processes per target
# (TURNWALL_BENCH_BASE=path/to/other/turnwall adds another build's runs).
bench-compile:
	$(GO) test -run '^$$' -bench '^BenchmarkRangesFile50k$$' -benchmem -benchtime 20x ./compiler/
	$(GO) test -run '^$$' -bench '^BenchmarkRangesFile50kProcess$$' -benchtime 1x ./cmd/turnwall/

FUZZ_PKGS := ./compiler/ ./compiler/ranges/ ./relay/peerfilter/ ./relay/store/

# A short coverage-guided run of every fuzz target.
fuzz:
	@for pkg in $(FUZZ_PKGS); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# The Debian package (dist/turnwall_VERSION_ARCH.deb): binary, man pages,
# completions, docs, examples and systemd units (packaging/, docs/install.md).
# DEB_VERSION overrides the version (default: packaging/VERSION~gitDATE.REV).
deb:
	GO="$(GO)" NFPM="$(NFPM)" packaging/build-deb.sh $(DIST)

# Man pages, the Markdown CLI reference and completions under bin/, generated
# from the commands (the package build does the same).
man: build
	rm -rf bin/man bin/cli bin/completions
	$(BIN) gen-docs --man bin/man --markdown bin/cli --completions bin/completions

# Debian packages the tests need (nftables, iproute2, coturn with turnadmin;
# chromium for the browser tests; lintian, dpkg-dev, systemd-analyze and setpriv
# for the package tests; redis-server and postgresql for relay/store; graphviz
# (dot renders the graph output), prometheus (promtool checks the alerting
# rules), nodejs/npm (the pinned Mermaid CLI)), installed when missing; then the
# Mermaid CLI itself, from deploy/mermaid/package-lock.json. Needs root, as on CI.
deps:
	@missing=""; \
	command -v nft >/dev/null 2>&1 || missing="$$missing nftables"; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v turnserver >/dev/null 2>&1 || missing="$$missing coturn"; \
	command -v lintian >/dev/null 2>&1 || missing="$$missing lintian"; \
	command -v dpkg-architecture >/dev/null 2>&1 || missing="$$missing dpkg-dev"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	command -v setpriv >/dev/null 2>&1 || missing="$$missing util-linux"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v dot >/dev/null 2>&1 || missing="$$missing graphviz"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	/usr/bin/python3 -c 'import pyFG.forticonfig' >/dev/null 2>&1 || missing="$$missing python3-pyfg"; \
	test -d /usr/lib/python3/dist-packages/ansible_collections/cisco/asa || missing="$$missing ansible"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root to install$$missing" >&2; exit 1; fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	else echo "deps: $(DEB_PKGS) present"; fi
	$(GO) mod download
	@# Fetch and build the pinned nfpm now, so the package tests do not wait on it.
	$(NFPM) --version >/dev/null
	@$(MAKE) --no-print-directory $(MERMAID_DIR)/node_modules/.installed

# npm ci of the pinned versions; scripts off and PUPPETEER_SKIP_DOWNLOAD so
# that no browser is fetched (puppeteer-config.json points at Debian's).
$(MERMAID_DIR)/node_modules/.installed: $(MERMAID_DIR)/package.json $(MERMAID_DIR)/package-lock.json
	cd $(MERMAID_DIR) && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund
	touch $@

clean:
	rm -rf bin $(DIST)
