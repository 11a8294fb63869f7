# Two commands for a fresh clone: `make demo` (the app with demo data) and `make test` (the test suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1:8000

.PHONY: install demo test fuzz lint bench docs clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# The demo runs in DEBUG on the embedded SQLite unless DATABASE_URL is set.
demo: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py seed_demo
	DEBUG=1 $(BIN)/python manage.py runserver $(HOST)

# Uses DATABASE_URL when set (CI: PostgreSQL); else the embedded SQLite, where the few
# PostgreSQL-only tests (row locks, COPY) are skipped.
test: install
	SECRET_KEY=$${SECRET_KEY:-insecure-test-only-key} $(BIN)/pytest $(PYTEST_ARGS)

# The deep fuzzing pass (docs/testing.md, "Fuzzing"): 1,000 random cases per operation, every coverage case, a
# random seed, then stateful sequences along the links schemathesis infers. `make test` runs a bounded
# pass of the same tests. Like CI it wants DATABASE_URL=postgres://...
fuzz: install
	SECRET_KEY=$${SECRET_KEY:-insecure-test-only-key} FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-1000} \
	FUZZ_COVERAGE_EVERY=1 FUZZ_DERANDOMIZE=0 FUZZ_STATEFUL_EXAMPLES=$${FUZZ_STATEFUL_EXAMPLES:-200} \
	$(BIN)/pytest tests/fuzz -p no:logging $(PYTEST_ARGS)

# The benchmarks need PostgreSQL: DATABASE_URL names the server; each script creates, uses and drops
# its own database (BENCH_DATABASE_NAME, default promotions_bench*). Modules starting with `_` in
# bench/ are shared code, not benchmarks.
bench: install
	@case "$$DATABASE_URL" in postgres*) ;; *) echo "make bench needs DATABASE_URL=postgres://..." >&2; exit 2;; esac
	@for script in bench/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# The documentation site (MkDocs) into site/; strict, so a broken link or a missing page fails.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) db.sqlite3 test-output .pytest_cache site
