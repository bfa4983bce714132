# Key Ceremony. `make run` and `make test` are the two commands a new machine needs.
SHELL := /bin/bash
GO ?= go
export LANG ?= C.UTF-8
# Fyne reads the locale in an init function and logs an error for C/C.UTF-8;
# naming English here keeps test and CI output clean (LANGUAGE only affects messages).
export LANGUAGE ?= en
BIN := bin/keyceremony

# System packages: what the app needs at run time and to build the Fyne driver,
# and what the tests add (screenshots, PDF text, the sqlite3 shell for the ingest baseline).
RUN_PKGS  := softhsm2 opensc libgl1-mesa-dev xorg-dev xvfb poppler-utils openssl pkg-config
TEST_PKGS := $(RUN_PKGS) imagemagick xdotool sqlite3 procps zbar-tools

# Fuzzing explores random inputs, so it is not part of `make test` (a CI run must
# not turn red by luck): `make fuzz` (FUZZTIME=10m for a long run) explores, and
# every crasher it writes under testdata/fuzz/ is committed, where `go test`
# replays it on every run as a regression case.
FUZZTIME ?= 1m

.PHONY: all run build test vet fuzz bench screenshots package deps-run deps-test clean

all: build

deps-run:
	@bash .ci/deps.sh $(RUN_PKGS)

deps-test:
	@bash .ci/deps.sh $(TEST_PKGS)

build: deps-run
	$(GO) build -trimpath -o $(BIN) ./app

run: build
	./$(BIN)

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt -w these files:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

test: deps-test vet
	$(GO) test -count=1 ./...

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
bench: deps-test
	$(GO) test -run '^$$' -bench . -benchmem ./...
	@if [ -x test/bench/audit.sh ]; then bash test/bench/audit.sh; fi

screenshots: deps-test
	KC_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run 'TestGUIScreens' ./test/e2e/

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
