# Berth's build, test and benchmark entry points. `make test` is what CI runs.
GO       ?= go
BIN      := bin/berth
# Berth's per-container monitor, a small C program (cmd/berth-monitor),
# installed next to the berth binary, where berth looks for it first.
MONITOR  := bin/berth-monitor
CC       ?= cc
MONITOR_CFLAGS := -std=gnu11 -O2 -Wall -Wextra -Werror
PKGS     := ./...
# Packages the tests need from Debian; installed when missing (root only).
TEST_DEBS := gcc libc6-dev runc crun busybox-static docker-registry skopeo umoci iptables iproute2 conmon tini python3-docker docker-compose containernetworking-plugins

.PHONY: build run test unit bench deps fuzz clean

# berth is built without cgo: a static binary starts ~3 ms faster per
# command (no dynamic loader) and takes ~2 MB less memory; only net and
# os/user would use cgo, and their Go versions do what berth needs.
build: $(MONITOR)
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/berth

$(MONITOR): $(wildcard cmd/berth-monitor/*.c cmd/berth-monitor/*.h)
	@mkdir -p bin
	$(CC) $(MONITOR_CFLAGS) -o $@ $(filter %.c,$^)

# Runs the built-in hello image: offline, no registry.
run: build
	$(BIN) run --rm localhost/hello

deps:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# The integration tests use the default OCI runtime (crun when installed);
# these, the container lifecycle, run a second time with runc, Docker's
# default.
RUNC_TESTS := ^(TestRunSemantics|TestDetachedLifecycle|TestExec|TestPauseUnpause|TestSignalsForegroundRun|TestBadInput|TestAttachTTY|TestCrashAnywhere|TestOOMKilled|TestTopStats|TestExitCodeWhenKilled|TestRestartingState|TestDevice|TestSeccompCachedProgram)$$

# The whole suite: unit tests, root integration tests (real registry, real
# runc, real overlayfs) and a short fuzz pass over layer apply.
test: deps build
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 30m $(PKGS)
	BERTH_RUNTIME=runc $(GO) test -count=1 -timeout 15m -run '$(RUNC_TESTS)' ./integration
	TMPDIR=/dev/shm $(GO) test -run '^$$' -fuzz FuzzApply -fuzztime 20s -fuzzminimizetime 3s ./archive

unit:
	$(GO) test -short $(PKGS)

bench: deps build
	$(GO) run ./bench

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzApply -fuzztime 5m ./archive

clean:
	rm -rf bin
