# sim2sg_ros — two commands on a bare machine: `make demo` and `make test` (each runs `make setup`).
SHELL := /bin/bash
.DEFAULT_GOAL := help
ENV := source scripts/env.sh &&
JOBS ?= 2

.PHONY: help setup build demo test test-fast lint bench clean distclean

help:
	@echo "make demo   - set up (if needed) and run the end-to-end demo (train, record bag, adapt, perceive)"
	@echo "make test   - set up (if needed) and run the whole test suite"
	@echo "make test-fast - the suite without the tests marked slow (under 2 minutes)"
	@echo "make setup  - create .venv with pinned ROS 2 Jazzy wheels + torch and build into install/"
	@echo "make lint   - ruff check on the code, tests and scripts; mypy on sim2sg_core; lint-imports (layers; pyproject.toml)"
	@echo "make bench  - run the benchmark scripts (timings; not part of the tests)"

setup:
	@bash scripts/setup.sh

build: setup

demo: setup
	@$(ENV) python scripts/demo.py

test: setup
	@$(ENV) OMP_NUM_THREADS=1 pytest -n $(JOBS) --dist loadgroup -q --durations=15

test-fast: setup
	@$(ENV) OMP_NUM_THREADS=1 pytest -n $(JOBS) --dist loadgroup -q -m "not slow"

lint: setup
	@$(ENV) ruff check . && ruff format --check . && mypy && lint-imports

bench: setup
	@$(ENV) python scripts/bench_sim.py && python scripts/bench_model.py && python scripts/bench_ros.py

clean:
	rm -rf build install log

distclean: clean
	rm -rf .venv runs
