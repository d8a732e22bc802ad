# virt-failover: build, test and demo. Run as root on Debian 12; the targets install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := build

# The go directive in go.mod pins the toolchain; any go >= 1.21 fetches it through the module proxy.
export GOTOOLCHAIN := auto
GO      ?= go
BIN     := bin/virt-failover
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -s -w -X main.buildVersion=$(VERSION)
# Packages the tests and the demo need: libvirt and QEMU for the two private hosts, xmllint for
# virt-xml-validate, kmod and cpio for the guest image, xz-utils to unpack libvirt's source.
APT_PKGS := libvirt-daemon-system libvirt-clients qemu-system-x86 libxml2-utils kmod cpio iproute2 util-linux gcc xz-utils
# What the tests need besides: ansible and python3-apt (its apt module) for deploy/ansible.
TEST_APT_PKGS := ansible python3-apt
E2E_ROUNDS ?= 1
# Static checks beyond vet, run from the module proxy at pinned versions.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DEADCODE    := golang.org/x/tools/cmd/deadcode@v0.52.0
# libvirt's own test suite (the test domains of the installed libvirt), fetched from Debian's
# source package through apt with private sources and lists, and cached here.
LIBVIRT_SRC ?= $(CURDIR)/.cache/libvirt-src

# The Debian package: nfpm from the module proxy at a pinned version builds it; lintian (Debian's
# package checker) checks it; the package test also needs logrotate and systemd-analyze.
NFPM         := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
DEB_APT_PKGS := lintian logrotate systemd
DEB_STAGE    := bin/deb
DEB_DOC      := $(DEB_STAGE)/root/usr/share/doc/virt-failover
# The commit's time dates the man pages, the changelog and the files in the package.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
DEB_VERSION    ?= $(shell sh install/deb/version '$(VERSION)' '$(SOURCE_DATE_EPOCH)')-1
DEB_MAINTAINER ?= $(shell git log -1 --format='%an <%ae>' 2>/dev/null)
DEB            := bin/virt-failover_$(DEB_VERSION)_amd64.deb

.PHONY: build test unit e2e demo bench check clean deps go-check apt-deps modules docs libvirt-tests deb deb-test deb-apt-deps test-apt-deps

build: go-check modules
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/virt-failover

## test: everything: format and vet checks, unit tests with the race detector, the Debian package
## and its checks, the end-to-end suite.
test: deps check unit deb-test e2e

unit: go-check modules libvirt-tests test-apt-deps
	VF_LIBVIRT_TESTS=$$(ls -d $(LIBVIRT_SRC)/libvirt-*/tests | head -n 1) $(GO) test -race -count=1 ./...

## e2e: two private libvirt hosts on this machine, live failover migrations; libvirt's own test
## domains defined in an embedded libvirt and linted (root).
## Host B of TestFailoverMigration installs the package (VF_DEB) with dpkg inside its namespaces.
e2e: deps build libvirt-tests deb
	VF_E2E=1 VF_BIN=$(CURDIR)/$(BIN) VF_DEB=$(CURDIR)/$(DEB) VF_ROUNDS=$(E2E_ROUNDS) VF_LIBVIRT_SRC=$(LIBVIRT_SRC) $(GO) test -count=1 -timeout 40m -v ./e2e/

## libvirt-tests: fetch the installed libvirt's test suite into $(LIBVIRT_SRC) (once; then cached).
libvirt-tests: go-check apt-deps
	$(GO) run ./e2e/libvirtsrc/fetch -dir $(LIBVIRT_SRC)

## demo: the main job, narrated: a failover guest migrated back and forth between two hosts.
demo: deps build
	VF_BIN=$(CURDIR)/$(BIN) $(GO) run ./e2e/demo

bench: go-check modules build
	$(GO) test -run '^$$' -bench . -benchmem ./xmlxform/ ./policy/ ./policy/lint/ ./policy/pair/ ./hooks/ ./internal/ledger/
	$(GO) run ./internal/hookbench -bin $(BIN)
	$(GO) run ./internal/hookbench -bin $(BIN) -pools

check: go-check modules
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt wants changes in:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags gendocs ./cmd/virt-failover
	$(GO) run $(STATICCHECK) ./...
	@out=$$($(GO) run $(DEADCODE) -test ./...); \
	  if [ -n "$$out" ]; then echo "deadcode: unreachable functions:"; echo "$$out"; exit 1; fi

## docs: regenerate docs/rules.md from the rule registry (a test fails when it is stale).
docs: go-check
	$(GO) generate ./policy/lint

## deb: the Debian package $(DEB): the static binary, the sample policy as a conffile, man pages
## and bash/zsh/fish completions made from the command definitions, the watch unit, a logrotate
## file, README.md and docs/, copyright and changelog, and maintainer scripts that run
## "virt-failover install" and "uninstall". lintian must report no error.
deb: go-check modules build deb-apt-deps
	rm -rf $(DEB_STAGE) && mkdir -p $(DEB_DOC)/docs
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run -tags gendocs -ldflags '$(LDFLAGS)' ./cmd/virt-failover -out $(DEB_STAGE)/root
	$(GO) run ./internal/debcopyright -bin $(BIN) -o $(DEB_DOC)/copyright
	gzip -9n < README.md > $(DEB_DOC)/README.md.gz
	for f in docs/*.md; do gzip -9n < $$f > $(DEB_DOC)/docs/$$(basename $$f).gz; done
	{ echo '- semver: "$(DEB_VERSION)"'; \
	  echo "  date: $$(date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)"; \
	  echo '  packager: "$(DEB_MAINTAINER)"'; \
	  echo '  deb: {urgency: medium, distributions: [unstable]}'; \
	  echo '  changes:'; \
	  echo "    - commit: $$(git rev-parse HEAD 2>/dev/null || echo unknown)"; \
	  echo '      note: "Built from virt-failover $(VERSION)."'; } > $(DEB_STAGE)/changelog.yml
	rm -f bin/virt-failover_*.deb
	DEB_VERSION='$(patsubst %-1,%,$(DEB_VERSION))' DEB_MAINTAINER='$(DEB_MAINTAINER)' SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) \
	  $(GO) run $(NFPM) package -f install/deb/nfpm.yaml -p deb -t $(DEB)
	lintian -I --fail-on error $(DEB)

## deb-test: build the package and check it: its files, modes, conffiles and scripts, lintian, and
## the scripts run by dpkg into a throwaway root (install, remove, purge); never into /; the
## Ansible role applied to a scratch host of overlays (deploy/ansible).
deb-test: deb test-apt-deps
	VF_DEB=$(CURDIR)/$(DEB) $(GO) test -count=1 -v -run 'Deb' ./install/deb/ ./deploy/ansible/

deb-apt-deps:
	@$(MAKE) --no-print-directory apt-deps APT_PKGS='$(DEB_APT_PKGS)'

test-apt-deps:
	@$(MAKE) --no-print-directory apt-deps APT_PKGS='$(TEST_APT_PKGS)'

clean:
	rm -rf bin .cache/e2e

deps: go-check apt-deps modules

go-check:
	@command -v $(GO) >/dev/null || { echo "make: go is not installed. Install Go >= 1.21 (https://go.dev/dl; Debian 12's golang-go 1.19 is too old), put it on PATH and run make again: the go command then fetches the toolchain go.mod pins." >&2; exit 1; }
	@v=$$($(GO) env GOVERSION 2>/dev/null | sed 's/^go//'); maj=$${v%%.*}; rest=$${v#*.}; min=$${rest%%.*}; \
	  if [ -z "$$v" ] || [ "$$maj" -lt 1 ] || { [ "$$maj" -eq 1 ] && [ "$$min" -lt 21 ]; }; then \
	    echo "make: go $$v is too old to fetch the toolchain go.mod pins. Install Go >= 1.21 (https://go.dev/dl) and run make again." >&2; exit 1; fi

apt-deps:
	@missing=$$(for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "make: missing packages: $$missing; run as root (or apt-get install them) and try again" >&2; exit 1; fi; \
	  echo "installing: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

modules: go-check
	$(GO) mod download
