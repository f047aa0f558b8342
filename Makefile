# Loket: `make run` sets up and runs everything locally; `make test` runs the tests.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test db venv bench token clean

$(VENV)/.installed: requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON))"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

# the schema: create the database if needed, then `alembic upgrade head` (db/migrations)
db: venv
	$(PY) -m db.apply

run: db
	LOKET_ENV=development $(PY) -m ops.run

test: venv
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: db
	LOKET_ENV=development $(PY) -m bench.run

token: venv
	@$(PY) -m ops.token $(ARGS)

clean:
	rm -rf $(VENV) .run .pytest_cache
