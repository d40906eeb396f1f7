"""planning.jobs: the scheduled jobs of the planning layer, in the order of the morning, for `gridgov serve`.

05:30 credit classes (the first working day of a month), 06:00 publication of inspection results that are due,
06:30 the grids' workload, 07:00 the morning's assignment of open tasks.
"""

from __future__ import annotations

from planning.credit_service import CREDIT_JOB
from planning.daily_service import MORNING_JOB
from planning.inspection_results import PUBLISH_JOB
from planning.workload_service import WORKLOAD_JOB
from supervision.jobs import DailyJob

PLANNING_JOBS: tuple[DailyJob, ...] = (CREDIT_JOB, PUBLISH_JOB, WORKLOAD_JOB, MORNING_JOB)
