"""planning.routing.vroom_format: VROOM's JSON problem in, VROOM's JSON solution out, over our own solver.

What is read (https://github.com/VROOM-Project/vroom/blob/master/docs/API.md): `jobs` (id, location [lon, lat] or
location_index, service, time_windows, skills, priority, description), `vehicles` (id, start/end or their _index,
time_window, skills, max_travel_time, profile "car", description) and `matrices` {"car": {durations, distances?}}
(then every place is a location_index). Our extension: `options` {max_seconds (≤ 30, default 2), allow_unassigned}.

Amounts: a job's `delivery` and `pickup` and a vehicle's `capacity` (single- or multi-dimensional arrays of the same
size; a missing one is zero, a vehicle without capacity carries anything); the answer then carries VROOM's `delivery`
and `pickup` per route and in the summary, and each step's `load`.

What is refused, explicitly (422, reason `unsupported`): shipments (and their `amount`), breaks, setup times,
per-vehicle costs, speed factors, max_tasks, initial routes (steps), other profiles than "car" and any key VROOM does
not define. A refusal says which key, in Chinese.

The answer is VROOM's solution (`code`, `summary`, `unassigned`, `routes` with `steps`), times in seconds, the cost the
total travel time (VROOM's default), computing times in milliseconds. Unassigned jobs carry our reason code
(`reason`, see planning.routing.vrp) and its Chinese `description`. Whether an unassigned job is an error is the
caller's decision (the API answers 422 unless `options.allow_unassigned`, as VROOM itself returns what it could).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from planning.errors import InvalidPlan
from planning.routing.vrp import DEFAULT_SECONDS, HORIZON, MAX_SECONDS, Job, Problem, Solution, Vehicle

MAX_JOBS = 2000
MAX_VEHICLES = 200
MAX_PRIORITY = 100
LonLat = tuple[float, float]
IntArray = NDArray[np.int64]

_TOP_KEYS = {"jobs", "vehicles", "matrices", "options", "description"}
_JOB_KEYS = {
    "id",
    "location",
    "location_index",
    "service",
    "time_windows",
    "skills",
    "priority",
    "description",
    "delivery",
    "pickup",
}
_VEHICLE_KEYS = {
    "id",
    "start",
    "start_index",
    "end",
    "end_index",
    "time_window",
    "skills",
    "max_travel_time",
    "profile",
    "description",
    "capacity",
}
_OPTION_KEYS = {"max_seconds", "allow_unassigned"}
# VROOM features we know and do not serve, with what to say.
_UNSUPPORTED = {
    "shipments": "暂不支持 shipments（取送货对）",
    "amount": "暂不支持 shipments 的货量（amount）",
    "breaks": "暂不支持休息时段（breaks）",
    "setup": "暂不支持准备时间（setup）",
    "costs": "暂不支持车辆费用（costs）",
    "speed_factor": "暂不支持速度系数（speed_factor）",
    "max_tasks": "暂不支持任务数上限（max_tasks）",
    "max_distance": "暂不支持里程上限（max_distance）",
    "steps": "暂不支持预设路线（steps）",
}


@dataclass(frozen=True)
class Place:
    """How a job or vehicle named its place: coordinates (lon, lat) or a matrix index."""

    lonlat: LonLat | None
    index: int | None

    def out(self) -> dict[str, Any]:
        """The place as VROOM writes it in a step."""
        if self.lonlat is not None:
            return {"location": [self.lonlat[0], self.lonlat[1]]}
        return {"location_index": self.index}


@dataclass(frozen=True)
class VroomRequest:
    """A read VROOM problem: our jobs and vehicles over matrix indices, and where those came from."""

    jobs: list[Job]
    vehicles: list[Vehicle]
    job_places: dict[int, Place]
    vehicle_places: dict[int, tuple[Place | None, Place | None]]
    descriptions: dict[tuple[str, int], str]
    points: list[LonLat]
    durations: IntArray | None
    distances: IntArray | None
    max_seconds: float
    allow_unassigned: bool

    def problem(
        self,
        durations: IntArray | None = None,
        distances: IntArray | None = None,
    ) -> Problem:
        """The problem over the request's own matrices, or over the given ones (for its `points`)."""
        matrix = self.durations if durations is None else durations
        if matrix is None:
            raise ValueError("a request without matrices needs the travel times of its points")
        return Problem(matrix, self.jobs, self.vehicles, self.distances if durations is None else distances)


def _refuse(detail: str, reason: str = "invalid_problem") -> InvalidPlan:
    """The 422 of a problem we cannot take."""
    return InvalidPlan(detail, reason=reason)


def _keys(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    """Refuse a key VROOM has and we do not serve, or one VROOM does not know."""
    for key in obj:
        if key in _UNSUPPORTED:
            raise _refuse(f"{where}：{_UNSUPPORTED[key]}", "unsupported")
        if key not in allowed:
            raise _refuse(f"{where}：不认识的字段 {key}", "unsupported")


def _int(value: Any, where: str, *, low: int = 0, high: int = HORIZON) -> int:
    """A whole number within [low, high], or 422."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _refuse(f"{where} 须为 {low} 到 {high} 之间的整数")
    return value


def _window(value: Any, where: str) -> tuple[int, int]:
    """[start, end] seconds with start ≤ end, or 422."""
    if not isinstance(value, list) or len(value) != 2:
        raise _refuse(f"{where} 须为 [开始, 结束]")
    start, end = _int(value[0], where), _int(value[1], where)
    if start > end:
        raise _refuse(f"{where} 的开始晚于结束")
    return start, end


def _skills(value: Any, where: str) -> frozenset[int]:
    """A list of non-negative integers, or 422."""
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise _refuse(f"{where}.skills 须为整数列表")
    return frozenset(_int(s, f"{where}.skills") for s in value)


def _lonlat(value: Any, where: str) -> LonLat:
    """[lon, lat] in degrees, or 422."""
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        or not all(math.isfinite(float(v)) for v in value)
        or not -180 <= value[0] <= 180
        or not -90 <= value[1] <= 90
    ):
        raise _refuse(f"{where} 须为 [经度, 纬度]")
    return float(value[0]), float(value[1])


def _matrix(value: Any, where: str) -> IntArray:
    """A square matrix of non-negative integers, or 422."""
    if not isinstance(value, list) or not value or not all(isinstance(r, list) and len(r) == len(value) for r in value):
        raise _refuse(f"{where} 须为方阵")
    if len(value) > MAX_JOBS + 2 * MAX_VEHICLES:
        raise _refuse(f"{where} 过大（最多 {MAX_JOBS + 2 * MAX_VEHICLES} 行）")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise _refuse(f"{where} 须全为整数") from None
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr != np.round(arr)) or np.any(arr > HORIZON):
        raise _refuse(f"{where} 须全为非负整数")
    return arr.astype(np.int64)


class _Places:
    """Collects the coordinates a request names (each distinct point once) or checks its matrix indices."""

    def __init__(self, size: int | None) -> None:
        self.size = size
        self.points: list[LonLat] = []
        self._index: dict[LonLat, int] = {}

    def read(self, obj: dict[str, Any], key: str, where: str, *, required: bool) -> tuple[Place | None, int | None]:
        """The place named by obj[key] or obj[key_index], and its matrix index."""
        index_key = f"{key}_index"
        if self.size is not None:
            if index_key not in obj:
                if required or key in obj:
                    raise _refuse(f"{where}：给出 matrices 时须用 {index_key}")
                return None, None
            index = _int(obj[index_key], f"{where}.{index_key}", high=self.size - 1)
            return Place(None, index), index
        if index_key in obj:
            raise _refuse(f"{where}：未给出 matrices 时不能用 {index_key}，请给出经纬度 {key}")
        if key not in obj:
            if required:
                raise _refuse(f"{where} 缺少 {key}")
            return None, None
        point = _lonlat(obj[key], f"{where}.{key}")
        if point not in self._index:
            self._index[point] = len(self.points)
            self.points.append(point)
        return Place(point, None), self._index[point]


def read_problem(payload: Any) -> VroomRequest:
    """A VROOM JSON problem as our jobs and vehicles, or InvalidPlan (422) saying what is wrong, in Chinese."""
    if not isinstance(payload, dict):
        raise _refuse("问题须为 JSON 对象")
    _keys(payload, _TOP_KEYS, "问题")
    jobs_in = _list(payload.get("jobs"), "jobs", MAX_JOBS, "个")
    vehicles_in = _list(payload.get("vehicles"), "vehicles", MAX_VEHICLES, "辆")
    durations, distances = _matrices(payload.get("matrices"))
    places = _Places(None if durations is None else len(durations))
    descriptions: dict[tuple[str, int], str] = {}
    jobs: list[Job] = []
    job_places: dict[int, Place] = {}
    for n, raw in enumerate(jobs_in):
        job, place = _job(raw, f"jobs[{n}]", places, descriptions)
        if job.id in job_places:
            raise _refuse(f"jobs[{n}].id 重复：{job.id}")
        job_places[job.id] = place
        jobs.append(job)
    vehicles: list[Vehicle] = []
    vehicle_places: dict[int, tuple[Place | None, Place | None]] = {}
    for n, raw in enumerate(vehicles_in):
        vehicle, ends = _vehicle(raw, f"vehicles[{n}]", places, descriptions)
        if vehicle.id in vehicle_places:
            raise _refuse(f"vehicles[{n}].id 重复：{vehicle.id}")
        vehicle_places[vehicle.id] = ends
        vehicles.append(vehicle)
    sizes = {len(a) for j in jobs for a in (j.delivery, j.pickup) if a} | {
        len(v.capacity) for v in vehicles if v.capacity
    }
    if len(sizes) > 1:
        raise _refuse(f"delivery、pickup 与 capacity 须有相同的维数（现有 {sorted(sizes)} 维）")
    max_seconds, allow = _options(payload.get("options", {}))
    return VroomRequest(
        jobs=jobs,
        vehicles=vehicles,
        job_places=job_places,
        vehicle_places=vehicle_places,
        descriptions=descriptions,
        points=places.points,
        durations=durations,
        distances=distances,
        max_seconds=max_seconds,
        allow_unassigned=allow,
    )


def _list(value: Any, name: str, most: int, unit: str) -> list[Any]:
    """A non-empty list of at most `most` entries, or 422."""
    if not isinstance(value, list) or not value:
        raise _refuse(f"{name} 须为非空列表")
    if len(value) > most:
        raise _refuse(f"{name} 最多 {most} {unit}", "too_large")
    return value


def _matrices(matrices: Any) -> tuple[IntArray | None, IntArray | None]:
    """The request's car durations and distances (None when it gives none)."""
    if matrices is None:
        return None, None
    if not isinstance(matrices, dict) or set(matrices) != {"car"} or not isinstance(matrices["car"], dict):
        raise _refuse('matrices 只支持 car 一种出行方式：{"car": {"durations": …}}', "unsupported")
    car = matrices["car"]
    _keys(car, {"durations", "distances"}, "matrices.car")
    if "durations" not in car:
        raise _refuse("matrices.car 须有 durations")
    durations = _matrix(car["durations"], "matrices.car.durations")
    distances = None
    if "distances" in car:
        distances = _matrix(car["distances"], "matrices.car.distances")
        if distances.shape != durations.shape:
            raise _refuse("matrices.car.distances 须与 durations 同样大小")
    return durations, distances


def _job(raw: Any, where: str, places: _Places, descriptions: dict[tuple[str, int], str]) -> tuple[Job, Place]:
    """One job of the request, and how it named its place."""
    if not isinstance(raw, dict):
        raise _refuse(f"{where} 须为对象")
    _keys(raw, _JOB_KEYS, where)
    job_id = _int(raw.get("id"), f"{where}.id", high=2**53)
    place, index = places.read(raw, "location", where, required=True)
    assert place is not None  # required
    windows_in = raw.get("time_windows", [[0, HORIZON]])
    if not isinstance(windows_in, list) or not windows_in:
        raise _refuse(f"{where}.time_windows 须为非空列表")
    if isinstance(raw.get("description"), str):
        descriptions[("job", job_id)] = raw["description"]
    job = Job(
        id=job_id,
        location=index,
        service_s=_int(raw.get("service", 0), f"{where}.service"),
        windows=tuple(sorted(_window(w, f"{where}.time_windows") for w in windows_in)),
        skills=_skills(raw.get("skills"), where),
        priority=_int(raw.get("priority", 0), f"{where}.priority", high=MAX_PRIORITY),
        delivery=_amounts(raw.get("delivery"), f"{where}.delivery"),
        pickup=_amounts(raw.get("pickup"), f"{where}.pickup"),
    )
    return job, place


def _amounts(value: Any, where: str) -> tuple[int, ...]:
    """A multidimensional amount (a list of non-negative integers), or 422."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _refuse(f"{where} 须为非负整数列表")
    return tuple(_int(v, f"{where}[{k}]", high=2**31) for k, v in enumerate(value))


def _vehicle(
    raw: Any, where: str, places: _Places, descriptions: dict[tuple[str, int], str]
) -> tuple[Vehicle, tuple[Place | None, Place | None]]:
    """One vehicle of the request, and how it named its start and end."""
    if not isinstance(raw, dict):
        raise _refuse(f"{where} 须为对象")
    _keys(raw, _VEHICLE_KEYS, where)
    if raw.get("profile", "car") != "car":
        raise _refuse(f"{where}.profile 只支持 car", "unsupported")
    vehicle_id = _int(raw.get("id"), f"{where}.id", high=2**53)
    start, start_index = places.read(raw, "start", where, required=False)
    end, end_index = places.read(raw, "end", where, required=False)
    if start is None and end is None:
        raise _refuse(f"{where} 须有起点或终点")
    max_travel = raw.get("max_travel_time")
    if isinstance(raw.get("description"), str):
        descriptions[("vehicle", vehicle_id)] = raw["description"]
    vehicle = Vehicle(
        id=vehicle_id,
        start=start_index,
        end=end_index,
        window=_window(raw.get("time_window", [0, HORIZON]), f"{where}.time_window"),
        max_travel_s=None if max_travel is None else _int(max_travel, f"{where}.max_travel_time"),
        skills=_skills(raw.get("skills"), where),
        capacity=_amounts(raw.get("capacity"), f"{where}.capacity"),
    )
    return vehicle, (start, end)


def _options(options: Any) -> tuple[float, bool]:
    """Our extension: the seconds the solver may take, and whether a partial answer is acceptable."""
    if not isinstance(options, dict):
        raise _refuse("options 须为对象")
    _keys(options, _OPTION_KEYS, "options")
    max_seconds = options.get("max_seconds", DEFAULT_SECONDS)
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, int | float) or not 0 < max_seconds <= MAX_SECONDS:
        raise _refuse(f"options.max_seconds 须在 0 到 {MAX_SECONDS:g} 秒之间")
    allow = options.get("allow_unassigned", False)
    if not isinstance(allow, bool):
        raise _refuse("options.allow_unassigned 须为 true 或 false")
    return float(max_seconds), allow


def write_solution(
    request: VroomRequest, solution: Solution, *, with_distance: bool, routing_s: float = 0.0
) -> dict[str, Any]:
    """VROOM's solution JSON for our solution of the request (distances when the request has or we computed them)."""
    priority = {j.id: j.priority for j in request.jobs}
    by_id = {j.id: j for j in request.jobs}
    dims = max((len(a) for j in request.jobs for a in (j.delivery, j.pickup)), default=0)
    routes_out: list[dict[str, Any]] = []
    for route in solution.routes:
        start, end = request.vehicle_places[route.vehicle_id]
        steps: list[dict[str, Any]] = []
        delivered = _sum([_pad(by_id[i].delivery, dims) for i in route.job_ids], dims)
        picked = _sum([_pad(by_id[i].pickup, dims) for i in route.job_ids], dims)
        load = list(delivered)
        for step in route.steps:
            if step.kind == "job" and step.job_id is not None:
                job = by_id[step.job_id]
                load = [
                    x - d + p for x, d, p in zip(load, _pad(job.delivery, dims), _pad(job.pickup, dims), strict=True)
                ]
            if step.kind == "start" and start is None or step.kind == "end" and end is None:
                continue
            out: dict[str, Any] = {"type": step.kind}
            if step.kind == "job":
                assert step.job_id is not None
                out.update(request.job_places[step.job_id].out())
                out["id"] = step.job_id
                out["job"] = step.job_id
                if ("job", step.job_id) in request.descriptions:
                    out["description"] = request.descriptions[("job", step.job_id)]
            else:
                place = start if step.kind == "start" else end
                assert place is not None
                out.update(place.out())
            out.update(
                setup=0,
                service=step.service,
                waiting_time=step.waiting,
                arrival=step.arrival,
                duration=step.travel_s,
                violations=[],
            )
            if with_distance:
                out["distance"] = step.distance_m
            if dims:
                out["load"] = list(load)
            steps.append(out)
        route_out: dict[str, Any] = {
            "vehicle": route.vehicle_id,
            "cost": route.travel_s,
            "setup": 0,
            "service": route.service_s,
            "duration": route.travel_s,
            "waiting_time": route.waiting_s,
            "priority": sum(priority[j] for j in route.job_ids),
            "steps": steps,
            "violations": [],
        }
        if with_distance:
            route_out["distance"] = route.distance_m
        if dims:
            # VROOM still writes `amount`, its older name of the delivered total.
            route_out.update(delivery=delivered, amount=list(delivered), pickup=picked)
        if ("vehicle", route.vehicle_id) in request.descriptions:
            route_out["description"] = request.descriptions[("vehicle", route.vehicle_id)]
        routes_out.append(route_out)
    unassigned_out = []
    for missing in solution.unassigned:
        item: dict[str, Any] = {"id": missing.job_id, "type": "job"}
        item.update(request.job_places[missing.job_id].out())
        item.update(reason=missing.reason, description=missing.detail)
        unassigned_out.append(item)
    summary: dict[str, Any] = {
        "cost": solution.cost,
        "routes": len(routes_out),
        "unassigned": len(unassigned_out),
        "setup": 0,
        "service": sum(r["service"] for r in routes_out),
        "duration": sum(r["duration"] for r in routes_out),
        "waiting_time": sum(r["waiting_time"] for r in routes_out),
        "priority": sum(r["priority"] for r in routes_out),
        "violations": [],
        "computing_times": {
            "loading": round(solution.loading_s * 1000),
            "solving": round(solution.solving_s * 1000),
            "routing": round(routing_s * 1000),
        },
    }
    if with_distance:
        summary["distance"] = sum(r["distance"] for r in routes_out)
    if dims:
        summary["delivery"] = _sum([r["delivery"] for r in routes_out], dims)
        summary["amount"] = list(summary["delivery"])
        summary["pickup"] = _sum([r["pickup"] for r in routes_out], dims)
    return {"code": 0, "summary": summary, "unassigned": unassigned_out, "routes": routes_out}


def _pad(amount: tuple[int, ...], dims: int) -> list[int]:
    """An amount over every dimension (missing ones are zero)."""
    return [*amount, *([0] * (dims - len(amount)))]


def _sum(amounts: list[list[int]], dims: int) -> list[int]:
    """The sum of amounts, per dimension."""
    return [sum(a[k] for a in amounts) for k in range(dims)]
