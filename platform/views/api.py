"""The JSON API (P20) under /api/v1: lists in the filter language, records, creates, updates,
transitions and uploads, each request acting as the account of its API key (api_keys.py), so
every scope, hidden and read-only field applies as in the web interface; an OpenAPI
document generated from the definitions. Cookies are never read here: a browser cannot be
led into writing through the API."""
from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from ZODB.POSException import ConflictError

from deskbase.objects.errors import DeskbaseError, FieldError, NotFound, QueryError, StaleEdit, ValidationError
from deskbase.objects.fields import (
    AttachmentsKind,
    BooleanKind,
    ComputedKind,
    DateKind,
    DateTimeKind,
    DecimalKind,
    DurationKind,
    EnumKind,
    IntegerKind,
    Kind,
    MoneyKind,
    RefKind,
    RefsKind,
    StringKind,
    TagsKind,
    Upload,
)
from deskbase.objects.filters import parse_filter_text
from deskbase.objects.model import TypeDef
from deskbase.objects.records import Record
from deskbase.objects.store import Store
from deskbase.rules.access.identity import Identity
from deskbase.rules.access.scopes import AccessDenied, decide, fixed_values, hidden_fields, readonly_fields
from deskbase.rules.process.workflows import TransitionRefused, available_transitions, fire, workflow_of

from .api_keys import KeyRefused, identity_of_key
from .editing import kept_by_rules

PREFIX = "/api/v1"
DEFAULT_LIMIT, MAX_LIMIT = 50, 500
MAX_REQUEST = 100 * 2**20        # one request with its files; each attachments field has its own limit


TOO_LARGE = f"The request is too large: at most {MAX_REQUEST // 2**20} MiB in one form or body."


class BodyTooLarge(Exception):
    """A request body past MAX_REQUEST, found while it was being read (see app.BodyLimit)."""
log = logging.getLogger("deskbase.api")


class ApiError(DeskbaseError):
    """A request the API answers with an error of its own: a status, a sentence and the
    fields at fault (field → why)."""

    def __init__(self, status: int, message: str, fields: Mapping[str, str] | None = None):
        self.status, self.message, self.fields = status, message, dict(fields or {})
        super().__init__(message)


# -- records as JSON ---------------------------------------------------------------------

def record_json(typedef: TypeDef, record: Record, hidden: frozenset[str]) -> dict[str, Any]:
    """A record as the API shows it: number, id, version, then every field not hidden."""
    data: dict[str, Any] = {"number": record.number, "id": record.id, "version": record.version}
    for name, definition in typedef.fields.items():
        if name not in hidden and name not in data:
            value = record.get(name)
            data[name] = None if value is None else definition.kind.to_json(value)
    return data


def kind_schema(kind: Kind) -> dict[str, Any]:
    """The JSON Schema of a field kind's values, as the API reads and writes them."""
    if isinstance(kind, ComputedKind):
        return {**kind_schema(kind.result), "readOnly": True}
    if isinstance(kind, AttachmentsKind):
        item = {"type": "object", "properties": {"filename": {"type": "string"}, "content_type": {"type": "string"},
                                                 "size": {"type": "integer"}}}
        accepted = f" ({', '.join(kind.accept)})" if kind.accept else ""
        return {"type": "array", "items": item, "readOnly": True,
                "description": f"files of at most {kind.max_size} bytes{accepted}, "
                               f"added with POST …/attachments/<field>"}
    if isinstance(kind, RefKind):
        one = {"type": "integer", "description": f"the id of a `{kind.to}` record; its number or exact title "
                                                 f"is accepted too when writing"}
        return {"type": "array", "items": one} if isinstance(kind, RefsKind) else one
    if isinstance(kind, EnumKind):
        return {"type": "string", "enum": list(kind.values)}
    if isinstance(kind, StringKind):
        return {"type": "string", "maxLength": kind.max_length, **({"pattern": kind.pattern} if kind.pattern else {})}
    if isinstance(kind, (IntegerKind, DurationKind)):
        bounds = {key: value for key, value in (("minimum", kind.minimum), ("maximum", kind.maximum))
                  if value is not None}
        if isinstance(kind, DurationKind):
            return {"type": ["integer", "string"], **bounds,
                    "description": "read as seconds; written as 1h30, 45m, PT1H30M or a number of minutes"}
        return {"type": "integer", **bounds}
    if isinstance(kind, DecimalKind):
        money = f" in {kind.currency}" if isinstance(kind, MoneyKind) else ""
        return {"type": "string", "format": "decimal",
                "description": f"a number with {kind.places} decimal places{money}"}
    simple = ((BooleanKind, {"type": "boolean"}), (DateTimeKind, {"type": "string", "format": "date-time"}),
              (DateKind, {"type": "string", "format": "date"}),
              (TagsKind, {"type": "array", "items": {"type": "string"}}))
    return next((dict(schema) for kinds, schema in simple if isinstance(kind, kinds)),
                {"type": "string"})     # user logins and kinds without more to say


# -- the API -------------------------------------------------------------------------------

class Api:
    """The API of one store. Mount it with `api_mount`."""

    def __init__(self, store: Store):
        self.store = store

    @property
    def definitions(self):
        """The store's definitions, read at each use: a reloading server swaps them."""
        return self.store.definitions

    def identity(self, request: Request) -> Identity:
        """Who the request acts as, from its bearer key alone (never a cookie)."""
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise KeyRefused()
        return identity_of_key(self.store, key.strip())

    def _type(self, request: Request) -> TypeDef:
        return self.definitions.type(request.path_params["type"])    # NotFound names the closest type

    def _readable(self, session, identity: Identity, typedef: TypeDef, number: str) -> Record:
        """The record of a type the identity may read; NotFound otherwise: what one may
        not read does not exist."""
        try:
            record = session.resolve(number, typedef.name)
        except NotFound:
            record = None
        if record is None or record.type_name != typedef.name or not decide(
                identity, "read", typedef, record, definitions=self.definitions,
                context=session.context(record.values)):
            raise NotFound(f"there is no {typedef.title()} numbered `{number}`")
        return record

    def _shown(self, session, identity: Identity, typedef: TypeDef, record: Record) -> dict[str, Any]:
        """A record just written: in full if the identity may read it, else its number only."""
        if decide(identity, "read", typedef, record, definitions=self.definitions,
                  context=session.context(record.values)):
            return record_json(typedef, record, hidden_fields(identity, typedef, self.definitions))
        return {"number": record.number, "id": record.id, "version": record.version}

    # -- reads -----------------------------------------------------------------------------

    def list_records(self, request: Request, identity: Identity, body: Any) -> Response:
        """GET /{type}?filter=…&sort=…&offset=…&limit=…"""
        typedef = self._type(request)
        decision = decide(identity, "read", typedef, definitions=self.definitions)
        if not decision:
            raise AccessDenied("read", decision.reason)
        params = request.query_params
        spec, sort = _filter(params.get("filter")), params.get("sort") or None
        offset = _whole(params, "offset", 0)
        limit = min(_whole(params, "limit", DEFAULT_LIMIT), MAX_LIMIT)
        hidden = hidden_fields(identity, typedef, self.definitions)
        self._check_hidden(typedef, spec, sort, hidden)

        def work(session) -> dict[str, Any]:
            page = session.query(typedef.name, spec, sort, offset=offset, limit=limit)
            return {"total": page.total, "offset": offset, "limit": limit,
                    "records": [record_json(typedef, record, hidden) for record in page.records]}
        try:
            return JSONResponse(self.store.read(work, identity=identity))
        except FieldError as error:         # a record number in the filter that names nothing
            raise QueryError(str(error), "filter") from None

    def _check_hidden(self, typedef: TypeDef, spec: Any, sort: str | None, hidden: frozenset[str]) -> None:
        """Refuse a filter or sort that reads hidden fields: its results would tell their values."""
        read = set(self.store.compiled_filter(spec, typedef.name).fields) if spec else set()
        read |= {part.strip().lstrip("+-").strip() for part in (sort or "").split(",")}
        named = sorted(read & hidden)
        if named:
            raise QueryError(f"you may not filter or sort on {', '.join(f'`{n}`' for n in named)}: "
                             f"hidden from you")

    def read_record(self, request: Request, identity: Identity, body: Any) -> Response:
        """GET /{type}/{number}"""
        typedef = self._type(request)

        def work(session) -> dict[str, Any]:
            record = self._readable(session, identity, typedef, request.path_params["number"])
            return record_json(typedef, record, hidden_fields(identity, typedef, self.definitions))
        return JSONResponse(self.store.read(work, identity=identity))

    def list_transitions(self, request: Request, identity: Identity, body: Any) -> Response:
        """GET /{type}/{number}/transitions: those the identity may fire now."""
        typedef = self._type(request)
        language = identity.language or self.definitions.languages[0]

        def work(session) -> list[dict[str, Any]]:
            record = self._readable(session, identity, typedef, request.path_params["number"])
            return [{"name": name, "label": label,
                     "inputs": {i: {**kind_schema(spec.kind), "title": spec.title(language), "required": spec.required}
                                for i, spec in inputs.items()}}
                    for name, label, inputs in available_transitions(session, record)]
        return JSONResponse({"transitions": self.store.read(work, identity=identity)})

    # -- writes ----------------------------------------------------------------------------

    def create_record(self, request: Request, identity: Identity, body: Any) -> Response:
        """POST /{type} with the field values: 201 with the record and its Location. What the
        person's create rule pins (a customer's organization, a comment's author) is filled in
        when not sent; sent otherwise, it is refused with the rule."""
        typedef = self._type(request)
        values = {**fixed_values(identity, "create", typedef, self.definitions), **_object(body)}

        def work(session) -> dict[str, Any]:
            return self._shown(session, identity, typedef, session.create(typedef.name, values))
        data = self.store.run(work, identity=identity)
        return JSONResponse(data, status_code=201, headers={"Location": f"{PREFIX}/{typedef.name}/{data['number']}"})

    def update_record(self, request: Request, identity: Identity, body: Any) -> Response:
        """PATCH /{type}/{number} with the fields to change and, to detect stale edits, `version`."""
        changes = _object(body)
        version = _version(changes)
        return self._change(request, identity, lambda session, record: session.update(record, changes, version=version))

    def fire_transition(self, request: Request, identity: Identity, body: Any) -> Response:
        """POST /{type}/{number}/transitions/{name} with the transition's inputs and, optionally, `version`."""
        inputs = _object(body)
        version = _version(inputs)
        return self._change(request, identity, lambda session, record: fire(
            session, record, request.path_params["name"], inputs, version=version))

    def _change(self, request: Request, identity: Identity, change: Callable[[Any, Record], Record]) -> Response:
        """Apply `change(session, record)` to the readable record the path names, in one
        transaction, and answer with the record as it is now."""
        typedef = self._type(request)

        def work(session) -> dict[str, Any]:
            record = self._readable(session, identity, typedef, request.path_params["number"])
            return self._shown(session, identity, typedef, change(session, record))
        return JSONResponse(self.store.run(work, identity=identity))

    def attach(self, request: Request, identity: Identity, uploads: list[Upload]) -> Response:
        """POST /{type}/{number}/attachments/{field}: multipart files added to the field."""
        typedef = self._type(request)
        name = request.path_params["field"]
        definition = typedef.fields.get(name)
        if definition is None or name in hidden_fields(identity, typedef, self.definitions):
            raise NotFound(f"{typedef.title()} records have no field `{name}`")
        kind = definition.kind
        if not isinstance(kind, AttachmentsKind):
            raise ApiError(422, f"`{name}` is not an attachments field", {name: "is not an attachments field"})
        if not uploads:
            raise ApiError(400, "send the files as multipart/form-data parts with a file name")
        for upload in uploads:
            if len(upload.content) > kind.max_size:
                why = f"{upload.filename} is {len(upload.content) // 1024} KiB; files up to " \
                      f"{kind.max_size // 1024} KiB are accepted"
                raise ApiError(413, f"the file is too large: {why}", {name: why})
        return self._change(request, identity, lambda session, record: session.update(record, {name: uploads}))

    # -- the OpenAPI document -------------------------------------------------------------

    def openapi(self, request: Request, identity: Identity, body: Any) -> Response:
        """GET /openapi.json: the types this identity may read, with their fields and paths."""
        return JSONResponse(openapi_document(self.definitions, identity))


def openapi_document(definitions, identity: Identity) -> dict[str, Any]:
    """An OpenAPI 3.1 document of the API as `identity` sees it: the types it may read,
    without the fields hidden from it, read-only where it may not write."""
    language = identity.language or definitions.languages[0]
    error = {"description": "an error: a sentence and the fields at fault",
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    errors = {str(status): error for status in (400, 401, 403, 404, 409, 413, 422)}
    schemas: dict[str, Any] = {"Error": {"type": "object", "required": ["error"], "properties": {
        "error": {"type": "string"}, "fields": {"type": "object", "additionalProperties": {"type": "string"}}}}}
    paths: dict[str, Any] = {}
    for name, typedef in definitions.types.items():
        if not decide(identity, "read", typedef, definitions=definitions):
            continue
        hidden = hidden_fields(identity, typedef, definitions)
        fixed = readonly_fields(identity, typedef, definitions) | kept_by_rules(definitions, typedef)
        properties: dict[str, Any] = {"number": {"type": "string", "readOnly": True},
                                      "id": {"type": "integer", "readOnly": True},
                                      "version": {"type": "integer", "readOnly": True}}
        for field_name, definition in typedef.fields.items():
            if field_name in hidden or field_name in properties:
                continue
            schema = {**kind_schema(definition.kind), "title": definition.title(language)}
            if definition.system or not definition.kind.writable or field_name in fixed:
                schema["readOnly"] = True
            properties[field_name] = schema
        required = [n for n, f in typedef.fields.items() if f.required and f.default is None and not f.system
                    and n not in hidden and n not in fixed]
        schemas[name] = {"type": "object", "title": typedef.title(language), "properties": properties,
                         **({"required": required} if required else {})}
        one = {"$ref": f"#/components/schemas/{name}"}
        json_body = {"content": {"application/json": {"schema": one}}}
        listing = {"type": "object", "properties": {"total": {"type": "integer"}, "offset": {"type": "integer"},
                                                    "limit": {"type": "integer"},
                                                    "records": {"type": "array", "items": one}}}
        title = typedef.title(language)
        paths[f"/{name}"] = {"get": {"summary": f"{title} records matching a filter", "parameters": [
            {"name": "filter", "in": "query", "schema": {"type": "string"},
             "description": "a filter in JSON or YAML, such as {status: [open, pending]}"},
            {"name": "sort", "in": "query", "schema": {"type": "string"},
             "description": "fields, `-` for descending, such as -priority,id"},
            {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT,
                                                        "default": DEFAULT_LIMIT}}],
            "responses": {"200": {"description": "a page", "content": {"application/json": {"schema": listing}}},
                          **errors}}}
        number = [{"name": "number", "in": "path", "required": True, "schema": {"type": "string"},
                   "description": f"a number such as {typedef.number(1)}, or the id"}]
        paths[f"/{name}/{{number}}"] = {"get": {"summary": f"one {title}", "parameters": number,
                                                "responses": {"200": {"description": "the record", **json_body},
                                                              **errors}}}
        if decide(identity, "create", typedef, definitions=definitions):
            paths[f"/{name}"]["post"] = {"summary": f"create a {title}", "requestBody": json_body,
                                         "responses": {"201": {"description": "created", **json_body}, **errors}}
        if decide(identity, "update", typedef, definitions=definitions):
            paths[f"/{name}/{{number}}"]["patch"] = {
                "summary": f"change fields of a {title}; give `version` to refuse a stale edit",
                "requestBody": json_body, "responses": {"200": {"description": "the record", **json_body}, **errors}}
            for field_name, definition in typedef.fields.items():
                if isinstance(definition.kind, AttachmentsKind) and field_name not in hidden | fixed:
                    files = {"type": "object", "properties": {"file": {"type": "array", "items": {
                        "type": "string", "format": "binary"}}}}
                    paths[f"/{name}/{{number}}/attachments/{field_name}"] = {"post": {
                        "summary": f"add files to {definition.title(language)}", "parameters": number,
                        "requestBody": {"content": {"multipart/form-data": {"schema": files}}},
                        "responses": {"200": {"description": "the record", **json_body}, **errors}}}
        workflow = workflow_of(definitions, name)
        if workflow is not None:
            paths[f"/{name}/{{number}}/transitions"] = {"get": {
                "summary": "the transitions you may fire now", "parameters": number,
                "responses": {"200": {"description": "their names, labels and inputs"}, **errors}}}
            for transition in workflow.transitions.values():
                if transition.roles is not None and not identity.superuser \
                        and not set(transition.roles) & set(identity.roles):
                    continue
                inputs = {"type": "object", "properties": {
                    "version": {"type": "integer"},
                    **{i: {**kind_schema(spec.kind), "title": spec.title(language)}
                       for i, spec in transition.inputs.items()}},
                    **({"required": [i for i, spec in transition.inputs.items() if spec.required]}
                       if any(spec.required for spec in transition.inputs.values()) else {})}
                paths[f"/{name}/{{number}}/transitions/{transition.name}"] = {"post": {
                    "summary": f"{transition.title(language)}: to `{transition.target}` from "
                               f"{', '.join(transition.sources)}", "parameters": number,
                    "requestBody": {"content": {"application/json": {"schema": inputs}}},
                    "responses": {"200": {"description": "the record", **json_body}, **errors}}}
    return {"openapi": "3.1.0",
            "info": {"title": "Deskbase API", "version": "1",
                     "description": "Every request acts as the account of its API key, within its access."},
            "servers": [{"url": PREFIX}],
            "components": {"schemas": schemas,
                           "securitySchemes": {"key": {"type": "http", "scheme": "bearer"}}},
            "security": [{"key": []}], "paths": paths}


# -- plumbing ------------------------------------------------------------------------------

def _filter(text: str | None) -> Any:
    return parse_filter_text(text, "filter")


def _whole(params: Mapping[str, str], name: str, default: int) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or len(text) > 12:
        raise ApiError(400, f"`{name}` is a whole number from 0 to 999,999,999,999, not `{text[:20]}`",
                       {name: "is not a whole number"})
    return int(text)


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "the body is a JSON object of field names and values, such as {\"title\": \"…\"}")
    return body


def _version(values: dict[str, Any]) -> int | None:
    version = values.pop("version", None)
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int):
        raise ApiError(400, "`version` is the whole number the record had when you read it",
                       {"version": "is not a whole number"})
    return version


def _error(status: int, message: str, fields: Mapping[str, str] | None = None,
           headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "fields": dict(fields or {})}, status_code=status, headers=headers)


def error_response(error: Exception) -> JSONResponse:
    """The JSON answer to an error: its status, its sentence and the fields at fault."""
    if isinstance(error, ApiError):
        return _error(error.status, error.message, error.fields)
    if isinstance(error, KeyRefused):
        return _error(401, str(error), headers={"WWW-Authenticate": 'Bearer realm="deskbase"'})
    if isinstance(error, (AccessDenied, TransitionRefused)):
        return _error(403 if isinstance(error, AccessDenied) else 422, error.reason, error.fields)
    if isinstance(error, ValidationError):
        count = len(error.errors)
        return _error(422, f"the {error.label} was not saved: {count} field{'s' if count != 1 else ''} "
                           f"refused", error.errors)
    statuses = ((QueryError, 400), (NotFound, 404), (StaleEdit, 409))
    status = next((code for kind, code in statuses if isinstance(error, kind)), 422)
    return _error(status, str(error))


Handler = Callable[[Request, Identity, Any], Response]


def _endpoint(api: Api, handler: Handler, reads: str = "json") -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler: authenticate, read the body (JSON, or the files of a multipart form),
    run it in a thread, and turn every error into JSON — never a traceback."""
    async def endpoint(request: Request) -> Response:
        try:
            identity = await run_in_threadpool(api.identity, request)
            body = await (_uploads(request) if reads == "files" else _json_body(request))
            return await run_in_threadpool(handler, request, identity, body)
        except DeskbaseError as error:
            return error_response(error)
        except BodyTooLarge:                 # found by the application's BodyLimit while reading
            return _error(413, TOO_LARGE)
        except ConflictError:            # a write that kept meeting others', every retry spent
            return _error(503, "many clients are changing the same records at this moment; nothing was saved, "
                               "try again", headers={"Retry-After": "1"})
        except Exception:
            log.exception("API request failed: %s %s", request.method, request.url.path)
            return _error(500, "the server could not answer this request; the error was logged")
    return endpoint


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise ApiError(400, "the body nests too deeply") from None


async def _uploads(request: Request) -> list[Upload]:
    try:
        form = await request.form()
    except Exception as error:      # a malformed multipart body (Starlette's MultiPartException)
        raise ApiError(400, f"the body is not a readable multipart form: {error}") from None
    uploads = []
    for _, item in form.multi_items():
        if isinstance(item, UploadFile) and item.filename:
            uploads.append(Upload(item.filename, await item.read(), item.content_type or "application/octet-stream"))
    return uploads


async def _http_error(request: Request, error: Exception) -> Response:
    status = getattr(error, "status_code", 404)
    message = "there is no such API address; see /api/v1/openapi.json" if status == 404 \
        else f"{request.method} is not allowed here"
    return _error(status, message)


def api_mount(store: Store) -> Mount:
    """The API of a store, to add to the web application's routes."""
    api = Api(store)
    routes = [
        Route("/openapi.json", _endpoint(api, api.openapi), methods=["GET"]),
        Route("/{type}", _endpoint(api, api.list_records), methods=["GET"]),
        Route("/{type}", _endpoint(api, api.create_record), methods=["POST"]),
        Route("/{type}/{number}", _endpoint(api, api.read_record), methods=["GET"]),
        Route("/{type}/{number}", _endpoint(api, api.update_record), methods=["PATCH"]),
        Route("/{type}/{number}/transitions", _endpoint(api, api.list_transitions), methods=["GET"]),
        Route("/{type}/{number}/transitions/{name}", _endpoint(api, api.fire_transition), methods=["POST"]),
        Route("/{type}/{number}/attachments/{field}", _endpoint(api, api.attach, reads="files"), methods=["POST"]),
    ]
    return Mount(PREFIX, app=Starlette(routes=routes, exception_handlers={HTTPException: _http_error}))
