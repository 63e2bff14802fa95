"""Every YAML file shipped reads the same with PyYAML's pure-Python reader as with libyaml's.

The definitions reader uses libyaml when PyYAML was built with it and falls back to the
pure-Python reader otherwise (and for its clearer error messages). The two do not accept
exactly the same text: in a flow mapping such as `{en: Why?, fr: Pourquoi ?}` the
pure-Python reader refuses a plain `?`, so such values are quoted."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deskbase.objects import sourcemap
from deskbase.objects.sourcemap import SourceMap, read_yaml
from deskbase.rules.application import load_application

TESTS = Path(__file__).parent.parent
REPOSITORY = TESTS.parent
HELPDESK = REPOSITORY / "definitions"
EXAMPLES = REPOSITORY / "examples"     # customer overlays
WITH_LIBYAML = getattr(yaml, "__with_libyaml__", False)


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(path for pattern in ("*.yaml", "*.yml") for path in folder.rglob(pattern))


# The shipped definitions (demo included), the examples when there are any, and the test
# applications.
SHIPPED_YAML = _yaml_files(HELPDESK) + _yaml_files(EXAMPLES) + _yaml_files(TESTS)


def _name(path: Path) -> str:
    return path.relative_to(REPOSITORY).as_posix()


def force_pure_python(monkeypatch: pytest.MonkeyPatch) -> list[type]:
    """Put the definitions reader on PyYAML's pure-Python reader, as on a machine whose PyYAML
    lacks libyaml; the list returned collects every reader class it composes with."""
    used: list[type] = []
    compose = yaml.compose

    def recording(stream, Loader):
        used.append(Loader)
        return compose(stream, Loader=Loader)

    monkeypatch.setattr(sourcemap, "_FastLoader", sourcemap._Loader)
    monkeypatch.setattr(sourcemap.yaml, "compose", recording)
    return used


def _all_pure_python(used: list[type]) -> bool:
    return bool(used) and all(issubclass(loader, yaml.SafeLoader) for loader in used)


def _positions(node: SourceMap) -> tuple:
    return (node.at, node.key_at, tuple((step, _positions(child)) for step, child in node.children.items()))


def test_the_shipped_yaml_files_are_all_found():
    names = {_name(path) for path in SHIPPED_YAML}
    assert {"definitions/helpdesk.yaml", "definitions/billing.yaml", "definitions/demo/30_tickets.yaml",
            "tests/objects/tasks_app/tasks.yaml", "tests/rules/notes_app/notes.yaml"} <= names


def _with_overlay_tags(base: type) -> type:
    """A reader that also reads the tags only overlays use (`!append [...]`) as (tag, value)."""
    def tagged(loader, suffix: str, node):
        if isinstance(node, yaml.SequenceNode):
            return (f"!{suffix}", loader.construct_sequence(node, deep=True))
        if isinstance(node, yaml.MappingNode):
            return (f"!{suffix}", loader.construct_mapping(node, deep=True))
        return (f"!{suffix}", loader.construct_scalar(node))
    reader = type(f"Tagged{base.__name__}", (base,), {})
    reader.add_multi_constructor("!", tagged)
    return reader


@pytest.mark.parametrize("path", SHIPPED_YAML, ids=_name)
def test_the_pure_python_reader_reads_what_libyaml_reads(path: Path):
    text = path.read_text(encoding="utf-8")
    pure = yaml.load(text, Loader=_with_overlay_tags(yaml.SafeLoader))
    assert pure is not None
    if WITH_LIBYAML:
        assert pure == yaml.load(text, Loader=_with_overlay_tags(yaml.CSafeLoader))


@pytest.mark.parametrize("path", SHIPPED_YAML, ids=_name)
def test_the_definitions_reader_reads_each_file_the_same_on_the_pure_python_path(path: Path, monkeypatch):
    """With the definitions reader's own reading rules, positions included (an overlay's
    files read as an overlay's, with their tags)."""
    overlay = EXAMPLES in path.parents
    usual, errors = read_yaml(path, overlay=overlay)
    assert errors == []
    used = force_pure_python(monkeypatch)
    pure, errors = read_yaml(path, overlay=overlay)
    assert errors == []
    assert _all_pure_python(used)
    assert pure.data == usual.data
    assert _positions(pure.positions) == _positions(usual.positions)


def test_the_shipped_application_and_demo_load_on_the_pure_python_path(app_store, helpdesk_definitions,
                                                                       monkeypatch):
    used = force_pure_python(monkeypatch)
    pure = load_application(HELPDESK)
    assert _all_pure_python(used)
    assert pure == helpdesk_definitions
    used.clear()
    with app_store(pure, demo=True) as store:
        tickets = store.read(lambda session: session.query("ticket", limit=1).total)
    assert _all_pure_python(used)
    assert tickets > 0
