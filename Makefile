# Two commands: `make run` serves the dashboard, `make test` runs the whole suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
PORT ?= 8501

.PHONY: run test lint bench venv dev browser clean lock

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv

# Installs come from the lock files: the exact versions the suite passed with. Upgrading is `make lock`
# (re-resolves every dependency to the newest versions pyproject.toml allows), then `make test`.
# Installed with bytecode: uv does not compile by default, and where PYTHONDONTWRITEBYTECODE is set (as on this
# project's machines) nothing is ever cached, so every process (each CLI command, each Dask worker, the
# dashboard) compiled pandas, Dask and the rest from source again: about 2.5 s of CPU a start (docs/scale.md).
# covcall's own sources (an editable install) stay uncompiled: 0.07 s a start, and no build output in the tree.
$(VENV)/.installed: pyproject.toml requirements.lock Makefile | $(BIN)/python
	$(UV) pip install --python $(BIN)/python --quiet --compile-bytecode -r requirements.lock
	$(UV) pip install --python $(BIN)/python --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml requirements-dev.lock Makefile | $(BIN)/python
	$(UV) pip install --python $(BIN)/python --quiet --compile-bytecode -r requirements-dev.lock
	$(UV) pip install --python $(BIN)/python --quiet --no-deps -e .
	touch $(VENV)/.installed $@

lock: | $(BIN)/python
	$(UV) pip compile pyproject.toml --python-version 3.11 --upgrade --quiet -o requirements.lock
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 --upgrade --quiet -o requirements-dev.lock

venv: $(VENV)/.installed

dev: $(VENV)/.installed-dev

# Debian's Chromium for the browser suite; never `playwright install`.
browser:
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || \
	  { echo "installing Debian chromium"; (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	    echo "warning: could not install chromium; browser tests will be skipped"; }

run: venv
	mkdir -p data
	$(BIN)/streamlit run app.py --server.port $(PORT) --server.address localhost

test: dev browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: dev
	$(BIN)/ruff check .

bench: venv
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_dataset.py
	$(BIN)/python bench/bench_cli.py
	$(BIN)/python bench/bench_import.py
	$(BIN)/python bench/bench_sweep.py
	$(BIN)/python bench/bench_batch_cli.py 1

clean:
	rm -rf $(VENV) test-output .pytest_cache
