"""api.input_guard: control characters (NUL first) refused at the edge, before any route or the database sees them.

PostgreSQL text cannot hold NUL, and no path, identifier or query parameter of this API is meant to hold a control
character. `InputGuard` is a pure ASGI middleware that answers 422 `{"error": "invalid_request", …}` (Open311's own
error format under /open311) to a request whose decoded path holds any C0 control character or DEL, or whose decoded
query string holds one other than tab, newline and carriage return (free-text search parameters may carry those).
The request body is read to its end first, so that the keep-alive connection stays usable.

Bodies a route parses whole are checked here too, in one place for every route (issue 17, finding 11): a form
(`application/x-www-form-urlencoded`: the login form, Open311 posts) whose decoded fields hold a C0 control character
other than tab, newline and CR, or a JSON body (`application/json`, `…+json`) one of whose strings or keys holds one
(`\\u0000` and the like; PostgreSQL text cannot hold NUL), is refused the same way. Such a body is read into memory
(up to `BODY_CHECK_LIMIT`; a larger one is passed on unchecked, and the models' own patterns hold) and replayed to
the route. Multipart bodies stream to the routes (a file part is never held in memory here): their text fields
are checked by one dependency, `multipart_text_checked`, on every router that takes multipart (geocode_batch,
clues, field, inspection_directory; Open311 answers `multipart_problem` in its own format), which reads the form
FastAPI already parsed (Starlette keeps it on the request: nothing is parsed twice) and refuses (422) a non-file
field whose name or value holds a C0 control character other than tab, newline and CR, or DEL. CSV files are
checked row by row by the batch geocoder.

`FreeText` and `OneLine` are the annotated string types (and `FREE_TEXT_PATTERN`, `ONE_LINE_PATTERN` the patterns)
the JSON models use, `control_character` the check for hand-parsed forms.
"""

from __future__ import annotations

import json
import re
from typing import Annotated
from urllib.parse import unquote_to_bytes
from xml.sax.saxutils import escape

from fastapi import Request
from pydantic import StringConstraints
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import InvalidRequest

# Free text (a description, a note): tab, newline and carriage return are text; every other C0 character and DEL
# are not.
FREE_TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
# A name, an identifier: one line, no control character at all.
ONE_LINE_PATTERN = r"^[^\x00-\x1f\x7f]*$"
FreeText = Annotated[str, StringConstraints(pattern=FREE_TEXT_PATTERN)]
OneLine = Annotated[str, StringConstraints(pattern=ONE_LINE_PATTERN)]

_FREE_TEXT_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PATH_FORBIDDEN = frozenset(range(0x20)) | {0x7F}
_QUERY_FORBIDDEN = _PATH_FORBIDDEN - {0x09, 0x0A, 0x0D}
_OPEN311_PREFIX = "/open311/"
# Bodies up to this size are checked for control characters before the route reads them.
BODY_CHECK_LIMIT = 16 * 1024 * 1024


def control_character(value: str | None) -> str | None:
    """The first control character of free text that no text field may hold (tab, newline and CR may), or None."""
    if not value:
        return None
    found = _FREE_TEXT_FORBIDDEN.search(value)
    return found.group() if found else None


def form_problem(form: FormData) -> str | None:
    """Why a parsed form is refused (a text field's name or value holds a control character), or None; file parts
    are not read (their file names are checked by the routes that store them)."""
    for name, value in form.multi_items():
        found = control_character(name)
        if found is not None:
            return f"a form field name holds a control character ({describe(found)})"
        if isinstance(value, UploadFile):
            continue
        found = control_character(value)
        if found is not None:
            return f"{name[:100]} holds a control character ({describe(found)})"
    return None


async def multipart_problem(request: Request) -> str | None:
    """Why a multipart request's text fields are refused, or None (also for a body that is not multipart)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        return None
    # The form FastAPI parsed for the route's File()/Form() parameters (or the route's own request.form(), whose
    # limits then apply): Starlette returns the one it keeps.
    return form_problem(await request.form())


async def multipart_text_checked(request: Request) -> None:
    """The dependency of routers taking multipart: 422 for a text field holding a control character."""
    problem = await multipart_problem(request)
    if problem is not None:
        raise InvalidRequest(problem)


def describe(character: str) -> str:
    """A control character as a message names it: NUL, or U+001B."""
    return "NUL" if character == "\x00" else f"U+{ord(character):04X}"


def _problem(scope: Scope) -> str | None:
    """Why the path or the query string is refused, or None."""
    for ch in scope.get("path", ""):
        if ord(ch) in _PATH_FORBIDDEN:
            return f"the path holds a control character ({describe(ch)})"
    query: bytes = scope.get("query_string", b"")
    if query:
        decoded = unquote_to_bytes(query.replace(b"+", b" "))
        for byte in decoded:
            if byte in _QUERY_FORBIDDEN:
                return f"the query string holds a control character ({describe(chr(byte))})"
    return None


def _body_kind(scope: Scope) -> str | None:
    """ "form" or "json" for a body this guard checks, else None."""
    if scope.get("method", "GET").upper() in ("GET", "HEAD", "OPTIONS"):
        return None
    media_type = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        return "form"
    if media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json")):
        return "json"
    return None


def _form_problem(body: bytes) -> str | None:
    """Why a urlencoded form is refused (a field or its name holds a control character), or None."""
    for pair in body.split(b"&"):
        name, _, value = pair.partition(b"=")
        decoded_name = unquote_to_bytes(name.replace(b"+", b" "))
        for byte in decoded_name:
            if byte in _QUERY_FORBIDDEN:
                return f"a form field name holds a control character ({describe(chr(byte))})"
        for byte in unquote_to_bytes(value.replace(b"+", b" ")):
            if byte in _QUERY_FORBIDDEN:
                label = decoded_name.decode("utf-8", "replace")[:100]
                return f"{label} holds a control character ({describe(chr(byte))})"
    return None


def _json_problem(body: bytes) -> str | None:
    """Why a JSON body is refused (a string or key holds a control character), or None (also for broken JSON)."""
    # A control character can only be in a JSON string as a \u escape (raw ones make the JSON invalid), or DEL raw.
    if b"\\u" not in body and b"\x7f" not in body:
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None  # the route answers broken JSON itself
    found = _json_control(document, "")
    if found is None:
        return None
    where, character = found
    return f"the JSON body holds a control character ({describe(character)}) at {where or '/'}"


def _json_control(value: object, where: str) -> tuple[str, str] | None:
    """The first (JSON pointer, character) of a string or key holding a forbidden control character."""
    stack: list[tuple[object, str]] = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            character = control_character(item)
            if character is not None:
                return at, character
        elif isinstance(item, dict):
            for key, inner in item.items():
                character = control_character(key)
                if character is not None:
                    return at, character
                stack.append((inner, f"{at}/{key}"))
        elif isinstance(item, list):
            stack.extend((inner, f"{at}/{i}") for i, inner in enumerate(item))
    return None


async def _buffer(receive: Receive, limit: int) -> tuple[list[Message], bytes | None]:
    """The body's messages as received, and the whole body (None when it is over `limit` and was not all read)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return messages, b"".join(chunks)
        if size > limit:
            return messages, None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that gives the buffered messages first, then the connection's own."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


class InputGuard:
    """Refuse requests whose path, query string or form/JSON body holds a control character (see the docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = _problem(scope)
        if problem is None:
            kind = _body_kind(scope)
            if kind is None:
                await self.app(scope, receive, send)
                return
            messages, body = await _buffer(receive, BODY_CHECK_LIMIT)
            if body is not None:
                problem = _form_problem(body) if kind == "form" else _json_problem(body)
            if problem is None:
                await self.app(scope, _replay(messages, receive), send)
                return
        else:
            await drain(receive)
        status, media_type, body = _refusal(scope.get("path", ""), problem)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", media_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def drain(receive: Receive) -> None:
    """Read the request body to its end, so that the connection can carry the next request."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


def _refusal(path: str, problem: str) -> tuple[int, str, bytes]:
    """The status, content type and body of a refusal: the project's error body, or Open311's under /open311."""
    if path.startswith(_OPEN311_PREFIX):
        # The specification answers a bad request 400 as a list of errors, in the format the path asks for.
        if path.endswith(".xml"):
            xml = (
                '<?xml version="1.0" encoding="utf-8"?>\n<errors><error><code>400</code>'
                f"<description>{escape(problem)}</description></error></errors>"
            )
            return 400, "text/xml; charset=utf-8", xml.encode()
        return 400, "application/json", json.dumps([{"code": 400, "description": problem}]).encode()
    body = json.dumps({"error": "invalid_request", "detail": problem}, ensure_ascii=False)
    return 422, "application/json", body.encode()
