"""`deskbase serve --reload` (and `run --reload`): the definitions and overlays are watched
while the server runs. A change that checks is migrated into the database and swapped in
without a restart, and the open pages draw themselves again; a change with errors leaves
the server on the last good definitions, and every page shows the errors (file:line and
sentence) until the files are fixed. A change that would hide stored values (a field or type
removed) is applied only if the server was started with `--accept-hiding`; otherwise the
pages say so, as an error.

Meant for the consultant's desk, not production: the watcher reads file times every half
second, and the jobs' schedules and the mailboxes' listeners keep what they read at start."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from deskbase.objects.errors import DefinitionErrors, DeskbaseError
from deskbase.objects.store import Store
from deskbase.rules.application import load_application
from deskbase.views.reloading import Reloading

log = logging.getLogger("deskbase.reload")
WATCHED = (".yaml", ".yml", ".html", ".css")
NOT_DEFINITIONS = ("demo", "scenarios")      # sub-folders read by other commands, not the server


class DefinitionsWatcher:
    """Watches a definitions folder and its overlays for one store."""

    def __init__(self, store: Store, reloading: Reloading, folder: str | Path, overlays: Sequence[str | Path] = (),
                 *, accept_hiding: bool = False, report: Callable[[str], None] | None = None):
        self.store, self.reloading = store, reloading
        self.folder, self.overlays = Path(folder), [Path(overlay) for overlay in overlays]
        self.accept_hiding = accept_hiding
        self.report = report or log.info
        self.seen = self.fingerprint()

    def fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        """Every watched file with its modification time and size: a change of any is a change."""
        found = []
        for root in (self.folder, *self.overlays):
            for path in root.rglob("*"):
                if path.suffix in WATCHED and not any(part in NOT_DEFINITIONS for part in path.relative_to(root).parts):
                    try:
                        stat = path.stat()
                    except FileNotFoundError:            # removed while we looked
                        continue
                    found.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(sorted(found))

    def check(self) -> bool:
        """Apply the files' definitions if they changed since last seen; whether they had."""
        now = self.fingerprint()
        if now == self.seen:
            return False
        self.seen = now
        try:
            definitions = load_application(self.folder, self.overlays)
            plan = self.store.redefine(definitions, accept_hiding=self.accept_hiding)
        except DefinitionErrors as errors:
            problems = [str(error) for error in errors.errors]
            self.reloading.refused(problems)
            self.report(f"the definitions have {len(problems)} problem(s); still serving the last good ones:\n  "
                        + "\n  ".join(problems))
        except DeskbaseError as error:              # the migration refused (hiding) or failed: nothing changed
            self.reloading.refused([str(error)])
            self.report(f"the definitions were not applied: {error}")
        else:
            steps = [step.text for step in plan.steps]
            self.reloading.applied_change()
            self.report("definitions reloaded" + (": " + "; ".join(steps) if steps else ""))
        return True

    def watch(self, stop: threading.Event, interval: float = 0.5) -> None:
        """Check until `stop` is set; an unexpected failure is logged and the watch goes on."""
        while not stop.wait(interval):
            try:
                self.check()
            except Exception:                       # keep serving whatever happened
                log.exception("reloading the definitions failed")


class _QuietPolls(logging.Filter):
    """Keeps the open pages' question of every second ("changed?") out of the access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "/_reload " not in record.getMessage()


def start_watching(store: Store, reloading: Reloading, folder: str | Path, overlays: Sequence[str | Path],
                   stop: threading.Event, *, accept_hiding: bool = False) -> DefinitionsWatcher:
    """A watcher checking in a thread of its own until `stop`."""
    watcher = DefinitionsWatcher(store, reloading, folder, overlays, accept_hiding=accept_hiding,
                                 report=lambda text: print(text, flush=True))
    logging.getLogger("uvicorn.access").addFilter(_QuietPolls())
    threading.Thread(target=watcher.watch, args=(stop,), daemon=True, name="deskbase-reload").start()
    return watcher
