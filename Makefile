# The two commands of the README. Both set everything up first (idempotent, see scripts/setup.sh).
VENV ?= .venv
export HF_HUB_OFFLINE ?= 1

.PHONY: demo test setup bench

demo: setup
	$(VENV)/bin/tlhub demo

test: setup
	$(VENV)/bin/python -m pytest -q

setup:
	bash scripts/setup.sh

bench: setup
	$(VENV)/bin/python benchmarks/run.py
