# The two commands of the README: `make demo` and `make test`. Both install what is missing.
.PHONY: demo test lint

# Where scripts/bootstrap may put uv: `pip install --user`, or a virtualenv of its own
# (last, so that virtualenv's python3 never shadows yours).
export PATH := $(HOME)/.local/bin:$(PATH):$(CURDIR)/.uv/bin

# The tests on another Python: `make test PYTHON=3.13` (a version, or an interpreter's path).
# Set here, not taken from the environment, where PYTHON often means something else.
PYTHON =

# The demo installs core and its Celery and Django only: in the virtual workspace a plain
# `uv run` would install every member, and the MySQL driver's client compiles against
# MariaDB headers that a fresh machine does not have.
demo:
	@./scripts/bootstrap
	uv run --locked --package django-celery-results --no-default-groups python example/manage.py demo

test:
	@./scripts/bootstrap --system-deps
	@./scripts/test '$(PYTHON)'

lint:
	@./scripts/bootstrap --system-deps
	uv run --locked --all-groups ruff check .
	uv run --locked --all-groups ruff format --check .
	uv run --locked --all-groups mypy
	uv run --locked --all-groups lint-imports
