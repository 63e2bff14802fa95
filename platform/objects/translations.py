"""Per-language catalogues of the definitions' labels and messages.

A label is written inline as a map of languages (`{en: Closed, fr: Clos}`). At five
languages such maps make the YAML hard to read, so the languages after the first may come
from gettext catalogues beside the YAML instead: `locale/<language>.po` in the definitions
folder and in each overlay folder (an overlay's entry wins), each `msgid` the text of the
first language as written in the YAML, each `msgstr` its translation. When definitions are
loaded, every label map missing a language is completed from that language's catalogues.
A folder that has a catalogue of a language must translate every label its own files
write: one missing is reported at its place in the YAML, as every other problem of the
definitions. A folder without one (an overlay adding a field in English and French) is not
held to that language: its labels show there in the first language.

`deskbase translations LANGUAGE` writes or updates a catalogue: new texts added with an
empty translation, the texts no longer used dropped, the translations kept.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.pofile import PoFileError, read_po, write_po

from .errors import DefinitionError
from .sourcemap import DocPath, SourceMap, format_path

FOLDER = "locale"


@dataclass(frozen=True)
class Label:
    """A map of languages found in the definitions: where it is, and its text in the first language."""

    path: DocPath
    source: str
    texts: Mapping[str, Any]


def catalogue_path(folder: str | Path, language: str) -> Path:
    """Where a folder keeps the catalogue of one language."""
    return Path(folder) / FOLDER / f"{language}.po"


def languages_of(data: Any) -> list[str]:
    """The languages the definitions declare (`settings.languages`), English when none."""
    settings = data.get("settings") if isinstance(data, Mapping) else None
    declared = settings.get("languages") if isinstance(settings, Mapping) else None
    if isinstance(declared, list) and declared and all(isinstance(code, str) for code in declared):
        return list(declared)
    return ["en"]


def labels(data: Any, languages: Sequence[str], path: DocPath = ()) -> Iterator[Label]:
    """Every label map of the document: a map whose keys are all declared languages, the first
    among them, and whose values are texts. Maps inside a label are not visited."""
    if isinstance(data, Mapping):
        if (data and languages[0] in data and all(key in languages for key in data)
                and all(isinstance(text, str) for text in data.values())):
            yield Label(path, data[languages[0]], data)
            return
        for key, value in data.items():
            yield from labels(value, languages, path + (key,))
    elif isinstance(data, list):
        for position, value in enumerate(data):
            yield from labels(value, languages, path + (position,))


def read_catalogue(path: Path) -> tuple[dict[str, str], list[DefinitionError]]:
    """msgid → msgstr of the translated, not fuzzy, entries of a .po file; a file that does not
    read is a problem at its line."""
    try:
        with path.open("rb") as source:
            catalogue = read_po(source, abort_invalid=True)
    except PoFileError as error:
        line = getattr(error, "lineno", 0) + 1          # Babel counts lines from 0
        return {}, [DefinitionError(str(path), line, 1, "", f"this catalogue does not read: {error}",
                                    "each entry is a `msgid \"…\"` line, then a `msgstr \"…\"` line")]
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return {}, [DefinitionError(str(path), 1, 1, "", f"this catalogue cannot be read: {error}")]
    return {message.id: message.string for message in catalogue
            if isinstance(message.id, str) and message.id and isinstance(message.string, str) and message.string
            and not message.fuzzy}, []


def catalogues(folders: Sequence[str | Path], languages: Sequence[str]) -> tuple[dict[str, dict[str, str]],
                                                                               dict[str, list[str]],
                                                                               list[DefinitionError]]:
    """For each language after the first that has a catalogue in one of `folders` (the
    definitions, then the overlays): its entries (later folders winning), the files read, and
    the problems met."""
    entries: dict[str, dict[str, str]] = {}
    files: dict[str, list[str]] = {}
    errors: list[DefinitionError] = []
    for language in languages[1:]:
        for folder in folders:
            path = catalogue_path(folder, language)
            if not path.is_file():
                continue
            read, problems = read_catalogue(path)
            errors += problems
            entries.setdefault(language, {}).update(read)
            files.setdefault(language, []).append(str(path))
    return entries, files, errors


def translate(data: Any, positions: SourceMap, folders: Sequence[str | Path]) -> list[DefinitionError]:
    """Complete the label maps of `data` (in place) from the catalogues of `folders`; the
    labels a catalogue lacks, each at its place."""
    languages = languages_of(data)
    if len(languages) < 2:
        return []
    entries, files, errors = catalogues(folders, languages)
    if not entries:
        return errors
    held = {(Path(path).parent.parent.resolve(), language) for language, paths in files.items() for path in paths}
    homes = [Path(folder).resolve() for folder in folders]
    seen: set[int] = set()
    missing: dict[tuple[str, str], list[tuple[Any, DocPath]]] = {}
    for label in labels(data, languages):
        if id(label.texts) in seen:         # a label written once and used twice (a YAML alias)
            continue
        seen.add(id(label.texts))
        for language, found in entries.items():
            if language in label.texts:
                continue
            text = found.get(label.source)
            if text is not None:
                label.texts[language] = text      # type: ignore[index]   # the document's own dict
                continue
            at = positions.locate(label.path)
            written = positions.locate(label.path + (languages[0],))    # where its text was written (an overlay?)
            if (_home(written.file, homes), language) not in held:
                continue                        # that folder keeps no catalogue of this language
            missing.setdefault((language, label.source), []).append((at, label.path))
    for (language, source), places in missing.items():       # a text said once, at its first place
        (at, path), others = places[0], len(places) - 1
        shown = source if len(source) <= 60 else source[:60] + "…"
        elsewhere = f" (nor at {others} other place{'s' if others > 1 else ''})" if others else ""
        errors.append(DefinitionError(at.file, at.line, at.column, format_path(path),
                                      f"“{shown}” has no translation in `{language}`{elsewhere}",
                                      f"add it to {files[language][-1]} (or write `{language}:` beside "
                                      f"`{languages[0]}:` here); `deskbase translations {language}` adds "
                                      f"every missing text to the catalogue"))
    return errors


def _home(file: str, homes: list[Path]) -> Path | None:
    """The definitions or overlay folder a YAML file is in."""
    path = Path(file).resolve()
    return next((home for home in homes if path.parent == home), None)


def update_catalogue(data: Any, positions: SourceMap, language: str, path: Path,
                     project: str = "Deskbase definitions") -> tuple[int, int, int]:
    """Write the catalogue of `language` at `path` for the labels of `data`: every text of the
    first language, with its translation from the file as it was (or from the inline map),
    where in the YAML it is written as a reference. (texts, translated, new)."""
    languages = languages_of(data)
    known: dict[str, str] = {}
    if path.is_file():
        known, problems = read_catalogue(path)
        if problems:
            raise ValueError(problems[0].message)
    catalogue = Catalog(locale=language, project=project, charset="utf-8")
    translated = new = 0
    for label in labels(data, languages):
        if label.source in catalogue:
            continue
        at = positions.locate(label.path)
        inline = label.texts.get(language)
        text = known.get(label.source) or (inline if isinstance(inline, str) else "")
        if label.source not in known:
            new += 1
        translated += bool(text)
        catalogue.add(label.source, text, locations=[(_relative(at.file, path), at.line)])
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as target:
        write_po(target, catalogue, width=100, sort_output=False, omit_header=False)
    return len(catalogue), translated, new


def _relative(file: str, catalogue: Path) -> str:
    """A YAML file's name as seen from the folder holding the catalogue's folder."""
    try:
        return str(Path(file).resolve().relative_to(catalogue.parent.parent.resolve()))
    except ValueError:
        return file
