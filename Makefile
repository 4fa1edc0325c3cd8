# ai-router: `make run` starts the router (on the embedded simulator when no backend is
# configured), `make test` runs the test suite. Both set up the virtual environment first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.DEFAULT_GOAL := help
.PHONY: help venv run test benchmark eval review train-router

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## Create .venv and install the router with its test tools

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

run: venv ## Run the router (embedded simulator when no backend is configured)
	$(PY) -m ai_router.launch

test: venv ## Run the test suite
	$(PY) -m pytest

benchmark: venv ## Measure the router against direct backend calls (writes benchmarks/results/)
	$(PY) scripts/benchmark.py

eval: venv ## Replay the routing regression set and write a report (EVAL_ARGS=--gate fails below the baseline)
	$(PY) -m evals.run $(EVAL_ARGS)

review: venv ## Review recent sessions and propose a prompt edit (REVIEW_ARGS=--apply applies it if the eval holds)
	$(PY) -m evals.review $(REVIEW_ARGS)

train-router: venv ## Retrain the local route classifier (models/router_classifier/) from evals and sessions
	$(PY) -m ai_router.train
