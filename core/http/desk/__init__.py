"""The review desk: the session-review loop as pages (and a JSON API) served by the router at `/review`.

`build_desk(deps)` returns an `APIRouter` to mount; everything it needs is handed in
(`DeskDeps`). See `core.http.desk.app` for the pages and the API, `index` for the SQLite index
of the session records, `jobs` for the eval and review jobs (child processes) and `auth` for
who may use it.
"""

from core.http.desk.app import Desk, DeskDeps, build_desk

__all__ = ["Desk", "DeskDeps", "build_desk"]
