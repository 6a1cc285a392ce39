# turnwall — build, demo and test targets. `make demo` and `make test` are the
# two commands a fresh machine needs (see README).

GO        ?= go
BIN       := bin/turnwall
DEMO      ?= policies/private-relay
FUZZTIME  ?= 15s
PKGS      := ./...
DEB_PKGS  := nftables iproute2 coturn chromium

.PHONY: all build demo verify test unit vet fmt fmt-check bench bench-nftables fuzz deps clean golden screenshots

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
	./backends/nftables/ ./backends/panos/ ./backends/platform/ ./cmd/turnwall/
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

FUZZ_PKGS := ./compiler/ ./compiler/ranges/ ./relay/peerfilter/

# A short coverage-guided run of every fuzz target.
fuzz:
	@for pkg in $(FUZZ_PKGS); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# Debian packages the tests need (nftables, iproute2, coturn), installed when
# missing. Needs root, as on CI.
deps:
	@missing=""; \
	command -v nft >/dev/null 2>&1 || missing="$$missing nftables"; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v turnserver >/dev/null 2>&1 || missing="$$missing coturn"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root to install$$missing" >&2; exit 1; fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	else echo "deps: $(DEB_PKGS) present"; fi
	$(GO) mod download

clean:
	rm -rf bin
