"""maps.field_page: the grid worker's phone page (/field) — its configuration block and its rendering."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from gis import clock
from maps.page import DONGGUAN_BOUNDS_LON_LAT, render_page
from supervision.clues import MAX_PHOTO_BYTES
from supervision.routing import default_router
from supervision.task_photos import MAX_PHOTOS_PER_TASK
from supervision.task_states import WORKER_HELD
from supervision.workflow import INSPECTION_TARGETS, Status

TITLE = "网格员移动端"
# The results an inspection can have, in the order the page offers them, with the words a worker reads.
INSPECTION_RESULTS_ZH: dict[Status, str] = {
    Status.INSPECTED_OK: "正常",
    Status.INSPECTED_PROBLEM: "发现问题",
    Status.REINSPECTED: "复查完成",
}
# The other moves the page offers as buttons, as the worker says them; a target the role may not make is left out.
MOVE_ACTIONS_ZH: dict[Status, str] = {
    Status.ASSIGNED: "领取任务",
    Status.NOTICE_ISSUED: "下达整改通知",
    Status.ESCALATED_COMMUNITY: "上报村（社区）",
    Status.CLOSED: "办结",
}


@dataclass(frozen=True)
class FieldUser:
    """Who opens the page and what they may do there (from their credential, decided by the caller)."""

    name: str
    role: str
    worker_id: int | None
    can_inspect: bool
    can_report: bool
    move_targets: Collection[Status] | None


def field_config(user: FieldUser) -> dict[str, Any]:
    """What the page's modules need: the user's abilities, the inspection results and other moves they may make, the
    states of field work (the list), the industries a clue may name, the photo limits, the platform's time (deadline badges) and the city's extent."""
    targets = user.move_targets
    results = [
        {"value": status.value, "label": label}
        for status, label in INSPECTION_RESULTS_ZH.items()
        if status in INSPECTION_TARGETS and (targets is None or status in targets)
    ]
    moves = [
        {"value": status.value, "label": label}
        for status, label in MOVE_ACTIONS_ZH.items()
        if user.can_inspect
        and (targets is None or status in targets)
        and (status is not Status.ASSIGNED or user.worker_id is not None)
    ]
    return {
        "user": user.name,
        "role": user.role,
        "workerId": user.worker_id,
        "canInspect": user.can_inspect and bool(results),
        "canReport": user.can_report,
        "results": results,
        "moves": moves,
        "fieldStatuses": [status.value for status in Status if status.value in WORKER_HELD],
        "industries": list(default_router().clue_industries()),
        "maxPhotoBytes": MAX_PHOTO_BYTES,
        "maxPhotos": MAX_PHOTOS_PER_TASK,
        "now": clock.now().isoformat(),
        "bounds": list(DONGGUAN_BOUNDS_LON_LAT),
    }


def render_field(user: FieldUser) -> str:
    """The phone page with its configuration embedded (outline-only map: it reaches nothing beyond this server)."""
    return render_page("field.html", title=TITLE, config=field_config(user), user=user.name)
