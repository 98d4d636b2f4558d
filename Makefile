# The two commands a new user runs: `make demo` and `make test`. Both build .venv from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv test test-fast demo bench lint clean

venv: $(STAMP)

# torch first, pinned to the CPU build that lies on this disk: the project's range then installs nothing more
# (an unpinned torch would pull a multi-GB CUDA build).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

test: venv
	$(BIN)/pytest -q tests

# Unit tests only: no Triton server, no slow training.
test-fast: venv
	$(BIN)/pytest -q -m "not triton and not slow" tests

demo: venv
	$(BIN)/mtserve demo

bench: venv
	$(BIN)/mtserve bench

lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf runs reports cache model_repository/*/ .pytest_cache
