"""supervision.monitoring: what the supervision pipeline holds right now, for the operators' gauges (/metrics).

The relay's backlog (outbox rows not yet relayed), the open review items, and the intake lag: received → processed
over the most recent processed events, and the age of the oldest event still waiting.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from gis import clock

# The intake lag is read over the most recent processed events.
INTAKE_LAG_WINDOW = 1000


def pipeline_readings(conn: Connection, *, timeout_ms: int) -> dict[str, float]:
    """Relay backlog, open review items, the intake lag (recent and oldest waiting), each query within `timeout_ms`."""
    conn.execute(text(f"SET LOCAL statement_timeout = {int(timeout_ms)}"))
    now = clock.now()
    backlog = conn.execute(text("SELECT count(*) FROM outbox WHERE relayed_at IS NULL")).scalar_one()
    review = conn.execute(text("SELECT count(*) FROM review_queue WHERE resolved_at IS NULL")).scalar_one()
    lag = conn.execute(
        text(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s), percentile_cont(0.95) WITHIN GROUP (ORDER BY s), "
            "max(s) FROM (SELECT EXTRACT(EPOCH FROM processed_at - received_at)::float8 AS s FROM registration_event "
            "WHERE processed_at IS NOT NULL ORDER BY processed_at DESC LIMIT :n) AS recent"
        ),
        {"n": INTAKE_LAG_WINDOW},
    ).one()
    oldest = conn.execute(
        text(
            "SELECT COALESCE(EXTRACT(EPOCH FROM :now - min(received_at))::float8, 0) FROM registration_event "
            "WHERE processed_at IS NULL"
        ),
        {"now": now},
    ).scalar_one()
    out = {"backlog": float(backlog), "review": float(review), "oldest": max(float(oldest), 0.0)}
    for name, value in zip(("lag_p50", "lag_p95", "lag_max"), lag, strict=True):
        if value is not None:
            out[name] = float(value)
    return out
