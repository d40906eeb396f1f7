"""api.routers.geocode_batch: batch geocoding as a job — upload a CSV, poll its progress, download the result."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel

from address_library.batch import BatchInputError, geocode_csv
from api.auth.roles import Principal
from api.deps import CurrentPrincipal, allowed, server_settings
from api.routers.geocode import geocoder
from supervision.permissions import Capability

router = APIRouter(tags=["地理编码"], dependencies=[Depends(allowed(Capability.GEOCODE))])

MAX_UPLOAD_BYTES = 300 * 1024 * 1024  # 1.35 M registrations as CSV are about 100 MB


@dataclass
class BatchJob:
    """One uploaded file being geocoded in the background."""

    id: str
    owner: str
    input_path: Path
    output_path: Path
    column: str
    status: str = "queued"  # queued → running → done | failed
    rows_done: int = 0
    rows_total: int | None = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    by_status: dict[str, int] = field(default_factory=dict)


class BatchJobStatus(BaseModel):
    """批量地理编码任务的状态与进度。"""

    id: str
    status: str
    rows_done: int
    rows_total: int | None
    error: str | None
    by_status: dict[str, int]
    result_url: str | None


def _jobs(request: Request) -> dict[str, BatchJob]:
    jobs: dict[str, BatchJob] | None = getattr(request.app.state, "batch_jobs", None)
    if jobs is None:
        jobs = {}
        request.app.state.batch_jobs = jobs
    return jobs


def _job_dir(request: Request) -> Path:
    folder = server_settings(request).state_dir / "batch"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _run(job: BatchJob, request: Request) -> None:
    job.status = "running"
    try:
        with job.input_path.open(encoding="utf-8-sig", errors="replace") as f:
            job.rows_total = max(sum(1 for _ in f) - 1, 0)
        report = geocode_csv(
            geocoder(request),
            job.input_path,
            job.output_path,
            column=job.column,
            workers=1,
            progress=lambda n: setattr(job, "rows_done", job.rows_done + n),
        )
        job.by_status = report.by_status
        job.status = "done"
    except BatchInputError as exc:
        job.status, job.error = "failed", str(exc)
    except Exception as exc:  # a job must end in a state the client can read
        job.status, job.error = "failed", f"internal error: {type(exc).__name__}"
    finally:
        job.finished_at = time.time()


def _status(job: BatchJob) -> BatchJobStatus:
    return BatchJobStatus(
        id=job.id,
        status=job.status,
        rows_done=job.rows_done,
        rows_total=job.rows_total,
        error=job.error,
        by_status=job.by_status,
        result_url=f"/v1/geocode/batch/{job.id}/result" if job.status == "done" else None,
    )


def _owned(request: Request, principal: Principal, job_id: str) -> BatchJob:
    job = _jobs(request).get(job_id)
    if job is None or job.owner != principal.audit_name:
        raise HTTPException(status_code=404, detail=f"no batch job {job_id}")
    return job


@router.post(
    "/geocode/batch", response_model=BatchJobStatus, status_code=202, summary="提交批量地理编码任务（上传 CSV）"
)
async def submit(
    request: Request,
    principal: CurrentPrincipal,
    file: Annotated[UploadFile, File(description="UTF-8 CSV，首行为表头")],
    column: Annotated[str, Form(description="地址所在列名")] = "address",
) -> BatchJobStatus:
    """上传 CSV 后立即返回任务编号；任务在后台逐行地理编码，结果保留每一行及其原顺序。"""
    job_id = uuid.uuid4().hex
    folder = _job_dir(request)
    input_path, output_path = folder / f"{job_id}.in.csv", folder / f"{job_id}.out.csv"
    size = 0
    with input_path.open("wb") as sink:
        while chunk := await file.read(1 << 20):
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                sink.close()
                input_path.unlink(missing_ok=True)
                raise HTTPException(status_code=413, detail=f"upload over {MAX_UPLOAD_BYTES // 2**20} MB")
            sink.write(chunk)
    job = BatchJob(id=job_id, owner=principal.audit_name, input_path=input_path, output_path=output_path, column=column)
    _jobs(request)[job_id] = job
    threading.Thread(target=_run, args=(job, request), name=f"batch-{job_id[:8]}", daemon=True).start()
    return _status(job)


@router.get("/geocode/batch/{job_id}", response_model=BatchJobStatus, summary="查询批量任务状态与进度")
def job_status(request: Request, principal: CurrentPrincipal, job_id: str) -> BatchJobStatus:
    """任务状态（queued/running/done/failed）、已处理行数与各状态计数。"""
    return _status(_owned(request, principal, job_id))


@router.get("/geocode/batch/{job_id}/result", summary="下载批量任务结果 CSV", response_class=FileResponse)
def job_result(request: Request, principal: CurrentPrincipal, job_id: str) -> FileResponse:
    """结果 CSV：每一输入行按原顺序保留，并附加 status、level、confidence、网格等列。"""
    job = _owned(request, principal, job_id)
    if job.status != "done":
        raise HTTPException(status_code=409, detail=f"job {job_id} is {job.status}")
    return FileResponse(job.output_path, media_type="text/csv", filename=f"geocoded-{job_id[:8]}.csv")
