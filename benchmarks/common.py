"""benchmarks.common: checked requests, the machine and software description, and the RESULTS.md writer.

A benchmark reports only what succeeded. Every HTTP request goes through `check` (or a client from
`checked_client` / `check_every_response`, whose every answer is checked as it arrives), every load run through
`check_load`, every browser page through `PageRequests`; a non-2xx answer, a failed connection or a failed
request of a load run raises `BenchmarkFailed`. `Recorder.section` writes a section only after its measurement
has returned, so a failed benchmark leaves RESULTS.md as it was and `make bench` exits non-zero.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import httpx

if TYPE_CHECKING:
    from playwright.sync_api import Page
    from playwright.sync_api import Request as BrowserRequest
    from playwright.sync_api import Response as BrowserResponse

    from benchmarks.loadgen import LoadResult

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
_SHOWN_CHARS = 300  # of a failed answer's URL and body in the error message


class BenchmarkFailed(RuntimeError):
    """A request of a benchmark failed: its figures would describe the failure, so none are written."""


def _short(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"


def check(response: httpx.Response) -> httpx.Response:
    """The response when it is a success (2xx); otherwise raise BenchmarkFailed naming the request and answer."""
    if response.is_success:
        return response
    request = response.request
    try:
        body = response.read().decode("utf-8", "replace").strip()
    except httpx.HTTPError:
        body = "(body not readable)"
    raise BenchmarkFailed(
        f"{request.method} {_short(str(request.url))} answered {response.status_code} "
        f"{response.reason_phrase}: {_short(body)}"
    )


def _check_hook(response: httpx.Response) -> None:
    check(response)


ClientT = TypeVar("ClientT", bound=httpx.Client)


def check_every_response(client: ClientT) -> ClientT:
    """The same client, now checking every response it receives (redirects included) with `check`.

    Works for any httpx.Client, FastAPI's TestClient included: no request through it can go unchecked.
    """
    hooks = client.event_hooks
    client.event_hooks = {"request": list(hooks["request"]), "response": [*hooks["response"], _check_hook]}
    return client


def checked_client(**kwargs: Any) -> httpx.Client:
    """An httpx.Client (same arguments) whose every response is checked."""
    return check_every_response(httpx.Client(**kwargs))


def wait_until_up(
    client: httpx.Client,
    path: str,
    *,
    server: subprocess.Popen[Any] | None = None,
    timeout_s: float = 120,
    **request: Any,
) -> httpx.Response:
    """GET `path` until the server answers, and check that answer (a 401 fails at once, it is not retried).

    Only connection errors are retried while the server starts; a server process that exits fails at once.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if server is not None and server.poll() is not None:
            raise BenchmarkFailed(f"the server under test exited with code {server.returncode} before answering")
        try:
            return check(client.get(path, **request))
        except httpx.TransportError as exc:
            if time.monotonic() > deadline:
                raise BenchmarkFailed(f"the server did not answer GET {path} within {timeout_s:.0f} s: {exc}") from exc
        time.sleep(0.5)


def check_load(result: LoadResult, what: str) -> LoadResult:
    """The load run's result when every request succeeded; otherwise BenchmarkFailed with its statuses."""
    if result["errors"] > 0 or result["ok"] != result["sent"]:
        statuses = ", ".join(
            f"{'no answer' if status == '0' else status}: {n:,}" for status, n in sorted(result["statuses"].items())
        )
        raise BenchmarkFailed(
            f"{what}: {result['errors']:,} of {result['sent']:,} requests failed (answers by status: {statuses})"
        )
    return result


class PageRequests:
    """Every response and failed request a browser page saw; attach with `watch` before navigating.

    A non-2xx response is a failure, and so is a request that failed on the network. A request the page aborted
    itself (`net::ERR_ABORTED`: a newer map view replaces an older one, or the page closes) is not.
    """

    def __init__(self) -> None:
        self.responses = 0
        self.failures: list[str] = []

    def watch(self, page: Page) -> Page:
        """Record the page's requests from now on; returns the page."""
        page.on("response", self._on_response)
        page.on("requestfailed", self._on_request_failed)
        return page

    def _on_response(self, response: BrowserResponse) -> None:
        self.responses += 1
        if not 200 <= response.status < 300:
            self.failures.append(f"{response.request.method} {_short(response.url)} answered {response.status}")

    def _on_request_failed(self, request: BrowserRequest) -> None:
        failure = request.failure or "failed"
        if "ERR_ABORTED" not in failure:
            self.failures.append(f"{request.method} {_short(request.url)} failed: {failure}")

    def check(self, what: str) -> None:
        """Raise BenchmarkFailed if any request of the page failed, or if the page made none at all."""
        if self.failures:
            shown = "; ".join(self.failures[:5])
            raise BenchmarkFailed(f"{what}: {len(self.failures)} requests failed, e.g. {shown}")
        if self.responses == 0:
            raise BenchmarkFailed(f"{what}: the page received no response")


def machine() -> str:
    """One line describing this machine."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, Python {platform.python_version()}"


def write_section(
    name: str,
    body: str,
    command: str = "make bench",
    *,
    software: Mapping[str, str],
    path: Path | None = None,
) -> None:
    """Replace (or append) the section `name` of RESULTS.md with fresh figures.

    `software` is `gis.versions.software_versions` of the database measured: PostgreSQL, PostGIS, GEOS, PROJ.
    """
    results = path or RESULTS
    stamp = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M %Z")
    versions = ", ".join(f"{label} {version}" for label, version in software.items()) or "not recorded"
    section = (
        f"## {name}\n\n- date: {stamp}\n- machine: {machine()}\n- software: {versions}\n- command: `{command}`\n\n"
        f"{body.strip()}\n"
    )
    text = (
        results.read_text()
        if results.exists()
        else "# Benchmark results\n\nWritten by `make bench`; each section is replaced when its benchmark runs again.\n"
    )
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section + "\n", text)
    else:
        text = text.rstrip() + "\n\n" + section
    results.write_text(text.rstrip() + "\n")


@dataclass(frozen=True)
class Recorder:
    """Writes each section from its measurement, and only from a measurement that returned."""

    command: str
    software: Mapping[str, str]
    path: Path | None = None
    # Measure only the sections whose name contains this, or one of its |-separated parts (and the demo load they
    # all start from).
    only: str | None = None

    def section(self, name: str, measure: Callable[[], str]) -> str:
        """Run `measure`; when it returns, print its markdown and write it as section `name`.

        When it raises (BenchmarkFailed or anything else) nothing is written: the exception goes on, named.
        """
        wanted = [part.strip().lower() for part in (self.only or "").split("|") if part.strip()]
        if wanted and not any(part in name.lower() for part in wanted) and not name.startswith("Demo load"):
            return ""
        try:
            body = measure()
        except BenchmarkFailed as exc:
            raise BenchmarkFailed(f"{name}: {exc}") from exc
        print(f"\n## {name}\n\n{body}\n", flush=True)
        write_section(name, body, self.command, software=self.software, path=self.path)
        return body
