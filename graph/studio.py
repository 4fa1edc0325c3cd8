"""The graph as LangGraph Studio (`langgraph dev`, `make studio`) loads it, with its services ready.

A Studio run brings no services in its context, so its nodes use the process's default
services (`core.services.default_services`). They are built here, while the module loads,
because `langgraph dev` refuses blocking work (reading `.env`, the local model's file)
inside the async nodes where they would otherwise be built on first use.
"""

from __future__ import annotations

from core.services import default_services
from graph.build import graph

services = default_services()
if services.settings.local_classifier != "off":
    _ = services.local_model  # read the model file now, not in the first run

__all__ = ["graph"]
