"""api.workflow_deps: the caller as the supervision workflow sees them — their task scope and their audit name."""

from __future__ import annotations

from collections.abc import Collection

from api.auth.roles import OutOfScope, Principal, Role
from supervision.tasks import Actor, TaskScope


def task_scope(principal: Principal) -> TaskScope:
    """Which tasks and clues a principal may see and change.

    A grid worker: their grid's; a dispatcher: their community's; a town leader: their town's; a department
    officer: their department's; the command centre and admins: all. API clients send registrations and see no
    tasks.
    """
    role, scope = principal.role, principal.scope
    if role in (Role.ADMIN, Role.COMMAND_CENTRE):
        return TaskScope("city")
    if role == Role.TOWN_LEADER and scope:
        return TaskScope("town", scope)
    if role == Role.DISPATCHER and scope:
        return TaskScope("community", scope)
    if role == Role.GRID_WORKER and scope:
        return TaskScope("worker", scope)
    if role == Role.DEPARTMENT_OFFICER and scope:
        return TaskScope("department", scope)
    return TaskScope("none")


def actor_of(principal: Principal) -> Actor:
    """The principal as the audit trail names them (user:<name> or key:<name>), with role and scope."""
    worker_id = int(principal.scope) if principal.role == Role.GRID_WORKER and principal.scope else None
    prefix = "user" if principal.kind == "user" else "key"
    return Actor(f"{prefix}:{principal.name}", principal.role, task_scope(principal), worker_id)


def require_role(principal: Principal, roles: Collection[str], what: str) -> None:
    """403 unless the principal has one of `roles`."""
    if principal.role not in roles:
        raise OutOfScope(f"a {principal.role} cannot {what}")
