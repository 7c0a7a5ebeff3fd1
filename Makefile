# make demo / make test work on a fresh machine: each installs into .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

install: $(STAMP)

# --no-compile: pip would byte-compile all ~15,000 installed .py files (torch, sagemaker,
# pandas...) one by one; Python compiles the few thousand that are imported, on first use.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --no-compile -e '.[test]'
	touch $(STAMP)

demo: install
	$(BIN)/python examples/demo.py

# Two workers, each test file on one of them (its module servers with it, and each worker's
# own session server): while one waits on a metric period or an instance start, the other runs.
test: install lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: install
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/serving.py

clean:
	rm -rf $(VENV) .tideserve
