"""benchmarks.loadgen: an open-loop HTTP load generator (a fixed offered rate, latency from the intended start).

Run as its own process so that it does not share the server's interpreter:
    python -m benchmarks.loadgen URL KEY RATE SECONDS CONNECTIONS QUERIES_FILE
Prints one JSON object: sent, ok, errors, achieved rate and latency percentiles in ms. Latency is measured from
the moment each request was due, so a stalled server cannot hide its queue (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import httpx
import numpy as np


async def run(
    url: str, key: str, rate: float, seconds: float, connections: int, queries: list[str]
) -> dict[str, float]:
    """Offer `rate` requests/s for `seconds` over at most `connections` connections."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    semaphore = asyncio.Semaphore(connections)
    async with httpx.AsyncClient(limits=limits, timeout=10.0, headers={"X-API-Key": key}) as client:
        start = time.perf_counter()
        n = int(rate * seconds)
        tasks = []

        async def one(i: int, due: float) -> None:
            async with semaphore:
                try:
                    response = await client.get(url, params={"q": queries[i % len(queries)]})
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                except httpx.HTTPError:
                    statuses[0] = statuses.get(0, 0) + 1
            latencies.append((time.perf_counter() - due) * 1000)

        for i in range(n):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    lat = np.array(latencies)
    return {
        "sent": n,
        "ok": statuses.get(200, 0),
        "errors": n - statuses.get(200, 0),
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
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
