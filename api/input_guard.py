"""api.input_guard: control characters (NUL first) refused at the edge, before any route or the database sees them.

PostgreSQL text cannot hold NUL, and no path, identifier or query parameter of this API is meant to hold a control
character. `InputGuard` is a pure ASGI middleware that answers 422 `{"error": "invalid_request", …}` (Open311's own
error format under /open311) to a request whose decoded path holds any C0 control character or DEL, or whose decoded
query string holds one other than tab, newline and carriage return (free-text search parameters may carry those).
The request body is read to its end first, so that the keep-alive connection stays usable.

Bodies are the models' business: `FreeText` and `OneLine` are the annotated string types (and `FREE_TEXT_PATTERN`,
`ONE_LINE_PATTERN` the patterns) the JSON models use, `control_character` the check for hand-parsed forms.
"""

from __future__ import annotations

import json
import re
from typing import Annotated
from urllib.parse import unquote_to_bytes
from xml.sax.saxutils import escape

from pydantic import StringConstraints
from starlette.types import ASGIApp, Receive, Scope, Send

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


def control_character(value: str | None) -> str | None:
    """The first control character of free text that no text field may hold (tab, newline and CR may), or None."""
    if not value:
        return None
    found = _FREE_TEXT_FORBIDDEN.search(value)
    return found.group() if found else None


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


class InputGuard:
    """Refuse requests whose path or query string holds a control character (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = _problem(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        await _drain(receive)
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


async def _drain(receive: Receive) -> None:
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
