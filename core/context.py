"""Run-scoped knobs: what one run of the graph is asked to do beyond routing its messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from prompts import PromptLibrary

if TYPE_CHECKING:  # for annotations only (core.services imports this module)
    from core.services import Services
    from core.settings import Settings

LocalClassifierMode = Literal["off", "shadow", "on", "auto"]


@dataclass
class RouterContext:
    """Per-run choices, resolved with one precedence: request > environment > default.

    The server builds it with `from_settings(settings, services, **request)`: what the
    request (or an eval, or a Studio run's context) sets wins, the process settings
    (environment, `.env`) fill the rest, and the settings' defaults apply last. A run
    whose context leaves a knob unset (None), e.g. Studio started with `{}`, reads it from
    the services' settings through `with_defaults`.
    """

    forced_route: str | None = None
    """Skip detection and classification and serve this route label."""
    dry_run: bool = False
    """Stop once the route is decided: no enrichment, no generation."""
    stream: bool = False
    """Stream the answer: `generate` emits each backend chunk as it arrives."""
    local_classifier: LocalClassifierMode | None = None
    """off, shadow, on or auto (`LOCAL_CLASSIFIER`); None: the setting."""
    local_classifier_threshold: float | None = None
    """Confidence the local classifier needs to decide; None: the setting, else the model's own."""
    prompts_dir: str | None = None
    """Folder of prompts for this run (`PROMPTS_DIR`); None: the setting, else the shipped prompts."""
    # The attributes below are set on an instance, never passed in: as `ClassVar`s they are
    # not dataclass fields, so the context's JSON schema (which Studio shows and fills) holds the
    # knobs only.
    services: ClassVar[Services | None] = None
    """Settings, backend clients and caches; None: the process's default services (Studio)."""
    chunk_sink: ClassVar[Any] = None
    """Where `generate` hands each streamed chunk (a callable); None: LangGraph's stream writer.

    LangGraph's custom stream writer costs tens of microseconds per chunk (its queue, then
    `astream`'s); at 64 streams of 10 ms tokens that was a sixth of the router's CPU. The
    server's run driver sets this to its own queue; Studio and other `astream(stream_mode=
    "custom")` callers get the writer.
    """
    resolved: ClassVar[bool] = False
    """Whether the knobs were filled from settings (`from_settings`); Studio's contexts are not."""
    measured_session: ClassVar[str | None] = None
    """The session id under which this run's classification counts in the local classifier's
    agreement (`core.routing.agreement`; a person's later label of the session replaces the LLM's
    answer there). The HTTP edge sets it for real traffic; None (Studio, eval replays, synthetic
    traffic): not measured, so no replay or load test moves what auto mode promotes."""

    @classmethod
    def from_settings(cls, settings: Settings, services: Services | None = None, **request: Any) -> RouterContext:
        """The context of one run: `request`'s values, else `settings`' (request > env > default)."""
        knobs: dict[str, Any] = {
            "local_classifier": settings.local_classifier,
            "local_classifier_threshold": settings.local_classifier_threshold,
            "prompts_dir": settings.prompts_dir,
        }
        knobs.update({key: value for key, value in request.items() if value is not None})
        context = cls(**knobs)
        context.attach(services=services, resolved=True)
        return context

    def attach(self, **objects: Any) -> None:
        """Set this run's objects (`services`, `chunk_sink`, `resolved`, `measured_session`) on the instance."""
        for name, value in objects.items():
            if name not in ("services", "chunk_sink", "resolved", "measured_session"):
                raise AttributeError(f"RouterContext has no attached object {name!r}")
            object.__setattr__(self, name, value)  # shadows the ClassVar default, for this run only

    def with_defaults(self, settings: Settings) -> RouterContext:
        """This context with every unset knob taken from `settings` (a Studio run's `{}`)."""
        if self.resolved:
            return self
        context = RouterContext.from_settings(
            settings, self.services, forced_route=self.forced_route, dry_run=self.dry_run, stream=self.stream,
            local_classifier=self.local_classifier, local_classifier_threshold=self.local_classifier_threshold,
            prompts_dir=self.prompts_dir,
        )
        context.attach(chunk_sink=self.chunk_sink, measured_session=self.measured_session)
        return context

    @property
    def prompts(self) -> PromptLibrary:
        """The prompts this run reads."""
        return PromptLibrary.at(self.prompts_dir)
