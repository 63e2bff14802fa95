"""The shipped definitions changed in a copy, for the tests of how a mistake in them is told."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deskbase.objects.errors import DefinitionErrors
from deskbase.rules.application import load_application

SHIPPED = Path(__file__).parents[2] / "definitions"


def refusal_of_changed(tmp_path: Path, old: str, new: str, file: str = "helpdesk.yaml") -> DefinitionErrors:
    """The DefinitionErrors of the shipped definitions (without their demo) once `old` is
    replaced by `new` in one of their files."""
    folder = tmp_path / "definitions"
    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns("demo"))
    path = folder / file
    text = path.read_text()
    assert old in text, f"`{old}` is not in {file}"
    path.write_text(text.replace(old, new))
    with pytest.raises(DefinitionErrors) as refused:
        load_application(folder)
    return refused.value
