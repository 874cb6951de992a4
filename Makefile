# The two commands of the README: `make demo` and `make test`. Both install what is missing.
.PHONY: demo test lint

# Where `pip install --user uv` puts uv.
export PATH := $(HOME)/.local/bin:$(PATH)

demo:
	@./scripts/bootstrap
	uv run --locked python example/manage.py demo

test:
	@./scripts/bootstrap --system-deps
	uv run --locked --all-groups pytest

lint:
	@./scripts/bootstrap
	uv run --locked ruff check .
	uv run --locked ruff format --check .
	uv run --locked mypy
