"""Process settings, read once from the environment and `.env`.

Every connection string, model name and knob of the router lives here, with a
default that works on one person's workstation. Run-scoped choices (a forced
route, a dry run) are not settings: they travel in `graph.context.RouterContext`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Router configuration; each field maps to the upper-case environment variable."""

    model_config = SettingsConfigDict(
        env_file=".env", env_ignore_empty=True, extra="ignore", case_sensitive=False
    )

    # --- the router itself -------------------------------------------------
    host: str = Field("127.0.0.1", description="Address the router binds to.")
    port: int = Field(8000, description="Port the router listens on.")
    virtual_model: str = Field("ai-router", description="The one model name clients see.")
    tz: str = Field("America/Los_Angeles", description="Time zone for prompts and logs.")
    max_request_bytes: int = Field(
        20 * 1024 * 1024, description="Largest request body accepted (413 above)."
    )
    max_messages: int = Field(2000, description="Most messages one request may carry.")

    # --- primary (local vLLM) ---------------------------------------------
    primary_base_url: str = Field(
        "http://127.0.0.1:8001/v1", description="OpenAI-compatible URL of the primary model."
    )
    primary_model: str = Field("Qwen/Qwen3-30B-A3B-Instruct-2507", description="Primary model.")
    primary_api_key: SecretStr | None = Field(None, description="Key for the primary, if any.")
    primary_timeout_s: float = Field(600.0, description="Total time allowed for a primary call.")

    # --- classifier (small local model) ------------------------------------
    classifier_base_url: str = Field(
        "http://127.0.0.1:8002/v1", description="OpenAI-compatible URL of the classifier."
    )
    classifier_model: str = Field("Qwen/Qwen3-1.7B", description="Classifier model.")
    classifier_api_key: SecretStr | None = Field(None, description="Key for the classifier.")
    classifier_timeout_s: float = Field(
        8.0, description="A classifier slower than this falls back to MODERATE."
    )
    classify_context_budget: int = Field(
        2000, description="Characters of conversation the classifier sees at most."
    )
    simple_to_classifier: bool = Field(
        False, description="Answer SIMPLE requests with the classifier model itself."
    )

    # --- xAI (cloud) --------------------------------------------------------
    xai_api_key: SecretStr | None = Field(None, description="xAI key; unset = no cloud routes.")
    xai_base_url: str = Field("https://api.x.ai/v1", description="xAI API URL.")
    xai_model: str = Field("grok-4-1-fast-reasoning", description="xAI model for COMPLEX/ENRICH.")
    xai_min_max_tokens: int = Field(
        16384, description="max_tokens sent to xAI is at least this (reasoning needs room)."
    )
    xai_search_tools: str = Field(
        "web_search,x_search", description="Comma-separated xAI search tools used by ENRICH."
    )
    xai_timeout_s: float = Field(600.0, description="Total time allowed for an xAI call.")

    connect_timeout_s: float = Field(5.0, description="TCP connect timeout for every backend.")

    # --- session logs and traces -------------------------------------------------------
    session_logs: bool = Field(True, description="Write one session record per request.")
    session_log_dir: str = Field("logs/sessions", description="Folder of session records.")
    session_log_content: Literal["full", "truncated", "none"] = Field(
        "full", description="Message text kept in records and traces: full, truncated, or none."
    )
    session_log_truncate_chars: int = Field(
        2000, description="With SESSION_LOG_CONTENT=truncated, characters kept per text."
    )
    session_log_max_age_days: float = Field(7, description="Records and traces older than this are removed.")
    session_log_max_files: int = Field(5000, description="Most records (and traces) kept; oldest go first.")
    traces: Literal["local", "off"] = Field(
        "local", description="Write a LangSmith-format run tree per request under TRACE_LOG_DIR."
    )
    trace_log_dir: str = Field("logs/traces", description="Folder of local traces (JSONL, one per session).")

    @property
    def xai_configured(self) -> bool:
        """Whether a cloud key is present, i.e. COMPLEX and ENRICH can use xAI."""
        return self.xai_api_key is not None and bool(self.xai_api_key.get_secret_value())

    @property
    def search_tools(self) -> list[str]:
        """The xAI search tool names as a list."""
        return [t.strip() for t in self.xai_search_tools.split(",") if t.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (built on first use, then cached)."""
    return Settings()
