/**
 * dashboard/lists/department.js: 部门案件 — for a department officer, the tasks routed to their department
 * (GET /v1/tasks?department=…; the credential's scope confines them anyway), by default those waiting for the
 * department's answer. Opening one shows the task panel, whose moves are the officer's feedback form
 * (supervision/permissions.py MOVE_TARGETS: department feedback, close) with a note.
 */

import { createTaskList } from "./tasks.js";

/** The statuses a department's cases are listed by, waiting for an answer first (named by the vocabulary). */
const DEPARTMENT_STATUSES = ["escalated_department", "department_feedback", "closed"];

/** The 部门案件 pane. `deps`: as createTaskList's; `department`: {code, label}. */
export function createDepartmentList(deps, department) {
  return createTaskList(deps, {
    pane: "department",
    label: `${department.label || department.code}的案件`,
    fixed: { department: department.code },
    statuses: DEPARTMENT_STATUSES.map((value) => ({ value, label: deps.vocab.label("task_statuses", value) })),
    status: "escalated_department",
    followView: false,
  });
}
