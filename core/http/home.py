"""Where the HTTP edge finds the process's services: the one place that reads the app's state.

The lifespan builds one `Services` and puts it on the app; handlers and middlewares reach it
through `services_of`, and hand it on explicitly from there.
"""

from __future__ import annotations

from starlette.applications import Starlette

from core.services import Services


def install(app: Starlette, services: Services) -> None:
    """Make `services` the ones `app`'s requests are served with (the lifespan calls this)."""
    app.state.services = services


def services_of(app: Starlette) -> Services:
    """The services `app` was started with."""
    services: Services = app.state.services
    return services
