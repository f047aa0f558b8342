# Loket: `make run` sets up and runs everything locally; `make test` runs the tests.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint lock db venv bench token clean

# Exactly what the lock names (every package pinned and hash-checked, nothing resolved here):
# requirements-dev.txt is the runtime set plus the dev group, exported from uv.lock by `make lock`.
$(VENV)/.installed: requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON))"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# the schema: create the database if needed, then `alembic upgrade head` (db/migrations)
db: venv
	$(PY) -m db.apply

run: db
	LOKET_ENV=development $(PY) -m ops.run

test: venv
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# after editing pyproject.toml: re-resolve uv.lock, then export the two requirement files from it
lock: venv
	$(VENV)/bin/uv lock
	$(VENV)/bin/uv export --quiet --frozen --no-dev --no-emit-project --format requirements-txt -o requirements.txt
	$(VENV)/bin/uv export --quiet --frozen --all-groups --no-emit-project --format requirements-txt -o requirements-dev.txt

bench: db
	LOKET_ENV=development $(PY) -m bench.run --duration 10 --all --readme

token: venv
	@$(PY) -m ops.token $(ARGS)

clean:
	rm -rf $(VENV) .run .pytest_cache
