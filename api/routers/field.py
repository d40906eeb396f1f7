"""api.routers.field: the grid worker's phone page (the field end of the seed's app) and the photos of a task.

Mounted without a prefix and without API_DEPENDENCIES: the page at /field signs in like the other pages (a browser
is sent to the login page), and each /v1 route here carries its own credential dependency (`allowed`).
"""

from __future__ import annotations

import pathlib
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel

from api.auth.deps import optional_principal
from api.auth.roles import Principal
from api.deps import CurrentScope, CurrentViewer, DbEngine, ReadConn, actor_of, allowed, server_settings
from api.input_guard import multipart_text_checked
from api.routers.pages import refused_page, sign_in_first
from maps.field_page import FieldUser, render_field
from supervision.clues import MAX_PHOTO_BYTES
from supervision.permissions import MOVE_TARGETS, Capability
from supervision.privacy import shown
from supervision.task_photos import TaskPhoto, add_task_photo, task_photo_file, task_photos

router = APIRouter(tags=["网格员移动端"])
TaskId = Annotated[int, Path(ge=1, le=2**63 - 1, description="任务编号")]
PhotoId = Annotated[int, Path(ge=1, le=2**63 - 1, description="照片编号")]
TaskReader = Annotated[Principal, Depends(allowed(Capability.TASK_READ))]
TaskMover = Annotated[Principal, Depends(allowed(Capability.TASK_TRANSITION))]


class TaskPhotos(BaseModel):
    """一个任务的核查照片，旧的在前。"""

    items: list[TaskPhoto]


def photo_dir(request: Request) -> pathlib.Path:
    """Where photos are stored (under the server's state directory, beside the clue photos)."""
    return server_settings(request).state_dir / "photos"


@router.get("/field", response_class=HTMLResponse, summary="网格员移动端", include_in_schema=False)
def field_page(request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]) -> Response:
    """My tasks by deadline on a small map, recording an inspection with photos and position, reporting a clue."""
    if principal is None:
        return sign_in_first(request)
    if refusal := refused_page(request, principal, Capability.TASK_READ):
        return refusal
    user = FieldUser(
        name=principal.name,
        role=principal.role,
        worker_id=principal.area.worker_id,
        can_inspect=principal.may(Capability.TASK_TRANSITION),
        can_report=principal.may(Capability.CLUE_REPORT),
        move_targets=MOVE_TARGETS.get(principal.role, frozenset()),
    )
    return HTMLResponse(render_field(user), headers={"Cache-Control": "no-cache"})


@router.post(
    "/v1/tasks/{task_id}/photos",
    status_code=201,
    summary="上传任务核查照片",
    dependencies=[Depends(multipart_text_checked)],
)
async def post_task_photo(
    request: Request, task_id: TaskId, file: UploadFile, principal: TaskMover, db: DbEngine
) -> TaskPhoto:
    """JPEG、PNG 或 WebP，单张不超过 8 MB，每个任务至多 9 张；内容须与声明的类型一致；已办结或已撤销的任务不再接收。"""
    data = await file.read(MAX_PHOTO_BYTES + 1)
    with db.begin() as conn:
        return add_task_photo(
            conn,
            task_id,
            data,
            declared_type=file.content_type,
            filename=file.filename,
            actor=actor_of(principal),
            photo_dir=photo_dir(request),
        )


@router.get("/v1/tasks/{task_id}/photos", response_model=TaskPhotos, summary="任务的核查照片")
def get_task_photos(
    task_id: TaskId, _: TaskReader, scope: CurrentScope, viewer: CurrentViewer, conn: ReadConn
) -> TaskPhotos:
    """本账号范围内任务的全部核查照片（说明），旧的在前；原件见 /v1/task-photos/{photo_id}。上传人按权限脱敏。"""
    return TaskPhotos(items=shown(task_photos(conn, task_id, scope), viewer, read_in_scope=True))


@router.get("/v1/task-photos/{photo_id}", summary="下载任务核查照片", response_class=FileResponse)
def get_task_photo(
    request: Request, photo_id: PhotoId, _: TaskReader, scope: CurrentScope, conn: ReadConn
) -> FileResponse:
    """照片原件（其任务须在本账号范围内；校验和核对无误才返回）。"""
    path, content_type = task_photo_file(conn, photo_id, scope, photo_dir(request))
    return FileResponse(path, media_type=content_type, headers={"Cache-Control": "private, max-age=86400"})
