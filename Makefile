# StreamDiffusion in Swift — set-up and entry points. Every target installs what is missing first
# (idempotent: nothing is installed twice, and each install is printed).
SHELL := /bin/bash
APT_PACKAGES := libdnnl-dev libpng-dev libturbojpeg0-dev ffmpeg
# The Vulkan backend: headers and loader, glslc and spirv-val (tools/compile_shaders.sh), Mesa's
# lavapipe (a CPU Vulkan device, so every shader is tested without a GPU) and the validation layer.
APT_PACKAGES += libvulkan-dev glslc spirv-tools mesa-vulkan-drivers vulkan-validationlayers
# The cooperative-matrix shaders need a newer glslang and SPIRV-Tools than Debian 12's: the script
# installs the PyPI wheels pinned in tools/requirements-shaders.txt into .build/shader-tools (a venv).
APT_PACKAGES += python3-venv
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# The headless-browser test of the live page (Tests/LiveServerTests/BrowserTests.swift).
TEST_APT_PACKAGES := chromium
RELEASE_BIN := .build/release/streamdiffusion

# Installs the Debian packages listed in $(1) that are missing, and says which.
apt_install = missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing apt packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

.PHONY: setup shaders shader-tools demo serve test test-slurm build release fixtures findings demo-model python-tools bench-all bench-ops bench-ops-peer bench-models-peer bench-stream bench-stream-peer fuzz clean

## setup: install the system packages the build needs (only those missing)
setup:
	@command -v swift >/dev/null || { echo "error: the Swift toolchain (6.x) is not on PATH; install it from swift.org first" >&2; exit 1; }
	@$(call apt_install,$(APT_PACKAGES))

## shaders: recompile the Vulkan backend's GLSL (Sources/VulkanBackend/Shaders) into ShaderBinaries.swift
shaders: setup
	tools/compile_shaders.sh

## shader-tools: the pinned cooperative-matrix shader compiler (PyPI wheels) in .build/shader-tools
shader-tools: setup
	@tools/compile_shaders.sh --install-tools || echo "warning: the cooperative-matrix shader compiler could not be installed (PyPI unreachable?): the shader check will be skipped" >&2

## demo: build in release mode and run the main job: txt2img and a video stream (scripts/demo.sh)
demo: release
	./scripts/demo.sh

## serve: build in release mode and run the live browser demo on http://127.0.0.1:8080/ (scripts/serve.sh)
serve: release
	./scripts/serve.sh

## test: run every test (what CI runs), the real-browser test of the live page included
test: setup shader-tools
	@$(call apt_install,$(TEST_APT_PACKAGES))
	swift build --build-tests
	@# The Vulkan pipeline cache the tests write goes into .build, not the user's ~/.cache.
	STREAMDIFFUSION_CACHE_DIR=$(CURDIR)/.build/test-cache LIVE_REQUIRE_BROWSER=1 swift test --skip-build
	@# The cluster job on a private one-node Slurm (installs slurm-wlm and munge when missing).
	STREAMDIFFUSION_BIN=.build/debug/streamdiffusion ./scripts/test_slurm.sh

## test-slurm: the cluster job (scripts/run_benchmark.slurm) on a private one-node Slurm cluster
test-slurm: build
	STREAMDIFFUSION_BIN=.build/debug/streamdiffusion ./scripts/test_slurm.sh

build: setup
	swift build

release: setup
	swift build -c release

## python-tools: the pinned PyTorch stack used by fixture generation and the peer benchmark
python-tools:
	@$(PYTHON) -c "import torch, safetensors, diffusers, transformers, matplotlib" 2>/dev/null || { \
		echo "installing Python tools from tools/requirements.txt"; \
		$(PYTHON) -m pip install -q -r tools/requirements.txt; }
	@# The official package (the peer and the parity fixtures); --no-deps: its own pins predate our stack.
	@$(PYTHON) -c "import streamdiffusion" 2>/dev/null || $(PYTHON) -m pip install -q --no-deps streamdiffusion==0.1.1

## fixtures: regenerate every reference file under Tests/Fixtures from PyTorch/diffusers (never run by tests)
fixtures: python-tools
	$(PYTHON) tools/make_op_fixtures.py
	$(PYTHON) tools/make_model_fixtures.py
	$(PYTHON) tools/make_lora_fixtures.py
	$(PYTHON) tools/make_tokenizer_fixtures.py
	$(PYTHON) tools/make_safetensors_corpus.py
	$(PYTHON) tools/export_layouts.py
	$(PYTHON) tools/make_rng_fixtures.py
	$(PYTHON) tools/make_scheduler_fixtures.py
	$(PYTHON) tools/make_image_fixtures.py
	$(PYTHON) tools/make_demo_fixtures.py

## findings: the paper's open questions (docs/FINDINGS.md): bench scaling, guidance, ssf as JSON + charts (~10 min on 2 cores)
findings: release python-tools
	$(RELEASE_BIN) bench scaling --repeats 5 --json > docs/charts/findings-scaling.json
	$(RELEASE_BIN) bench guidance --json > docs/charts/findings-guidance.json
	$(RELEASE_BIN) bench ssf --threads 1 --json > docs/charts/findings-ssf.json
	$(PYTHON) tools/plot_findings.py docs/charts

## demo-model: retrain the bundled demo model into Models/demo (about 90 min on 2 cores; resumable)
demo-model: python-tools
	$(PYTHON) tools/train_demo_model.py

## bench-ops-peer: the op benchmark side by side with PyTorch on the same threads
bench-ops-peer: release python-tools
	$(RELEASE_BIN) bench ops --peer

## bench-models-peer: real-size sd-turbo components side by side with diffusers on PyTorch
bench-models-peer: release python-tools
	$(RELEASE_BIN) bench models --peer

## bench-stream: the stream tables at 256² (JSON in docs/charts/stream.json) and their PNG charts
bench-stream: release python-tools
	@mkdir -p docs/charts
	$(RELEASE_BIN) bench stream --sizes 256 --steps 1,2,4 --repeats 2 --json > docs/charts/stream.json
	$(PYTHON) tools/plot_bench.py docs/charts/stream.json docs/charts

## bench-all: every benchmark against its peer in one run (~23 min on 2 cores), stream charts in docs/charts
bench-all: release python-tools
	$(RELEASE_BIN) bench --peer --charts docs/charts

## bench-stream-peer: the stream tables side by side with the official streamdiffusion package, fp32 and bf16
bench-stream-peer: release python-tools
	$(RELEASE_BIN) bench stream --dtype fp32 --sizes 512,256 --steps 1 --peer
	$(RELEASE_BIN) bench stream --dtype bf16 --sizes 512,256 --steps 1 --peer

## fuzz: fuzz the ModelFiles parsers (safetensors header, shard index, model_index.json) with
## libFuzzer + AddressSanitizer for FUZZ_SECONDS, seeded from Tests/Fixtures/safetensors. New inputs
## go to .build-fuzz/corpus, crashes to .build-fuzz/artifacts/ (replay one with a normal build:
## swift run safetensors-fuzz FILE). Separate scratch path: the sanitized build never mixes with .build.
FUZZ_SECONDS ?= 60
FUZZ_SCRATCH := .build-fuzz
FUZZ_FLAGS := -c release --scratch-path $(FUZZ_SCRATCH) -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -parse-as-library
fuzz: setup
	swift build $(FUZZ_FLAGS) --product safetensors-fuzz
	@mkdir -p $(FUZZ_SCRATCH)/corpus $(FUZZ_SCRATCH)/artifacts
	$$(swift build $(FUZZ_FLAGS) --show-bin-path)/safetensors-fuzz $(FUZZ_SCRATCH)/corpus \
		Tests/Fixtures/safetensors/malformed Tests/Fixtures/safetensors/valid \
		-dict=Fuzz/safetensors.dict -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(FUZZ_SCRATCH)/artifacts/

clean:
	rm -rf .build
