# ai-router: `make run` starts the router (on the embedded simulator when no backend is
# configured), `make test` runs the test suite. Both set up the virtual environment first.
# `make help` lists every target. Targets that drive the Docker stack need Docker with the
# Compose plugin and say so clearly when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY ?= $(VENV)/bin/python
# Prerequisite that prepares $(PY); `make run SETUP= PY=/path/to/python` uses an existing interpreter.
SETUP ?= venv
ROUTER_URL ?= http://127.0.0.1:8000
STUDIO_PORT ?= 2024
# Extra arguments for the tool targets (benchmark, eval, review, sessions, train-router).
ARGS ?=
# Compose profiles for `make up`: COMPOSE_PROFILES from .env, else gpu (sim = no GPU, add ,ui for Open WebUI).
PROFILES ?= $(or $(shell sed -n 's/^COMPOSE_PROFILES=\([^ \#]*\).*/\1/p' .env 2>/dev/null),gpu)
COMPOSE ?= docker compose
export STUDIO_PORT

.DEFAULT_GOAL := help
.PHONY: help venv run test clients browser up down health status logs logs-router logs-primary logs-classifier \
	benchmark soak eval meta-eval review sessions train-router corpus studio graph gpu clean-all

# Fail with a clear message when Docker's Compose plugin is not there.
define need_compose
	@$(COMPOSE) version >/dev/null 2>&1 || { \
	  echo "make $@: needs Docker with the Compose plugin ('$(COMPOSE)'), which is not available here." >&2; \
	  echo "  Without Docker, 'make run' starts the router on the simulator." >&2; exit 1; }
endef

# Run `python <args> $(ARGS)` if <path> exists; otherwise say honestly that the feature is not
# there yet. $(1): file or package directory that provides the feature, $(2): arguments for $(PY).
define optional
	@if [ -e "$(1)" ]; then $(PY) $(2) $(ARGS); else \
	  echo "make $@: not available yet ($(1) is not in this checkout)." >&2; exit 1; fi
endef

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## Create .venv and install the router with its test tools

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e ".[dev]"
	@touch $@

run: $(SETUP) ## Run the router on 127.0.0.1:8000 (embedded simulator when no backend is configured)
	$(PY) -m tools.launch

test: $(SETUP) clients browser ## Run the test suite (what CI runs): lint and type-check the runtime, then pytest
	$(PY) -m ruff check core graph nodes prompts server.py
	$(PY) -m mypy core graph nodes prompts server.py
	$(PY) -m pytest

# The CLI clients the suite drives at the router (Codex CLI, Claude Code), pinned in
# clients/package-lock.json. Skipped, with the reason, when Node is not installed: their
# tests then skip too. Installed again only when the lock file changes.
clients: ## Install the pinned CLI clients (Codex CLI, Claude Code) into clients/ when Node is present
	@if command -v npm >/dev/null 2>&1; then \
	  if [ ! -f clients/node_modules/.installed ] || [ clients/package-lock.json -nt clients/node_modules/.installed ]; then \
	    npm ci --prefix clients --no-audit --no-fund && touch clients/node_modules/.installed; fi; \
	else echo "make clients: npm not found: the Codex CLI and Claude Code tests will be skipped." >&2; fi

browser: ## Install Debian's chromium + chromedriver for the browser tests when missing (as root; else they skip)
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make $@: installing chromium and chromium-driver with apt-get" >&2; \
	  { DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "make $@: apt-get could not install chromium: the browser tests will be skipped" >&2; \
	else echo "make $@: no chromium/chromedriver and not root with apt-get: the browser tests will be skipped" >&2; fi

studio: $(SETUP) ## Serve the graph to LangGraph Studio (langgraph dev, simulator backends) on STUDIO_PORT
	$(PY) -m tools.launch studio

graph: $(SETUP) ## Redraw docs/graph.mmd (the README's picture) from the compiled graph
	$(PY) scripts/draw_graph.py

health: ## Ask the running router (ROUTER_URL) about each backend, verbosely
	@$(PYTHON) -m tools.healthcheck --verbose --url $(ROUTER_URL)

status: ## One line: is the running router (ROUTER_URL) and each backend up?
	@$(PYTHON) -m tools.healthcheck --oneline --url $(ROUTER_URL)

up: ## Build and start the Docker stack (PROFILES=gpu|sim, add ,ui for Open WebUI)
	$(need_compose)
	COMPOSE_PROFILES=$(PROFILES) $(COMPOSE) up -d --build

down: ## Stop the Docker stack (volumes are kept)
	$(need_compose)
	COMPOSE_PROFILES=gpu,sim,ui $(COMPOSE) down

logs: ## Follow the logs of every service in the stack
	$(need_compose)
	COMPOSE_PROFILES=$(PROFILES) $(COMPOSE) logs -f --tail=100

logs-router: ## Follow the router's logs
	$(need_compose)
	$(COMPOSE) logs -f --tail=100 router

logs-primary: ## Follow the primary vLLM server's logs
	$(need_compose)
	COMPOSE_PROFILES=gpu $(COMPOSE) logs -f --tail=100 vllm-primary

logs-classifier: ## Follow the classifier vLLM server's logs
	$(need_compose)
	COMPOSE_PROFILES=gpu $(COMPOSE) logs -f --tail=100 vllm-classifier

gpu: ## Show GPU memory and use (nvidia-smi), e.g. to check the 80/10 split
	@command -v nvidia-smi >/dev/null 2>&1 || { echo "make gpu: nvidia-smi not found (no NVIDIA driver on this machine)." >&2; exit 1; }
	nvidia-smi --query-gpu=index,name,memory.used,memory.total,utilization.gpu --format=csv
	nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv

benchmark: $(SETUP) ## Measure the router against direct backend calls (writes benchmarks/runs/<time>/; ARGS=--check fails on a missed target, --save publishes)
	$(call optional,scripts/benchmark.py,scripts/benchmark.py)

soak: $(SETUP) ## Two replicas + Redis under flapping backends, 32 clients, ten minutes (ARGS="--seconds 60")
	$(PY) scripts/soak.py $(ARGS)

eval: $(SETUP) ## Replay the routing regression set and write a report (EVAL_ARGS=--gate fails below the baseline)
	$(call optional,evals/run.py,-m evals.run $(EVAL_ARGS))

meta-eval: $(SETUP) ## Score META detection on the client-template catalogue (recall, precision, held-out, latency; ARGS="--json f.json")
	$(PY) -m evals.meta_catalogue.evaluate $(ARGS)

review: $(SETUP) ## Review recent sessions and propose a prompt edit (REVIEW_ARGS=--apply keeps it in PROMPTS_DIR if the eval holds)
	$(call optional,evals/review.py,-m evals.review $(REVIEW_ARGS))

sessions: $(SETUP) ## List logged sessions (ARGS="show ID", "export --out f.jsonl", "upload-traces")
	$(call optional,tools/sessions.py,-m tools.sessions$(if $(ARGS),, list))

train-router: $(SETUP) ## Train the local route classifier (corpus + labels), leave-one-source-out; refuses a worse model (ARGS=--force)
	$(call optional,evals/train.py,-m evals.train)

corpus: $(SETUP) ## Rebuild the routing corpus (evals/corpus/) from pinned dataset snapshots (ARGS=--check compares)
	$(PY) -m evals.corpus.build $(ARGS)

clean-all: ## Remove .venv, caches and local state (the Docker stack's volumes too, if Docker is there)
	-@$(COMPOSE) version >/dev/null 2>&1 && COMPOSE_PROFILES=gpu,sim,ui $(COMPOSE) down -v --remove-orphans
	rm -rf $(VENV) .langgraph_api .pytest_cache *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
