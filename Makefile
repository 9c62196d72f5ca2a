# certcli — `make test` on a fresh machine installs everything it needs, then tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test lint unit demo lab-up lab-down system-packages clean

test: $(VENV)/.installed system-packages lint
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check certcli tests
	$(BIN)/ruff format --check certcli tests

unit: $(VENV)/.installed
	$(BIN)/pytest tests/unit

demo: $(VENV)/.installed system-packages
	$(BIN)/python -m tests.lab.demo

lab-up: $(VENV)/.installed system-packages
	$(BIN)/python -m tests.lab up

lab-down: $(VENV)/.installed
	$(BIN)/python -m tests.lab down

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "certcli needs Python >= 3.11 (set PYTHON=python3.x)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

system-packages:
	@sh tests/lab/install-packages.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .lab *.egg-info
