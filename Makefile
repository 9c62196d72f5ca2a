# certcli — `make test` on a fresh machine installs everything it needs, then tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test test-postgres lint unit demo bench bench-tools lab-up lab-down system-packages completions dist \
	pipx-check clean lab-a2c

# acme2certifier, the lab's second ACME CA, in a virtualenv of its own (its pins, in
# tests/lab/a2c-requirements.txt, never meet certcli's).
A2C_VENV := .lab/a2c

# The suite waits on one process at a time (certcli's start-up, the lab's answers): two
# pytest-xdist workers, each with its own lab, use both cores; a test file stays on one.
JOBS ?= 2
PYTEST := $(BIN)/pytest -n $(JOBS) --dist loadfile

test: $(VENV)/.installed system-packages lab-a2c lint
	$(PYTEST)

# The integration suite again, on a PostgreSQL store (a fresh database per test); the tests
# of the file store's own layout (marked file_store) are deselected. Not part of `make test`
# (which runs the PostgreSQL store's own tests, many hosts and faults included): together
# they take longer than the suite's budget.
test-postgres: $(VENV)/.installed system-packages lab-a2c
	CERTCLI_TEST_STORE=postgresql $(PYTEST) tests/integration

lint: $(VENV)/.installed
	$(BIN)/ruff check certcli tests
	$(BIN)/ruff format --check certcli tests

unit: $(VENV)/.installed
	$(BIN)/pytest tests/unit

demo: $(VENV)/.installed system-packages
	$(BIN)/python -m tests.lab.demo

# Side by side with certbot and lego; writes docs/benchmarks.md (never part of `make test`).
bench: $(VENV)/.installed system-packages bench-tools
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m tests.bench
	$(BIN)/python -m tests.bench.hosts

bench-tools:
	@[ -x .bench/certcli/bin/pip ] || $(PYTHON) -m venv .bench/certcli
	.bench/certcli/bin/pip install --quiet . && \
		.bench/certcli/bin/pip install --quiet --force-reinstall --no-deps .
	@[ -x .bench/certbot/bin/certbot ] || { $(PYTHON) -m venv .bench/certbot && \
		.bench/certbot/bin/pip install --quiet certbot certbot-dns-rfc2136; }
	@command -v lego >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends lego >/dev/null; } || \
		{ echo "make bench needs Debian's lego: sudo apt-get install -y lego"; exit 1; }

# The shell completion scripts in completions/, as certcli prints them. They ask certcli for
# the candidates at each Tab, so a new command or option needs no new script; a test fails
# when certcli/cli/completion.py changes them and the committed ones are stale.
completions: $(VENV)/.installed
	_CERTCLI_COMPLETE=bash_source $(BIN)/certcli > completions/certcli.bash
	_CERTCLI_COMPLETE=zsh_source $(BIN)/certcli > completions/_certcli
	_CERTCLI_COMPLETE=fish_source $(BIN)/certcli > completions/certcli.fish

# The sdist and the wheel, in dist/.
dist: $(VENV)/.installed
	$(BIN)/python -m build --outdir dist .

# `pipx install .` as a user runs it (dependencies from the package index), into a pipx home
# of its own that is kept between runs.
pipx-check: $(VENV)/.installed
	PIPX_HOME=$(CURDIR)/.pipx PIPX_BIN_DIR=$(CURDIR)/.pipx/bin PIPX_MAN_DIR=$(CURDIR)/.pipx/man \
		$(BIN)/pipx install --force .
	.pipx/bin/certcli --version
	CERTCLI_CONFIG_DIR=$(CURDIR)/.pipx/store .pipx/bin/certcli status

lab-up: $(VENV)/.installed system-packages lab-a2c
	$(BIN)/python -m tests.lab up --a2c --postgres

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

lab-a2c: $(A2C_VENV)/.installed

$(A2C_VENV)/.installed: tests/lab/a2c-requirements.txt
	rm -rf $(A2C_VENV)
	$(PYTHON) -m venv $(A2C_VENV)
	$(A2C_VENV)/bin/pip install --quiet -r tests/lab/a2c-requirements.txt
	touch $@

clean:
	rm -rf $(VENV) .bench .pipx .pytest_cache .ruff_cache .lab *.egg-info build dist
