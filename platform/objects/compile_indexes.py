"""Compiling the indexes of a type: which fields are indexed and how (field, keyword, text),
refusing an index that does not fit its field's kind."""
from __future__ import annotations

from collections.abc import Mapping

from .compiling import SEARCHABLE_KINDS, CompilerPart, with_article
from .errors import hint_for
from .fields import AttachmentsKind, ComputedKind, Kind, TextKind
from .model import SYSTEM_INDEXES, FieldDef, IndexDef
from .sourcemap import DocPath


class IndexCompiling(CompilerPart):
    """The indexes part of the definitions' compiler (`definitions._Compiler`)."""

    def indexes(self, type_name: str, spec: dict, fields: Mapping[str, FieldDef]) -> dict[str, IndexDef]:
        listed = spec.get("index")
        entries = listed if isinstance(listed, list) and type_name not in self.vague else []
        declared: dict[str, IndexDef] = {}
        text_index: IndexDef | None = None
        always = {index.fields[0] for index in SYSTEM_INDEXES}
        for position, entry in enumerate(entries):
            path = ("types", type_name, "index", position)
            target_path: DocPath
            if isinstance(entry, str):
                index_kind, target, target_path = None, entry, path
            elif isinstance(entry, dict) and len(entry) == 1:
                (index_kind, target), = entry.items()
                target_path = path + (index_kind,)
            else:
                continue
            if index_kind == "text":
                if text_index is not None:
                    self.error(target_path, f"type `{type_name}` has two text indexes; a type has one",
                               "put all the fields in one entry, such as {text: [title, description]}")
                    continue
                names = [target] if isinstance(target, str) else target if isinstance(target, list) else []
                text_index = self.text_index(type_name, names, target_path, fields, isinstance(target, list))
                continue
            if not isinstance(target, str) or index_kind not in (None, "field", "range", "keyword"):
                continue
            field = fields.get(target)
            if field is None:
                self.error(target_path, f"index over `{target}`, which is not a field of type `{type_name}`",
                           hint_for(target, fields))
                continue
            if target in always or target == "id":
                self.error(target_path, f"`{target}` is always indexed" if target != "id"
                           else "`id` always sorts and needs no index", f"remove `{target}` from `index`")
                continue
            if (type_name, target) in self.broken:
                declared.setdefault(target, IndexDef(target, index_kind or "field", (target,)))
                continue
            kind = field.kind.result if isinstance(field.kind, ComputedKind) else field.kind
            index_kind = index_kind or ("keyword" if kind.multiple else "field")
            problem = self.index_misfit(target, kind, index_kind)
            if problem:
                self.error(target_path, *problem)
                continue
            if target in declared:
                self.error(target_path, f"`{target}` is indexed twice", "keep one entry")
                continue
            declared[target] = IndexDef(target, index_kind, (target,))
        if text_index is not None:
            if "text" in declared:   # an index over a field named `text` would share the name
                self.error(("types", type_name, "fields", "text"),
                           "a field named `text` cannot be indexed in a type that has a text index: "
                           "both indexes would be named `text`", "rename the field", on_key=True)
            declared["text"] = text_index
        return {**declared, **{index.name: index for index in SYSTEM_INDEXES}}

    @staticmethod
    def index_misfit(name: str, kind: Kind, index_kind: str) -> tuple[str, str] | None:
        if isinstance(kind, AttachmentsKind):
            return f"`{name}` holds files, which cannot be indexed", f"remove `{name}` from `index`"
        if index_kind == "keyword" and not kind.multiple:
            return (f"`{name}` holds one value; a keyword index is for fields with several values (refs, tags)",
                    f"write `{name}` alone")
        if index_kind in ("field", "range") and kind.multiple:
            return (f"`{name}` holds several values; a {index_kind} index keeps one value per record",
                    f"write {{keyword: {name}}}")
        if index_kind in ("field", "range") and isinstance(kind, TextKind):
            return (f"`{name}` is long text, which has no order to index",
                    f"search it with a text index: {{text: [{name}]}}")
        return None

    def text_index(self, type_name: str, names: list, path: DocPath, fields: Mapping[str, FieldDef],
                   listed: bool) -> IndexDef | None:
        good = []
        for position, name in enumerate(names):
            if not isinstance(name, str):
                continue
            where = path + (position,) if listed else path
            field = fields.get(name)
            if field is None:
                self.error(where, f"the text index names `{name}`, which is not a field of type `{type_name}`",
                           hint_for(name, fields))
                continue
            kind = field.kind.result if isinstance(field.kind, ComputedKind) else field.kind
            if kind.name not in SEARCHABLE_KINDS and (type_name, name) not in self.broken:
                self.error(where, f"`{name}` is {with_article(kind.name)} field; a text index searches string and text fields")
                continue
            if name in good:
                self.error(where, f"`{name}` is named twice in the text index")
                continue
            good.append(name)
        return IndexDef("text", "text", tuple(good)) if good else None
