# voxgate: two commands for a fresh machine, `make serve` and `make test`.
# Installs are idempotent: a stamp per extra set, redone only when pyproject.toml changes.

VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
HOST    ?= 127.0.0.1
PORT    ?= 8080
CONFIG  ?=
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

STAMP_SERVE := $(VENV)/.installed-serve
STAMP_DEV   := $(VENV)/.installed-dev
STAMP_PEERS := $(VENV)/.installed-peers

.PHONY: serve test lint typecheck unit bench doctor venv install install-dev peers clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel

$(STAMP_SERVE): pyproject.toml scripts/install_models.py | $(PY)
	$(PIP) install -e '.[models]'
	$(PY) scripts/install_models.py
	touch $@

$(STAMP_DEV): pyproject.toml scripts/install_models.py | $(PY)
	$(PIP) install -e '.[models,dev]'
	$(PY) scripts/install_models.py
	touch $@ $(STAMP_SERVE)

$(STAMP_PEERS): scripts/install_peers.sh
	bash scripts/install_peers.sh
	touch $@

install: $(STAMP_SERVE)
install-dev: $(STAMP_DEV)
peers: $(STAMP_PEERS)

serve: $(STAMP_SERVE)
	$(VENV)/bin/voxgate serve --host $(HOST) --port $(PORT) $(if $(CONFIG),--config $(CONFIG),)

doctor: $(STAMP_SERVE)
	$(VENV)/bin/voxgate doctor

lint: $(STAMP_DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

unit: $(STAMP_DEV) $(STAMP_PEERS)
	$(VENV)/bin/pytest

test: lint unit

bench: $(STAMP_DEV) $(STAMP_PEERS)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
