"""Settings of the evals (replays, judge, review, reports), read from the environment and `.env`.

Kept apart from the router's `core.settings`: nothing here changes how the router routes.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from prompts import PromptLibrary

EVAL_PROMPTS = PromptLibrary(Path(__file__).parent / "prompts")
"""The evals' own prompts (judge, review): kept out of the router's prompt digest, and no overlay
over the router's prompts (`PromptLibrary.at` is for the router's folders)."""


class EvalSettings(BaseSettings):
    """Eval configuration; each field maps to the upper-case environment variable.

    The labels file (`EVAL_LABELS_FILE`) is the router's setting (`core.settings`): the review desk
    writes it too.
    """

    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore", case_sensitive=False)

    eval_concurrency: int = Field(8, description="Requests an eval replay has in flight at most.")
    eval_xai_input_price: float = Field(
        0.20, description="xAI price in USD per million input tokens, for cost estimates in eval reports."
    )
    eval_xai_output_price: float = Field(
        0.50, description="xAI price in USD per million output tokens, for cost estimates in eval reports."
    )
    eval_margin: float = Field(
        0.02, description="`evals.run --gate`: fail when accuracy is below the baseline by more than this."
    )
    eval_cascade_margin: float = Field(
        0.01,
        ge=0,
        description="`evals.run --gate`: fail when the cascade's route accuracy (local classifier on) is "
        "below the LLM-only replay's (LOCAL_CLASSIFIER=off) by more than this.",
    )
