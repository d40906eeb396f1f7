"""supervision.campaign: the annual-report campaign — entities that have not filed go on their grid's patrol list.

Every entity registered before a year began files an annual report for it between 1 January and 30 June of
the next year. From March to June the grid urges those that have not: the campaign gives each of them an
`annual_report` task in its grid (assigned like any task). It is idempotent: a task per entity and year.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, text

from gis import clock
from supervision.audit import SYSTEM, Actor
from supervision.creation import NewTask, create_tasks
from supervision.workflow import Duty

CAMPAIGN_START = (3, 1)
CAMPAIGN_END = (6, 30)
CHUNK = 5000


@dataclass(frozen=True)
class CampaignReport:
    """What a campaign run did."""

    year: int
    unfiled: int
    added: int


def in_campaign_window(day: date) -> bool:
    """Whether `day` falls between 1 March and 30 June (the months the grid urges reports)."""
    return CAMPAIGN_START <= (day.month, day.day) <= CAMPAIGN_END


def run_annual_report_campaign(
    conn: Connection, *, year: int, at: datetime | None = None, actor: Actor = SYSTEM
) -> CampaignReport:
    """Add every open entity that has not filed its report for the year before `year` to its grid's patrol list."""
    moment = at or clock.now()
    rows = conn.execute(
        text(
            """
            SELECT e.uscc, e.grid_code FROM entity e
            JOIN grid g ON g.code = e.grid_code JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'
            WHERE e.status = 'open' AND e.registered_on < make_date(:year, 1, 1)
              AND (e.annual_report_filed_on IS NULL OR e.annual_report_filed_on < make_date(:year, 1, 1))
            ORDER BY e.grid_code, e.uscc
            """
        ),
        {"year": year},
    ).all()
    campaign = f"annual_report:{year}"
    added = 0
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        added += len(
            create_tasks(
                conn,
                [
                    NewTask(
                        Duty.ANNUAL_REPORT,
                        r.grid_code,
                        moment,
                        entity_uscc=r.uscc,
                        campaign=campaign,
                        note=f"annual report for {year - 1} not filed",
                    )
                    for r in chunk
                ],
                actor=actor,
            )
        )
    return CampaignReport(year=year, unfiled=len(rows), added=added)
