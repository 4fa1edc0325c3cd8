"""Process settings, read once from the environment and `.env`.

Every connection string, model name and knob of the router lives here, with a
default that works on one person's workstation. Run-scoped choices (a forced
route, a dry run) are not settings: they travel in `core.context.RouterContext`. The evals'
own settings are in `evals/settings.py`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
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
    log_level: str = Field("INFO", description="Level of the router's own log (DEBUG, INFO, WARNING).")
    workers: int = Field(
        1, ge=1, description="Worker processes (`python server.py` / `make run`); /stats adds them up."
    )

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
        8.0, description="Deadline of one classification (then the local guess or MODERATE); also the "
        "first-token deadline of answers the classifier model writes.",
    )
    classifier_answer_timeout_s: float = Field(
        120.0, description="Total time for an answer the classifier model writes (SIMPLE_TO_CLASSIFIER=true).",
    )
    classify_context_budget: int = Field(
        2000, description="Characters of conversation the classifier sees at most."
    )
    simple_to_classifier: bool = Field(
        False, description="Answer SIMPLE requests with the classifier model itself."
    )

    # --- local classifier (learned, in-process, in front of the LLM classifier) ------------
    local_classifier: Literal["off", "shadow", "on", "auto"] = Field(
        "auto",
        description="off: LLM classifier only; shadow: predict locally (alongside the LLM call) and record it, "
        "always ask the LLM; on: confident local predictions decide, the LLM classifier gets the rest; auto: a "
        "confident local prediction decides only a route promoted on this deployment's measured agreement with "
        "the LLM (LOCAL_CLASSIFIER_AUTO_*). The default is auto: until a route is promoted it is shadow (see the "
        "README's fast-routing section).",
    )
    local_classifier_threshold: float | None = Field(
        None, ge=0, le=1,
        description="Confidence needed to decide locally, for every route; unset = the model's per-route "
        "thresholds, chosen out of source by make train-router.",
    )
    local_classifier_model_path: str = Field(
        "models/router_classifier/model.json",
        description="The local classifier's model file (`make train-router` writes it).",
    )
    local_classifier_auto_min_agreement: float = Field(
        0.97, gt=0, le=1,
        description="auto: a route is promoted when the Wilson 95 % lower bound of its recent backend-level "
        "agreement with the LLM classifier (a person's label where there is one) is at least this.",
    )
    local_classifier_auto_min_samples: int = Field(
        200, ge=1, description="auto: samples (confident local prediction + LLM answer) a route needs at least.",
    )
    local_classifier_auto_window: int = Field(
        1000, ge=1, description="auto: latest samples kept per route; older agreement ages out.",
    )
    local_classifier_auto_max_age_days: float = Field(
        14.0, gt=0, description="auto: samples older than this are dropped even when traffic is slow.",
    )
    local_classifier_auto_costly_weight: float = Field(
        3.0, ge=1, description="auto: a miss that keeps a request away from xAI or search counts this many times.",
    )
    local_classifier_auto_audit: float = Field(
        0.05, ge=0, le=1,
        description="auto: share of promoted local decisions still classified by the LLM, in the background.",
    )
    local_classifier_auto_refresh_s: float = Field(
        1.0, gt=0, description="auto: how often the agreement state is saved, read from Redis and relabelled.",
    )
    local_classifier_auto_state_file: str = Field(
        "", description="auto: file of the agreement state without REDIS_URL; empty = "
        "<SESSION_LOG_DIR>/state/local_classifier_agreement.json.",
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
    primary_first_token_timeout_s: float = Field(
        120.0, description="Streams: time the primary may take to its first token (cold models are slow)."
    )
    xai_first_token_timeout_s: float = Field(60.0, description="Streams: time xAI may take to its first token.")
    primary_fallback: Literal["", "classifier"] = Field(
        "", description="Backend that answers when the primary fails before its first byte (e.g. classifier)."
    )

    # --- failure handling -----------------------------------------------------------------
    retry_attempts: int = Field(
        2, description="Retries of a failed call (connect error, 5xx, 429), before any byte; never a first-token "
        "or idle timeout (a silent backend fails over or answers 504 at once).",
    )
    retry_backoff_s: float = Field(0.25, description="First retry backoff; doubles each retry, with jitter.")
    retry_backoff_max_s: float = Field(4.0, description="Longest backoff between retries.")
    retry_after_max_s: float = Field(10.0, description="A backend Retry-After longer than this is not waited for.")
    breaker_failures: int = Field(5, description="Consecutive failures that open a backend's circuit breaker.")
    breaker_cooldown_s: float = Field(30.0, description="How long an open breaker skips its backend.")
    primary_max_concurrency: int = Field(128, description="Calls in flight to the primary at most.")
    classifier_max_concurrency: int = Field(64, description="Calls in flight to the classifier at most.")
    xai_max_concurrency: int = Field(32, description="Calls in flight to xAI at most.")
    queue_timeout_s: float = Field(30.0, description="Wait for a free slot at most this long, then 503.")
    graceful_shutdown_s: float = Field(30.0, description="In-flight requests get this long to finish on shutdown.")

    # --- access ------------------------------------------------------------------------------
    router_api_keys: SecretStr | None = Field(
        None, description="Comma-separated client keys for /v1/* (Bearer); unset = no key needed."
    )
    admin_api_key: SecretStr | None = Field(
        None, description="Key for /api/route, /stats, /graph/*; unset = client keys (if any) work there."
    )
    rate_limit_per_minute: float = Field(0, description="Requests per minute per key or client address; 0 = off.")
    rate_limit_burst: int = Field(20, description="Requests a client may send at once before the rate applies.")

    # --- shared state (several router processes) ----------------------------------------
    redis_url: str = Field(
        "", description="Redis that several routers share state through (redis://host:6379/0); empty = per process."
    )
    redis_timeout_s: float = Field(
        0.25, gt=0, description="Deadline of every Redis call; a slower or dead Redis is skipped (per-process state)."
    )
    redis_retry_s: float = Field(
        1.0, gt=0, description="First wait before a lost Redis is tried again; doubles up to REDIS_RETRY_MAX_S."
    )
    redis_retry_max_s: float = Field(15.0, gt=0, description="Longest wait between reconnect attempts to Redis.")
    redis_prefix: str = Field("ai-router", description="Prefix of every Redis key (several routers, one Redis).")
    replica_id: str = Field(
        "", description="This router's name in the fleet (/stats, feedback hand-over); empty = host + session folder."
    )
    breaker_sync_s: float = Field(
        0.5, gt=0, description="How often (at most) a replica reads the fleet's breaker state from Redis."
    )
    feedback_poll_s: float = Field(
        1.0, gt=0, description="How often a replica collects feedback posted to other replicas for its sessions."
    )
    trusted_proxies: str = Field(
        "", description="Comma-separated addresses/CIDRs of proxies whose X-Forwarded-For names the client "
        "(rate limits by address); empty = the TCP peer is the client.",
    )
    stream_idle_timeout_s: float = Field(
        60.0, gt=0, description="Longest silence between two chunks of a backend's answer, then 504 or fallback."
    )
    enrich_timeout_s: float = Field(
        30.0, gt=0, description="Deadline of the ENRICH web search; then the primary answers without context."
    )

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

    # --- tool calling: which backends take `tools` -------------------------
    primary_supports_tools: bool = Field(
        True, description="The primary takes `tools` (vLLM needs --enable-auto-tool-choice)."
    )
    classifier_supports_tools: bool = Field(
        True, description="The classifier model takes `tools` (matters with SIMPLE_TO_CLASSIFIER)."
    )
    xai_supports_tools: bool = Field(True, description="The xAI model takes `tools`.")

    # --- vision (requests with images) -------------------------------------
    vision_base_url: str | None = Field(
        None, description="OpenAI-compatible URL of a vision model; unset = xAI when a key is set."
    )
    vision_model: str | None = Field(None, description="Vision model (required with VISION_BASE_URL).")
    vision_api_key: SecretStr | None = Field(None, description="Key for the vision backend, if any.")
    vision_timeout_s: float = Field(600.0, description="Total time allowed for a vision call.")
    vision_supports_tools: bool = Field(
        True, description="The vision backend at VISION_BASE_URL takes `tools`."
    )
    vision_max_concurrency: int = Field(32, description="Calls in flight to the vision backend at most.")

    # --- embeddings ---------------------------------------------------------
    embeddings_base_url: str | None = Field(
        None, description="OpenAI-compatible URL that serves /embeddings; unset = no /v1/embeddings."
    )
    embeddings_model: str | None = Field(None, description="Embedding model (listed in /v1/models).")
    embeddings_api_key: SecretStr | None = Field(None, description="Key for the embeddings backend.")
    embeddings_timeout_s: float = Field(60.0, description="Total time allowed for an embeddings call.")
    embeddings_max_concurrency: int = Field(64, description="Calls in flight to the embeddings backend at most.")

    # --- caches -------------------------------------------------------------
    route_cache_size: int = Field(
        4096, ge=0, description="Routing decisions remembered (LRU); 0 turns the decision cache off."
    )
    route_cache_ttl_s: float = Field(
        3600.0, gt=0, description="Seconds a routing decision (and a tool loop's route) is remembered."
    )
    tool_loop_cache_size: int = Field(
        4096, ge=1, description="Tool-call ids remembered with their route, so a tool loop keeps its route."
    )
    response_cache: bool = Field(
        False, description="Serve repeated deterministic requests (temperature 0 or a seed) from memory."
    )
    response_cache_max_entries: int = Field(512, ge=1, description="Responses the response cache holds.")
    response_cache_max_bytes: int = Field(
        32 * 1024 * 1024, ge=1, description="Bytes of responses the response cache holds."
    )
    response_cache_ttl_s: float = Field(600.0, gt=0, description="Seconds a cached response is served.")
    responses_store_max_entries: int = Field(
        1000, ge=0, description="Responses API answers kept for `previous_response_id` and GET (oldest go first; "
        "0 keeps none). With REDIS_URL the bound is the fleet's.",
    )
    responses_store_max_age_s: float = Field(
        86400.0, gt=0, description="Seconds a stored Responses API answer can be read or continued.",
    )

    # --- prompts -----------------------------------------------------------------------------
    prompts_dir: str | None = Field(
        "logs/prompts",
        description="The operator's prompts: an overlay over the shipped prompts/ (a prompt found here wins, "
        "any other is the shipped one; a missing folder means the shipped prompts). Applied review edits are "
        "written here, with their history; the shipped prompts/ is never written.",
    )

    # --- labels and the review desk ----------------------------------------------------------
    eval_labels_file: str = Field(
        "logs/labels.json", description="Labels (expected route, rating) by session id: evals and the review desk; "
        "a person's label counts instead of the LLM's answer in the local classifier's agreement."
    )
    review_desk: bool = Field(True, description="Serve the review desk at /review (admin only).")
    review_desk_work_dir: str = Field(
        "logs", description="Where the desk's eval and review jobs write (evals/, reviews/, desk-jobs/ inside)."
    )
    review_desk_cookie_hours: float = Field(12, gt=0, description="How long a review desk login lasts.")

    # --- usage, cost and model names ------------------------------------------------------
    usage_prices: str = Field(
        "xai=0.20/0.50", description="USD per million input/output tokens per backend (backend=in/out, comma-"
        "separated); a backend not named costs nothing.",
    )
    key_budget_requests_per_day: int = Field(
        0, ge=0, description="Requests each client key may send per day (TZ); 0 = no budget."
    )
    key_budget_tokens_per_day: int = Field(
        0, ge=0, description="Tokens each client key may use per day (TZ); past it, 429; 0 = no budget."
    )
    model_policy: Literal["route", "strict"] = Field(
        "route", description="A model name the router does not serve: route it anyway, or strict: 404."
    )
    model_aliases: str = Field(
        "ai-router-local=MODERATE,ai-router-cloud=COMPLEX",
        description="Extra model names listed by /v1/models that force a route (name=ROUTE, comma-separated).",
    )
    synthetic_traffic: bool = Field(
        False, description="Mark every session record of this router synthetic (benchmarks, load tests).",
    )

    @model_validator(mode="after")
    def _models_named(self) -> Settings:
        """A vision or embeddings URL without its model name is a configuration mistake."""
        for kind in ("vision", "embeddings"):
            if getattr(self, f"{kind}_base_url") and not getattr(self, f"{kind}_model"):
                raise ValueError(f"{kind.upper()}_BASE_URL is set but {kind.upper()}_MODEL is not; set both.")
        return self

    @property
    def xai_configured(self) -> bool:
        """Whether a cloud key is present, i.e. COMPLEX and ENRICH can use xAI."""
        return self.xai_api_key is not None and bool(self.xai_api_key.get_secret_value())

    @property
    def client_keys(self) -> list[str]:
        """The configured client keys."""
        if self.router_api_keys is None:
            return []
        return [k.strip() for k in self.router_api_keys.get_secret_value().split(",") if k.strip()]

    @property
    def vision_configured(self) -> bool:
        """Whether image requests have a backend: VISION_BASE_URL, else xAI when a key is set."""
        return bool(self.vision_base_url) or self.xai_configured

    @property
    def embeddings_configured(self) -> bool:
        """Whether `/v1/embeddings` has a backend to forward to."""
        return bool(self.embeddings_base_url)

    @property
    def search_tools(self) -> list[str]:
        """The xAI search tool names as a list."""
        return [t.strip() for t in self.xai_search_tools.split(",") if t.strip()]
