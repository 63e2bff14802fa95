"""What the pages show of a server started with `--reload`: which definitions they are built
from (a generation number that grows at each applied change, so open pages refresh
themselves) and, while the files on disk have errors, those errors in a banner on every
page: the server keeps serving the last good definitions meanwhile."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse


@dataclass
class Reloading:
    """The state of a reloading server, changed by its watcher and read by every page."""

    generation: int = 1
    problems: tuple[str, ...] = ()         # sentences (file:line: …) of the definitions on disk
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def applied_change(self) -> None:
        with self._lock:
            self.generation += 1
            self.problems = ()

    def refused(self, problems: list[str]) -> None:
        with self._lock:
            self.problems = tuple(problems)

    def status(self) -> dict[str, object]:
        with self._lock:
            return {"generation": self.generation, "problems": list(self.problems)}


def reload_status(reloading: Reloading):
    """The route open pages ask, every second, whether to refresh: the generation and the
    problems they were drawn with are in the page (`#reload`); a difference reloads it."""
    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse(reloading.status(), headers={"Cache-Control": "no-store"})
    return endpoint
