"""Every requirement code (P4, T7, B5, …) cited in the code, the definitions, the tests, the
benchmarks or the docs is explained in docs/requirements.md, so a reader can look it up.

Codes are looked for where people write prose, not in values: Python comments and
docstrings, YAML comments, Jinja comments of templates, and Markdown, leaving out code
(`inline` or fenced). So a variable `T0`, a laptop model `ThinkPad T14` in the demo data
or a ticket number `T-000123` is not taken for a code."""
from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "docs" / "requirements.md"
SEARCHED = ("definitions", "examples", "platform", "tests", "bench", "docs")

# A code, or a range of codes of one letter: T2–T5 (an en dash or a hyphen).
CODE = re.compile(r"\b([PTB])(\d{1,2})(?:\s?[–-]\s?\1(\d{1,2}))?\b")
ENTRY = re.compile(r"^- \*\*([PTB]\d{1,2})\*\* — \S", re.MULTILINE)


def codes_in(text: str) -> set[str]:
    """The codes a piece of prose cites, ranges spelled out; `inline code` is left out."""
    found = set()
    for letter, first, last in CODE.findall(re.sub(r"`[^`\n]*`", "", text)):
        for number in range(int(first), int(last or first) + 1):
            found.add(f"{letter}{number}")
    return found


def python_prose(source: str) -> Iterator[str]:
    """The comments and docstrings of a Python module."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            docstring = ast.get_docstring(node, clean=False)
            if docstring:
                yield docstring


def yaml_comments(source: str) -> Iterator[str]:
    """The comments of a YAML file: from a `#` at the start of a line or after a space,
    outside quotes, to the end of the line."""
    for line in source.splitlines():
        quote = None
        for position, character in enumerate(line):
            if quote:
                if character == quote:
                    quote = None
            elif character in "'\"":
                quote = character
            elif character == "#" and (position == 0 or line[position - 1].isspace()):
                yield line[position + 1:]
                break


def jinja_comments(source: str) -> Iterator[str]:
    yield from re.findall(r"\{#(.*?)#\}", source, re.DOTALL)


def markdown_prose(source: str) -> Iterator[str]:
    """Markdown without its fenced code blocks (inline code is left out by `codes_in`)."""
    yield re.sub(r"^```.*?^```", "", source, flags=re.MULTILINE | re.DOTALL)


READERS = {".py": python_prose, ".yaml": yaml_comments, ".yml": yaml_comments,
           ".html": jinja_comments, ".md": markdown_prose}


def cited_codes() -> dict[str, set[str]]:
    """Each code cited in the searched folders and README.md → the files citing it."""
    files = [ROOT / "README.md"]
    for folder in SEARCHED:
        files += sorted(p for p in (ROOT / folder).rglob("*") if p.suffix in READERS and p.is_file())
    cited: dict[str, set[str]] = {}
    for path in files:
        if path == REQUIREMENTS or ".venv" in path.parts or "__pycache__" in path.parts:
            continue
        for prose in READERS[path.suffix](path.read_text(encoding="utf-8")):
            for code in codes_in(prose):
                cited.setdefault(code, set()).add(str(path.relative_to(ROOT)))
    return cited


def explained_codes() -> list[str]:
    return ENTRY.findall(REQUIREMENTS.read_text(encoding="utf-8"))


def test_every_cited_requirement_code_is_explained_in_docs_requirements():
    explained = set(explained_codes())
    missing = {code: sorted(files) for code, files in cited_codes().items() if code not in explained}
    assert not missing, "codes cited but not explained in docs/requirements.md: " + "; ".join(
        f"{code} (in {', '.join(files[:3])})" for code, files in sorted(missing.items()))


def test_each_code_is_explained_once_in_order():
    explained = explained_codes()
    assert len(explained) == len(set(explained))
    for letter in "PTB":
        numbers = [int(code[1:]) for code in explained if code[0] == letter]
        assert numbers == list(range(1, len(numbers) + 1)), f"the {letter} codes are not 1, 2, 3, … in order"


def test_the_search_finds_the_codes_the_sources_cite():
    cited = cited_codes()
    # Cited in a YAML comment, a Python docstring, a Jinja comment and a Markdown page.
    assert "definitions/helpdesk.yaml" in cited["T5"]
    assert "platform/views/api.py" in cited["P20"]
    assert "definitions/documents/invoice.html" in cited["B6"]
    assert "docs/helpdesk.md" in cited["B3"]


def test_values_and_code_are_not_taken_for_codes():
    assert codes_in("the demo data (T2–T5, T8) and billing (B1-B6)") == {
        "T2", "T3", "T4", "T5", "T8", "B1", "B2", "B3", "B4", "B5", "B6"}
    assert codes_in("T-000123 and AR-00001, the `T0` of a test") == set()
    source = 'T0 = 1\nname = "ThinkPad T14"\n# dispatch (T10)\ndef f():\n    """Approvals (P7)."""\n'
    assert codes_in(" ".join(python_prose(source))) == {"T10", "P7"}
    yaml = 'asset: {name: "ThinkPad T14 # spare"}   # a laptop (T18)\ncolour: "#T14"\n'
    assert codes_in(" ".join(yaml_comments(yaml))) == {"T18"}
    markdown = "Dispatch (T10).\n\n```sh\ndeskbase fire T1\n```\n\nThe `P3` key, and P4.\n"
    assert codes_in(" ".join(markdown_prose(markdown))) == {"T10", "P4"}
