# make demo / make test work on a fresh machine: each installs into .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

install: $(STAMP)

# Installed with byte-compilation (pip's default): compiling on first import instead turns
# third-party SyntaxWarnings (invalid escapes in sagemaker_core) into errors under pytest's
# filterwarnings = error.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
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
