"""supervision.task_photos: the photos a grid worker takes at an inspection (拍照取证), stored like clue photos.

A photo belongs to one task. It is verified (really a JPEG, PNG or WebP, as declared, within the size and pixel
limits), written once on disk by its checksum (supervision.clues.store_photo, the same store as clue photos) and
described by a `task_photo` row. Who may add, list or fetch a task's photos is the task's scope (Scope.task_sql,
read through task_by_id): a grid worker their grid's tasks, a town leader their town's. A closed or cancelled task
takes no more photos.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, text

from gis import clock
from supervision.audit import Actor
from supervision.clues import MAX_PHOTO_BYTES, clean_filename, photo_path, sniff_image, store_photo
from supervision.errors import InvalidInput, NotFound
from supervision.models import task_photo
from supervision.scope import Scope
from supervision.task_queries import task_by_id
from supervision.workflow import TERMINAL

MAX_PHOTOS_PER_TASK = 9

_PHOTO_COLUMNS = "id, task_id, sha256, size_bytes, content_type, filename, uploaded_by, uploaded_at"


@dataclass(frozen=True)
class TaskPhoto:
    """任务的一张核查照片（按校验和存盘）。"""

    id: int
    task_id: int
    sha256: str
    size_bytes: int
    content_type: str
    filename: str | None
    uploaded_by: str
    uploaded_at: datetime


def add_task_photo(
    conn: Connection,
    task_id: int,
    data: bytes,
    *,
    declared_type: str | None,
    filename: str | None,
    actor: Actor,
    photo_dir: Path,
) -> TaskPhoto:
    """Verify and store one photo of an open task in the actor's scope; the stored photo.

    NotFound or OutOfScope for a task the actor cannot see; InvalidInput for a closed task, an empty, oversized,
    undecodable or mislabelled file, or a task that already holds MAX_PHOTOS_PER_TASK photos.
    """
    task = task_by_id(conn, task_id, actor.scope)
    if task.status in TERMINAL:
        raise InvalidInput(f"task {task_id} is {task.status.value}: it takes no more photos", field="task_id")
    if not data:
        raise InvalidInput("the photo is empty", field="file")
    if len(data) > MAX_PHOTO_BYTES:
        raise InvalidInput(f"the photo is larger than the limit of {MAX_PHOTO_BYTES:,} bytes", field="file")
    content_type = sniff_image(data)
    declared = (declared_type or "").split(";")[0].strip().lower()
    if declared and declared != "application/octet-stream" and declared != content_type:
        raise InvalidInput(f"the file is {content_type}, not {declared} as declared", field="file")
    # Lock the task so that two uploads at once cannot both pass the count below.
    conn.execute(text("SELECT id FROM task WHERE id = :id FOR UPDATE"), {"id": task_id})
    count = conn.execute(text("SELECT count(*) FROM task_photo WHERE task_id = :id"), {"id": task_id}).scalar_one()
    if count >= MAX_PHOTOS_PER_TASK:
        raise InvalidInput(f"a task holds at most {MAX_PHOTOS_PER_TASK} photos", field="file")
    sha256 = hashlib.sha256(data).hexdigest()
    insert = task_photo.insert().values(
        task_id=task_id,
        sha256=sha256,
        size_bytes=len(data),
        content_type=content_type,
        filename=clean_filename(filename),
        uploaded_by=actor.name,
        uploaded_at=clock.now(),
    )
    row = conn.execute(insert.returning(*(task_photo.c[name] for name in _PHOTO_COLUMNS.split(", ")))).mappings().one()
    # On disk only once its row is written: a refused photo leaves no file behind.
    store_photo(photo_dir, sha256, content_type, data)
    return TaskPhoto(**row)


def task_photos(conn: Connection, task_id: int, scope: Scope) -> list[TaskPhoto]:
    """The photos of one task in scope, oldest first (NotFound or OutOfScope for the task)."""
    task_by_id(conn, task_id, scope)
    rows = conn.execute(
        text(f"SELECT {_PHOTO_COLUMNS} FROM task_photo WHERE task_id = :id ORDER BY id"),  # noqa: S608 - fixed column list; values are bound
        {"id": task_id},
    ).mappings()
    return [TaskPhoto(**row) for row in rows]


def task_photo_file(conn: Connection, photo_id: int, scope: Scope, photo_dir: Path) -> tuple[Path, str]:
    """The stored file of one task photo and its content type, after the scope check on its task.

    The file is checked against its checksum: a missing or damaged file is NotFound, never wrong bytes.
    """
    row = conn.execute(
        text("SELECT task_id, sha256, content_type FROM task_photo WHERE id = :id"), {"id": photo_id}
    ).first()
    if row is None:
        raise NotFound(f"no task photo {photo_id}")
    task_by_id(conn, int(row.task_id), scope)
    path = photo_path(photo_dir, row.sha256, row.content_type)
    if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != row.sha256:
        raise NotFound(f"the file of task photo {photo_id} is missing or damaged")
    return path, str(row.content_type)
