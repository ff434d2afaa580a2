# The two set-up commands of the README: `make demo` and `make test`. Each installs what it needs.
.PHONY: demo test lint bench workers

demo:
	@bash scripts/bootstrap.sh
	@.venv/bin/python -m deployments.demo $(DEMO_ARGS)

test:
	@bash scripts/bootstrap.sh
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .
	@.venv/bin/python -m pytest -q

bench:
	@bash scripts/bootstrap.sh
	@.venv/bin/python -m benchmarks.run $(BENCH_ARGS)

workers:
	@bash scripts/bootstrap.sh
	@bash scripts/postgres_workers.sh $(WORKERS_ARGS)

lint:
	@.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy sandbox blocks revbridge tasks flows deployments receiver
