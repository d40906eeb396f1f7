"""benchmarks.loadgen: an open-loop HTTP load generator (a fixed offered rate, latency from the intended start).

Run as its own process so that it does not share the server's interpreter:
    python -m benchmarks.loadgen URL KEY RATE SECONDS CONNECTIONS QUERIES_FILE
Prints one JSON object: sent, ok (2xx answers), errors (every other answer, or none), the count of each status
(0 = no answer), achieved rate and latency percentiles in ms; exits 1 when any request failed. Latency is measured
from the moment each request was due, so a stalled server cannot hide its queue (no coordinated omission).
The client is a few lines of raw asyncio HTTP/1.1 so that it costs far less CPU than the server it measures.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import TypedDict
from urllib.parse import urlencode, urlsplit

import numpy as np


class LoadResult(TypedDict):
    """What one load run measured (the JSON object the command prints)."""

    sent: int
    ok: int
    errors: int
    statuses: dict[str, int]
    achieved_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


async def _connection(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port)


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    """Send one keep-alive HTTP/1.1 request and read the whole response; returns the status code."""
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def run(url: str, key: str, rate: float, seconds: float, connections: int, queries: list[str]) -> LoadResult:
    """Offer `rate` requests/s for `seconds` over `connections` keep-alive connections (raw asyncio streams).

    A hand-written HTTP/1.1 client: general-purpose async clients cost more CPU per request than the server
    under test, and would measure themselves.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = [
        (
            f"GET {parts.path}?{urlencode({'q': q})} HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {key}\r\n"
            "Connection: keep-alive\r\n\r\n"
        ).encode()
        for q in queries
    ]
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await _connection(host, port))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    n = int(rate * seconds)

    async def one(i: int, due: float) -> None:
        reader, writer = await pool.get()
        try:
            status = await _request(reader, writer, requests[i % len(requests)])
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status = 0
            writer.close()
            reader, writer = await _connection(host, port)
        pool.put_nowait((reader, writer))
        statuses[status] = statuses.get(status, 0) + 1
        latencies.append((time.perf_counter() - due) * 1000)

    start = time.perf_counter()
    tasks = []
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not pool.empty():
        _, writer = pool.get_nowait()
        writer.close()
    lat = np.array(latencies)
    ok = sum(count for status, count in statuses.items() if 200 <= status < 300)
    return {
        "sent": n,
        "ok": ok,
        "errors": n - ok,
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
        "achieved_rps": n / elapsed,
        "p50_ms": float(np.percentile(lat, 50)),
        "p90_ms": float(np.percentile(lat, 90)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
    }


def main(argv: list[str]) -> int:
    """Command-line entry."""
    url, key, rate, seconds, connections, queries_file = argv
    queries = Path(queries_file).read_text(encoding="utf-8").splitlines()
    result = asyncio.run(run(url, key, float(rate), float(seconds), int(connections), queries))
    print(json.dumps(result))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
