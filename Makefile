# StreamDiffusion in Swift — set-up and entry points. Every target installs what is missing first
# (idempotent: nothing is installed twice, and each install is printed).
SHELL := /bin/bash
APT_PACKAGES := libdnnl-dev
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
RELEASE_BIN := .build/release/streamdiffusion

.PHONY: setup demo test build release fixtures python-tools bench-ops bench-ops-peer clean

## setup: install the system packages the build needs (only those missing)
setup:
	@command -v swift >/dev/null || { echo "error: the Swift toolchain (6.x) is not on PATH; install it from swift.org first" >&2; exit 1; }
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing apt packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

## demo: build in release mode and run the main job (for now: the op benchmark)
demo: release
	$(RELEASE_BIN) bench ops

## test: run every test (what CI runs)
test: setup
	swift build --build-tests
	swift test --skip-build

build: setup
	swift build

release: setup
	swift build -c release

## python-tools: the pinned PyTorch stack used by fixture generation and the peer benchmark
python-tools:
	@$(PYTHON) -c "import torch, safetensors, diffusers" 2>/dev/null || { \
		echo "installing Python tools from tools/requirements.txt"; \
		$(PYTHON) -m pip install -q -r tools/requirements.txt; }

## fixtures: regenerate the PyTorch reference tensors under Tests/Fixtures (never run by tests)
fixtures: python-tools
	$(PYTHON) tools/make_op_fixtures.py

## bench-ops-peer: the op benchmark side by side with PyTorch on the same threads
bench-ops-peer: release python-tools
	$(RELEASE_BIN) bench ops --peer

clean:
	rm -rf .build
