# make demo: set up .venv and run the main job on bundled real data.
# make test: set up .venv and run ruff and the whole test suite (slow end-to-end tests included).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: this machine keeps a CPU build on disk, a bare "torch" would pull CUDA
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hyenadna loss --model tiny-1k --fasta data/lambda_virus.fa --window 1024 --seed 0

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP) lint
	$(BIN)/pytest

test-fast: $(STAMP) lint
	$(BIN)/pytest -m "not slow"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
