"""api.routers.geocode_batch: batch geocoding as a job — upload a CSV, poll its progress, download the result.

A job always ends in a state its owner can read: `done`, or `failed` with a message that names no server path and
holds no control character, whatever went wrong (the job thread logs the cause through `logging`, as JSON lines
under `gridgov serve`). A header with a control character is refused at once (422). A job the server was running
when it stopped answers `failed` ("interrupted: …") when next read (address_library.batch_jobs's run lock).
"""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel
from sqlalchemy import Engine

from address_library import batch_jobs
from address_library.batch import BatchInputError, geocode_csv, header_problem
from address_library.batch_jobs import StoredJob
from api.auth.roles import Principal
from api.deps import CurrentPrincipal, allowed, server_settings
from api.errors import InvalidRequest
from api.files import batch_folder, retention
from api.input_guard import OneLine, multipart_text_checked
from api.routers.geocode import geocoder
from gis import clock
from gis.settings import plain_libpq_url
from supervision.permissions import Capability

router = APIRouter(
    tags=["地理编码"], dependencies=[Depends(allowed(Capability.GEOCODE)), Depends(multipart_text_checked)]
)
log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 300 * 1024 * 1024  # 1.35 M registrations as CSV are about 100 MB


class BatchJobStatus(BaseModel):
    """批量地理编码任务的状态与进度（expires_at 之后文件被清除，任务返回 410）。"""

    id: str
    status: str
    rows_done: int
    rows_total: int | None
    error: str | None
    by_status: dict[str, int]
    result_url: str | None
    expires_at: str


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _run(job_id: str, column: str, folder: Path, engine: Engine, request: Request, lock: psycopg.Connection) -> None:
    """The job thread: geocode, then record done or failed — never leave the job running (the lock goes at the end)."""
    try:
        _geocode(job_id, column, folder, engine, request)
    except Exception as exc:  # a job must end in a state the client can read, naming no server path
        if isinstance(exc, BatchInputError):
            error = str(exc)
            log.info("batch job %s refused its input: %s", job_id, batch_jobs.printable(error))
        else:
            error = f"internal error: {type(exc).__name__}"
            log.exception("batch job %s failed", job_id)
        try:
            with engine.begin() as conn:
                batch_jobs.finish_job(conn, job_id, status="failed", now=clock.now(), error=error)
        except Exception:  # the lock goes below: the job is then read as interrupted, not running forever
            log.exception("batch job %s: its failure could not be recorded", job_id)
    finally:
        lock.close()


def _geocode(job_id: str, column: str, folder: Path, engine: Engine, request: Request) -> None:
    source, result = batch_jobs.input_path(folder, job_id), batch_jobs.output_path(folder, job_id)
    with source.open(encoding="utf-8-sig", errors="replace") as f:
        rows_total = max(sum(1 for _ in f) - 1, 0)
    with engine.begin() as conn:
        batch_jobs.mark_running(conn, job_id, rows_total)

    def progress(rows: int) -> None:
        with engine.begin() as conn:
            batch_jobs.add_progress(conn, job_id, rows)

    report = geocode_csv(geocoder(request), source, result, column=column, workers=1, progress=progress)
    with engine.begin() as conn:
        batch_jobs.finish_job(conn, job_id, status="done", now=clock.now(), by_status=report.by_status)


def _status(job: StoredJob) -> BatchJobStatus:
    return BatchJobStatus(
        id=job.id,
        status=job.status,
        rows_done=job.rows_done,
        rows_total=job.rows_total,
        error=job.error,
        by_status=job.by_status,
        result_url=f"/v1/geocode/batch/{job.id}/result" if job.status == "done" else None,
        expires_at=job.expires_at.isoformat(),
    )


def _owned(request: Request, principal: Principal, job_id: str) -> StoredJob:
    """The principal's own job (by owner reference, never a display name); 404 otherwise, 410 once expired."""
    with _engine(request).begin() as conn:
        job = batch_jobs.get_job(conn, job_id)
        if job is None or job.owner != principal.owner:
            raise HTTPException(status_code=404, detail=f"no batch job {job_id}")
        job = batch_jobs.reap_interrupted(conn, job, clock.now())
    if job.expired(clock.now()):
        raise HTTPException(
            status_code=410,
            detail=f"batch job {job_id} expired on {job.expires_at.isoformat()}: its files are removed; upload again",
        )
    return job


@router.post(
    "/geocode/batch", response_model=BatchJobStatus, status_code=202, summary="提交批量地理编码任务（上传 CSV）"
)
async def submit(
    request: Request,
    principal: CurrentPrincipal,
    file: Annotated[UploadFile, File(description="UTF-8 CSV，首行为表头")],
    column: Annotated[OneLine, Form(description="地址所在列名", max_length=200)] = "address",
) -> BatchJobStatus:
    """上传 CSV 后立即返回任务编号；任务在后台逐行地理编码，结果保留每一行及其原顺序。

    只有提交者本人（同一账号或同一密钥）能查看任务与结果；文件在保留期（默认 7 天）后清除，之后返回 410。"""
    job_id = uuid.uuid4().hex
    folder = batch_jobs.private_dir(batch_folder(server_settings(request)))
    engine = _engine(request)
    # Held by the job from before its row exists until it ends: a job whose lock is free was interrupted.
    lock = batch_jobs.hold_run_lock(plain_libpq_url(engine.url.render_as_string(hide_password=False)), job_id)
    try:
        await _accept(request, principal, file, column, job_id, folder)
    except BaseException:
        lock.close()
        raise
    thread_args = (job_id, column, folder, engine, request, lock)
    threading.Thread(target=_run, args=thread_args, name=f"batch-{job_id[:8]}", daemon=True).start()
    with engine.connect() as conn:
        job = batch_jobs.get_job(conn, job_id)
    assert job is not None
    return _status(job)


async def _accept(
    request: Request,
    principal: Principal,
    file: UploadFile,
    column: str,
    job_id: str,
    folder: Path,
) -> None:
    """Record the job and store its upload; refuse a file too large (413) or whose header is refused (422)."""
    settings = server_settings(request)
    engine = _engine(request)
    with engine.begin() as conn:
        batch_jobs.create_job(
            conn, job_id=job_id, owner=principal.owner, address_column=column, now=clock.now(),
            retention=retention(settings),
        )  # fmt: skip
    source = batch_jobs.input_path(folder, job_id)
    size = 0
    with batch_jobs.open_private(source) as sink:
        while chunk := await file.read(1 << 20):
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                break
            sink.write(chunk)
    if size > MAX_UPLOAD_BYTES:
        source.unlink(missing_ok=True)
        with engine.begin() as conn:
            batch_jobs.finish_job(conn, job_id, status="failed", now=clock.now(), error="upload too large")
        raise HTTPException(status_code=413, detail=f"upload over {MAX_UPLOAD_BYTES // 2**20} MB")
    problem = header_problem(source)
    if problem is not None:
        source.unlink(missing_ok=True)
        with engine.begin() as conn:
            batch_jobs.finish_job(conn, job_id, status="failed", now=clock.now(), error=problem)
        raise InvalidRequest(problem, field="file")


@router.get("/geocode/batch/{job_id}", response_model=BatchJobStatus, summary="查询批量任务状态与进度")
def job_status(request: Request, principal: CurrentPrincipal, job_id: OneLine) -> BatchJobStatus:
    """任务状态（queued/running/done/failed）、已处理行数与各状态计数；过了保留期返回 410。"""
    return _status(_owned(request, principal, job_id))


@router.get("/geocode/batch/{job_id}/result", summary="下载批量任务结果 CSV", response_class=FileResponse)
def job_result(request: Request, principal: CurrentPrincipal, job_id: OneLine) -> FileResponse:
    """结果 CSV：每一输入行按原顺序保留，并附加 status、level、confidence、网格等列；过了保留期返回 410。"""
    job = _owned(request, principal, job_id)
    if job.status != "done":
        raise HTTPException(status_code=409, detail=f"job {job_id} is {job.status}")
    folder = batch_folder(server_settings(request))
    return FileResponse(
        batch_jobs.output_path(folder, job_id), media_type="text/csv", filename=f"geocoded-{job_id[:8]}.csv"
    )
