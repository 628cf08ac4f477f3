# Two commands do everything on a fresh clone: `make train` and `make test`.
# Each creates the virtual environment .venv on first use (Python 3.11, pinned dependencies).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: train test test-slow clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Train DDPG on Pendulum-v1 with the default preset and print the final evaluation.
train: $(STAMP)
	$(BIN)/dpgkit train

## The default test suite (under 10 minutes on 2 cores).
test: $(STAMP)
	$(BIN)/python -m pytest -q

## The slow learning tests (minutes each).
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV)
