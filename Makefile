# Key Ceremony. `make run` and `make test` are the two commands a new machine needs.
SHELL := /bin/bash
GO ?= go
export LANG ?= C.UTF-8
# Fyne reads the locale in an init function and logs an error for C/C.UTF-8;
# naming English here keeps test and CI output clean (LANGUAGE only affects messages).
export LANGUAGE ?= en
BIN := bin/keyceremony

# Version from FyneApp.toml unless given (make release VERSION=1.2.3); the
# commit from git, marked -dirty for uncommitted changes. Both are stamped into
# the binary (ceremony/buildinfo) and recorded in every ceremony transcript.
VERSION ?= $(shell sed -n 's/^Version *= *"\(.*\)"/\1/p' FyneApp.toml)
COMMIT := $(shell c=$$(git rev-parse HEAD 2>/dev/null) && { git diff --quiet HEAD -- 2>/dev/null || c=$$c-dirty; echo $$c; } || echo unknown)
STAMP = -X github.com/keyceremony/keyceremony/ceremony/buildinfo.stamp=keyceremony-stamp:v1:$(VERSION)+dev:$(COMMIT):end

# System packages: what the app needs at run time and to build the Fyne driver,
# and what the tests add (screenshots, PDF text, the sqlite3 shell for the ingest
# baseline, and the second PKCS#11 implementation: tpm2-pkcs11 over the swtpm
# software TPM behind tpm2-abrmd on a private D-Bus session bus, hsm/tpm2/tpm2test).
RUN_PKGS  := softhsm2 opensc libgl1-mesa-dev xorg-dev xvfb poppler-utils openssl pkg-config
TPM_TEST_PKGS := swtpm libtpm2-pkcs11-1 libtss2-tcti-swtpm0 tpm2-abrmd libtss2-tcti-tabrmd0 dbus-daemon dbus-bin dbus-session-bus-common
TEST_PKGS := $(RUN_PKGS) imagemagick xdotool sqlite3 procps zbar-tools $(TPM_TEST_PKGS)
# Release builds add the Windows cross-compiler and what the offline-bundle test
# needs; the Windows run under Wine (.ci/release/test-windows.sh) adds the C++
# cross-compiler (SoftHSM2 for Windows), jq (JSON compared with the Linux
# build's), xdotool and imagemagick (the window and its screenshot) and
# tesseract (the screenshot's words read back).
RELEASE_PKGS := $(RUN_PKGS) gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64 debootstrap file xz-utils \
	g++-mingw-w64-x86-64 jq xdotool imagemagick tesseract-ocr tesseract-ocr-eng

# Fuzzing explores random inputs, so it is not part of `make test` (the README's
# test command replays the committed corpora, deterministically). CI explores
# for a short time after `make test` (`.ci/run`: FUZZTIME=20s a target): a
# crasher found there is a real bug, and red is the right colour for it.
# `make fuzz` (FUZZTIME=10m for a long run) explores; every crasher it writes
# under testdata/fuzz/ is committed, where `go test` replays it on every run.
FUZZTIME ?= 1m

.PHONY: all run build test vet fuzz bench bench-10m screenshots capabilities package deps-run deps-test deps-release \
	release bundle sums verify-reproducible release-test test-windows windows-screenshots clean

all: build

deps-run:
	@bash .ci/deps.sh $(RUN_PKGS)

deps-test:
	@bash .ci/deps.sh $(TEST_PKGS)

deps-release:
	@bash .ci/deps.sh $(RELEASE_PKGS)

build: deps-run
	$(GO) build -trimpath -ldflags "$(STAMP)" -o $(BIN) ./app

run: build
	./$(BIN)

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt -w these files:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

# The end-to-end package builds the real binary (cgo, Fyne) in its TestMain,
# inside the test timeout: on a brand-new machine that build is cold and runs
# beside every other package's tests, so the default 10 minutes is too short.
test: deps-test vet
	$(GO) test -count=1 -timeout 30m ./...

fuzz:
	@for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -r dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$t/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "fuzz $$t $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$t || exit 1; \
	  done; \
	done

# The browse and report benchmarks use 1,000,000-event databases (built once,
# cached); make bench KC_BROWSE_EVENTS=200000 for a quicker run.
KC_BROWSE_EVENTS ?= 1000000
export KC_BROWSE_EVENTS
# make bench ends with the ten-million-event audit (bench-10m, about 20
# minutes the first time); KC_BENCH_10M=0 leaves it out.
bench: deps-test
	$(GO) test -run '^$$' -bench . -benchmem ./...
	bash test/bench/audit.sh
	@if [ "$${KC_BENCH_10M:-1}" != 0 ]; then $(MAKE) --no-print-directory bench-10m; else echo "bench: the 10M-event audit left out (KC_BENCH_10M=0)"; fi

# The audit at ten million events over 90 days: the trail is generated once
# into /var/tmp/keyceremony-bench (1.4 GB gzipped), outside the repository;
# the sqlite3 shell is left out (over ten minutes). DuckDB peaks near 20 GB
# there: it runs when the machine has 22 GiB of memory or more, or as
# KC_BENCH_DUCKDB says.
bench-10m: deps-test
	@duck=$${KC_BENCH_DUCKDB:-$$(awk '/MemTotal/ {print ($$2 >= 22*1024*1024) ? 1 : 0}' /proc/meminfo)}; \
	[ "$$duck" = 1 ] || echo "bench-10m: DuckDB left out (under 22 GiB of memory, or KC_BENCH_DUCKDB=0)"; \
	KC_BENCH_EVENTS=10000000 KC_BENCH_DAYS=90 KC_BENCH_DAY_EVENTS=$${KC_BENCH_DAY_EVENTS:-20000} KC_BENCH_CACHE=$${KC_BENCH_CACHE:-/var/tmp/keyceremony-bench} \
		KC_BENCH_SQLITE=0 KC_BENCH_DUCKDB=$$duck bash test/bench/audit.sh

screenshots: deps-test
	KC_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run 'TestGUIScreens|TestKeyProvenanceBYOK' ./test/e2e/

# The README's table of what each PKCS#11 implementation tested here can do
# is the output of `keyceremony token capabilities --markdown` for them.
capabilities: deps-test
	KC_UPDATE_README=1 $(GO) test -count=1 -run 'TestREADMECapabilityTable' ./app/cli/

# A desktop package (tar.xz with .desktop entry and icon) from FyneApp.toml
# (fyne increments Build there for each release package: commit that change),
# with the fyne tool at a pinned version.
FYNE_TOOL := fyne.io/tools/cmd/fyne@v1.7.4
package: build
	mkdir -p dist
	$(GO) run $(FYNE_TOOL) package --os linux --executable $(BIN) --release
	mv "Key Ceremony.tar.xz" dist/

clean:
	rm -rf bin dist

# ---- Releases (README: "Releases and air-gapped install") --------------------
# make release VERSION=x.y.z   dist/: Linux binary and desktop archive, Windows
#                              GUI and console .exe, a CycloneDX SBOM for each
#                              binary, SHA256SUMS
# make bundle                  dist/keyceremony-offline-VERSION-debian12-amd64.tar
# make verify-reproducible     two builds, two directories, identical hashes
# make test-windows            the Windows builds run under Wine 10 in a Debian 13
#                              root (.ci/release/wine.sh), compared with Linux
# make windows-screenshots     docs/screenshots/windows-*.png from that run
# make release-test            what CI runs after make test: all of the above,
#                              the Windows import-table check, and the offline
#                              install in a fresh Debian 12 root without network
DIST := dist
LINUX_BIN = $(DIST)/keyceremony-$(VERSION)-linux-amd64
WIN_GUI = $(DIST)/keyceremony-$(VERSION)-windows-amd64.exe
WIN_CLI = $(DIST)/keyceremony-cli-$(VERSION)-windows-amd64.exe
BUNDLE = $(DIST)/keyceremony-offline-$(VERSION)-debian12-amd64.tar

release: deps-release
	rm -rf $(DIST) && mkdir -p $(DIST)
	bash .ci/release/build.sh $(VERSION) $(DIST)
	@# The desktop archive (.desktop entry, icon) from FyneApp.toml; fyne
	@# bumps Build in FyneApp.toml, which a release build must not change.
	tmp=$$(mktemp -d) && cp FyneApp.toml $$tmp/ && cp $(LINUX_BIN) $$tmp/keyceremony && \
	  $(GO) run $(FYNE_TOOL) package --os linux --executable $$tmp/keyceremony --release --app-version $(VERSION) && \
	  cp $$tmp/FyneApp.toml FyneApp.toml && rm -rf $$tmp && \
	  mv "Key Ceremony.tar.xz" $(DIST)/keyceremony-$(VERSION)-linux-amd64.tar.xz
	for b in $(LINUX_BIN) $(WIN_GUI) $(WIN_CLI); do ./$(LINUX_BIN) version --sbom $$b > $$b.cdx.json; done
	$(MAKE) --no-print-directory sums

bundle: deps-release
	@test -x $(LINUX_BIN) || bash .ci/release/build.sh $(VERSION) $(DIST) linux
	bash .ci/release/bundle.sh $(VERSION) $(LINUX_BIN) $(DIST)
	$(MAKE) --no-print-directory sums

# SHA256SUMS over every artefact in dist/.
sums:
	cd $(DIST) && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS
	@cat $(DIST)/SHA256SUMS

verify-reproducible: deps-release
	bash .ci/release/verify-reproducible.sh $(VERSION)

# Builds what is missing only (make release rebuilds everything).
test-windows: deps-release
	@test -x $(LINUX_BIN) || bash .ci/release/build.sh $(VERSION) $(DIST) linux
	@test -f $(WIN_CLI) -a -f $(WIN_GUI) || bash .ci/release/build.sh $(VERSION) $(DIST) windows
	bash .ci/release/test-windows.sh $(LINUX_BIN) $(WIN_CLI) $(WIN_GUI)

windows-screenshots:
	KC_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(MAKE) --no-print-directory test-windows

release-test: release bundle
	cd $(DIST) && sha256sum --quiet -c SHA256SUMS
	bash .ci/release/check-windows.sh $(WIN_GUI) gui
	bash .ci/release/check-windows.sh $(WIN_CLI) console
	bash .ci/release/test-windows.sh $(LINUX_BIN) $(WIN_CLI) $(WIN_GUI)
	bash .ci/release/test-bundle.sh $(BUNDLE)
	$(MAKE) --no-print-directory verify-reproducible
