# make demo / make test work on a fresh machine: each installs into .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install postgres demo test lint bench bench-cluster clean

install: $(STAMP)

# Installed with byte-compilation (pip's default): compiling on first import instead turns
# third-party SyntaxWarnings (invalid escapes in sagemaker_core) into errors under pytest's
# filterwarnings = error.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# PostgreSQL's server binaries (Debian's package) for tests/cluster and --database-url
# postgresql+psycopg://...: apt-get where there is one and initdb is missing (CI runs as root
# on a fresh Debian machine); elsewhere the tests that need a server skip and say why.
postgres:
	@if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb \
	    >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; \
	fi

demo: install
	$(BIN)/python examples/demo.py

# Two workers, each test file on one of them (its module servers with it, and each worker's
# own session server): while one waits on a metric period or an instance start, the other runs.
test: install lint postgres
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: install
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/serving.py

bench-cluster: install postgres
	PYTHONPATH=src $(BIN)/python bench/cluster.py

clean:
	rm -rf $(VENV) .tideserve
