# The two commands a new user runs: `make demo` and `make test`. Both build .venv from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The `dev` set (every role + test tools) resolved for Python 3.11, every file pinned by hash: `make lock`.
LOCK   := requirements.lock
LOADTEST_LOCK := k8s/loadtest/requirements.lock
# Where the CPU build of torch lies on this machine's disk (pip.conf's find-links); the lock names it too.
FIND_LINKS ?= /opt/wheels
# uv resolves the lock; it lives in its own small environment, outside the project's.
UV_VERSION := 0.13.9
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv

.PHONY: venv lock test test-fast reliability demo bench gpu-check lint clean perf-analyzer

venv: $(STAMP)

# From the lock only: torch first (the lock's CPU build, by hash: a torch resolved any other way would be a
# multi-GB CUDA build), then the whole lock (hash-checking: a lock missing a dependency fails here), then the
# project itself with no dependencies of its own to resolve.
$(STAMP): $(LOCK) pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "$(LOCK) is resolved for Python 3.11: make PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	awk '/^--/ || /^torch==/ {p=1} p {print} !/\\$$/ {p=0}' $(LOCK) > $(VENV)/torch.lock
	$(BIN)/pip install -q --no-deps --require-hashes -r $(VENV)/torch.lock
	$(BIN)/pip install -q --require-hashes -r $(LOCK)
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

# Re-resolve the lock after a change to pyproject.toml's dependencies; pins already in the lock are kept where
# they still fit (make lock LOCK_FLAGS=--upgrade moves everything to the newest versions that resolve).
lock: $(UV)
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 --python-platform x86_64-manylinux_2_35 \
	  --generate-hashes --find-links $(FIND_LINKS) --emit-find-links --custom-compile-command "make lock" \
	  $(LOCK_FLAGS) -o $(LOCK) > /dev/null
	# the in-cluster load test's image (k8s/loadtest/Dockerfile): the `loadtest` extra alone, at the lock's pins
	$(UV) pip compile pyproject.toml --extra loadtest --python-version 3.11 --python-platform x86_64-manylinux_2_35 \
	  --generate-hashes -c $(LOCK) --custom-compile-command "make lock" -o $(LOADTEST_LOCK) > /dev/null

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q uv==$(UV_VERSION)

# The reliability suite (tests/reliability: overload, faults, soak; about 35 minutes) is not part of it. perf_analyzer
# (make perf-analyzer) is: tests/test_crosscheck.py runs it against the local Triton.
test: venv perf-analyzer
	$(BIN)/pytest -q -m "not reliability" tests

# Overload, faults and soak against a real local Triton, measured and asserted; results merged into
# docs/results/reliability.{json,md} per section. One part: make reliability K=overload (pytest's -k).
# Shorter: MTSERVE_REL_OVERLOAD_S=10 MTSERVE_REL_SOAK_S=120 make reliability. Run it on a quiet machine.
reliability: venv
	MTSERVE_RELIABILITY_COMMAND="make reliability$(if $(K), K=$(K))" \
	  $(BIN)/pytest -q -s -m reliability -p no:cacheprovider tests/reliability $(if $(K),-k "$(K)")

# Unit tests only: no Triton server, no slow training.
test-fast: venv
	$(BIN)/pytest -q -m "not triton and not slow and not reliability" tests

demo: venv
	$(BIN)/mtserve demo

bench: venv
	$(BIN)/mtserve bench

# Triton's perf_analyzer for `mtserve loadtest --cross-check`, into .tools/perf_analyzer/ (not the venv): the binary
# from the tritonclient 2.41.0 wheel, libcudart from the CUDA runtime wheel (by hash), Debian's libb64-0d (apt-get).
perf-analyzer:
	PYTHON=$(PYTHON) bash scripts/install_perf_analyzer.sh

# On a CUDA device: the trunk's segments, the heads, each task's, group's and multitask's path and the per-task models,
# timed with PyTorch in fp16 (runs/latest's modules, else a random BERT-base of 16 tasks at depths 6 and 8); results
# in $(GPU_CHECK_OUT) (gpu-check.json, .png). Needs torch with CUDA only: on a GPU image without .venv it runs with
# that machine's python3 (scripts/gpu_check.sh; docs/measurements.md, "On a GPU"). Skips with a message (exit 0)
# without a GPU. More flags: make gpu-check GPU_CHECK_ARGS='--batches 1,64 --seq 128'.
GPU_CHECK_OUT ?= reports/gpu-check
GPU_CHECK_ARGS ?=
gpu-check:
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/gpu_check.sh --out $(GPU_CHECK_OUT) $(GPU_CHECK_ARGS)

# Style (ruff), then the import contracts between the layers (pyproject.toml's [tool.importlinter]).
lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/python .ci/lint_imports.py

clean:
	rm -rf runs reports cache model_repository/*/ .pytest_cache
