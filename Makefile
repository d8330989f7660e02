# Set-up and common jobs. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: install, then search the bundled corpus interactively (the chat UI replaces this later)
run: $(STAMP)
	$(BIN)/qa-bot search

## test: install, then run the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest

## bench: retrieval speed on the seeds and on 100,000 generated abstracts (README figures)
bench: $(STAMP)
	$(BIN)/python scripts/bench_retrieval.py

clean:
	rm -rf $(VENV) build *.egg-info
