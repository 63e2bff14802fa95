"""An application as the rules layer sees it: definitions with the rules' own sections
(`identity:`, `access:`, `workflow:`), and stores that apply them. The one place where a
store gets its access rules and workflows installed is `open_store`."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deskbase.objects.definitions import Section, load_definitions
from deskbase.objects.demo import load_demo
from deskbase.objects.model import Definitions
from deskbase.objects.store import Store

from . import access, workflows
from .identity import IDENTITY_SECTION, load_demo_users

RULES_SECTIONS: tuple[Section, ...] = (IDENTITY_SECTION, access.ACCESS_SECTION, workflows.WORKFLOW_SECTION)


def load_application(folder: str | Path = "definitions", overlays: Sequence[str | Path] = ()) -> Definitions:
    """The compiled definitions of an application, with its identity, access and workflow sections."""
    return load_definitions(folder, overlays, sections=RULES_SECTIONS)


def open_store(uri: str | None, definitions: Definitions, *, migrate: bool = True) -> Store:
    """A store of an application whose sessions opened with an identity follow its access
    rules, and whose records follow their workflows."""
    store = Store.open(uri, definitions, migrate=migrate)
    access.install(store)
    workflows.install(store)
    return store


def load_application_demo(store: Store, folder: str | Path, **options: Any) -> dict[str, int]:
    """Load a demo folder, its `users:` lists included; options as for `load_demo`."""
    return load_demo(store, Path(folder), sections={"users": load_demo_users}, **options)
