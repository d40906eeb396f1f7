"""Names vulture (`make lint`) cannot see being used, each used from outside Python's call graph.

- Fields of dataclasses and pydantic models: read by serialisation (FastAPI responses, `asdict`, `model_dump`),
  by SQL row mapping or by templates, never by attribute access in Python.
- Tables defined on the one `gis.schema.metadata`: read by Alembic and by SQL text, not by name.
- Attributes set on library objects (psycopg `isolation_level`/`read_only`, numpy `writeable`, folium `default_js`).

Regenerate after removing real dead code: `.venv/bin/vulture --make-whitelist > tools/vulture_whitelist.py`, then
restore this docstring. Anything new that vulture reports is dead until shown otherwise.
"""

# ruff: noqa
address_history  # unused variable (address_library/models.py:66)
address_alias  # unused variable (address_library/models.py:82)
address_alias_teaching  # unused variable (address_library/models.py:120)
_.built_at  # unused attribute (address_library/service.py:91)
changed_at  # unused variable (api/routers/addresses.py:83)
changed_ids  # unused variable (api/routers/addresses.py:129)
added_address  # unused variable (api/routers/registrations.py:195)
access_token  # unused variable (api/routers/auth.py:30)
token_type  # unused variable (api/routers/auth.py:31)
expires_in  # unused variable (api/routers/auth.py:32)
finished_at  # unused variable (api/routers/geocode_batch.py:41)
result_url  # unused variable (api/routers/geocode_batch.py:54)
_.finished_at  # unused attribute (api/routers/geocode_batch.py:91)
tasks_reassigned  # unused variable (api/routers/tasks.py:151)
media_type  # unused variable (api/routers/territory.py:33)
community_kind  # unused variable (api/routers/territory.py:67)
address_count  # unused variable (api/routers/territory.py:71)
worker_count  # unused variable (api/routers/territory.py:74)
version_name  # unused variable (api/routers/territory.py:83)
overdue_tasks  # unused variable (api/routers/territory.py:85)
clues_30d  # unused variable (api/routers/territory.py:86)
clue_kinds  # unused variable (api/routers/vocabulary.py:39)
clue_sources  # unused variable (api/routers/vocabulary.py:40)
clue_statuses  # unused variable (api/routers/vocabulary.py:42)
event_kinds  # unused variable (api/routers/vocabulary.py:43)
achieved_rps  # unused variable (benchmarks/loadgen.py:31)
p50_ms  # unused variable (benchmarks/loadgen.py:32)
p90_ms  # unused variable (benchmarks/loadgen.py:33)
p99_ms  # unused variable (benchmarks/loadgen.py:34)
max_ms  # unused variable (benchmarks/loadgen.py:35)
_.isolation_level  # unused attribute (gis/backup.py:103)
_.read_only  # unused attribute (gis/backup.py:104)
_.writeable  # unused attribute (grids/locate.py:93)
_.writeable  # unused attribute (grids/locate.py:141)
part_weights  # unused variable (grids/partition.py:60)
total_weight  # unused variable (grids/partition.py:61)
unassigned_weight  # unused variable (grids/partition.py:62)
mean_weight  # unused variable (grids/partition.py:63)
max_relative_deviation  # unused variable (grids/partition.py:64)
share_within_25pct  # unused variable (grids/partition.py:65)
share_within_50pct  # unused variable (grids/partition.py:66)
_.default_js  # unused attribute (maps/export.py:61)
_.default_css  # unused attribute (maps/export.py:62)
_.default_js  # unused attribute (maps/export.py:98)
period  # unused variable (maps/heat/schemas.py:59)
previous_period  # unused variable (maps/heat/schemas.py:60)
top_rises  # unused variable (maps/heat/schemas.py:76)
per_1000_residents  # unused variable (maps/heat/schemas.py:97)
small_n  # unused variable (maps/heat/schemas.py:98)
per_1000_residents  # unused variable (maps/heat/schemas.py:129)
small_n  # unused variable (maps/heat/schemas.py:130)
class_  # unused variable (maps/heat/schemas.py:158)
worker_count  # unused variable (maps/layers.py:153)
photo_count  # unused variable (supervision/clues.py:97)
uploaded_by  # unused variable (supervision/clues.py:109)
uploaded_at  # unused variable (supervision/clues.py:110)
uploaded_by  # unused variable (supervision/clues.py:123)
uploaded_at  # unused variable (supervision/clues.py:124)
old_due_at  # unused variable (supervision/deadlines.py:56)
new_due_at  # unused variable (supervision/deadlines.py:57)
clue_photo  # unused variable (supervision/models.py:86)
review_queue  # unused variable (supervision/models.py:100)
registration_event  # unused variable (supervision/models.py:116)
task_warning  # unused variable (supervision/models.py:199)
job_run  # unused variable (supervision/models.py:213)
resolved_by  # unused variable (supervision/review.py:42)
clues_cancelled  # unused variable (supervision/stats.py:87)
overdue_hours  # unused variable (supervision/stats.py:102)
entity_name  # unused variable (supervision/task_queries.py:41)
task_moves  # unused variable (api/routers/kpi.py:40)
task_move_rules  # unused variable (api/routers/kpi.py:41)
clues_closed  # unused variable (supervision/kpi.py:71)
_.handle_data  # unused method (tests/e2e/test_dashboard.py:383): html.parser.HTMLParser calls it
_.handle_endtag  # unused method (tests/e2e/test_dashboard.py:387): html.parser.HTMLParser calls it
planning_batch  # unused variable (planning/models.py): the audit of planning moves, written by SQL text
territory_move  # unused variable (planning/models.py): one row per moved object, written by SQL text
_.num_workers  # unused attribute (planning/redesign/cpsat.py): a CP-SAT solver parameter, read by OR-Tools
_.random_seed  # unused attribute (planning/redesign/cpsat.py): a CP-SAT solver parameter, read by OR-Tools
_.max_deterministic_time  # unused attribute (planning/redesign/cpsat.py): a CP-SAT solver parameter
_.max_time_in_seconds  # unused attribute (planning/redesign/cpsat.py): a CP-SAT solver parameter
kind_zh  # unused variable (api/routers/credit.py): a response field of GET /v1/entities/{uscc}/credit, read by serialisation
selected_count  # unused variable (planning/inspection_plans.py, api/routers/inspections.py): a preview answer's field
unmatched_reason_zh  # unused variable (api/routers/inspections.py): a visit's field, read by serialisation
reason_zh  # unused variable (api/routers/inspections.py): a plan's unmatched summary field, read by serialisation
drawn_at  # unused variable (api/routers/inspections.py, public_inspections.py): a plan's field, read by serialisation
cancelled_at  # unused variable (api/routers/inspections.py, public_inspections.py): a plan's field (serialisation)
drawn_by  # unused variable (api/routers/inspections.py): a plan's field, read by serialisation
cancel_reason  # unused variable (api/routers/inspections.py, public_inspections.py): a plan's field (serialisation)
public_url  # unused variable (api/routers/inspections.py): a plan's field, read by serialisation
loading  # unused variable (api/routers/routes.py): VROOM's computing_times field, read by serialisation
solving  # unused variable (api/routers/routes.py): VROOM's computing_times field, read by serialisation
routing  # unused variable (api/routers/routes.py): VROOM's computing_times field, read by serialisation
waiting_time  # unused variable (api/routers/routes.py): a VROOM summary/route/step field, read by serialisation
violations  # unused variable (api/routers/routes.py): a VROOM summary/route/step field, read by serialisation
computing_times  # unused variable (api/routers/routes.py): VROOM's summary field, read by serialisation
location_index  # unused variable (api/routers/routes.py): a VROOM step/unassigned field, read by serialisation
waiting_min  # unused variable (planning/route_service.py, api/routers/routes.py): a route stop's field (serialisation)
service_min  # unused variable (planning/route_service.py, api/routers/routes.py): a route stop's field (serialisation)
duration_s  # unused variable (planning/route_service.py, api/routers/routes.py): a team day's field (serialisation)
travel_source  # unused variable (planning/route_service.py, api/routers/routes.py): a plan's routes field (serialisation)
solved_at  # unused variable (planning/route_service.py, api/routers/routes.py): a plan's routes field (serialisation)
duration  # unused variable (api/routers/routes.py): a VROOM summary/route/step field, read by serialisation
plan_title  # unused variable (api/routers/inspection_results.py): a visit's field (serialisation)
plan_status  # unused variable (api/routers/inspection_results.py): a visit's field (serialisation)
# The inspection planning tables (planning/models.py): declared for the schema (migration 0012, `gridgov db check`),
# read and written by SQL text in the directory, plan, route and result services.
inspector  # unused variable
inspection_plan  # unused variable
inspection_stratum  # unused variable
inspection_candidate  # unused variable
inspection_team  # unused variable
inspection_visit  # unused variable
inspection_route  # unused variable
inspection_result  # unused variable
cancelled_by  # unused variable (api/routers/inspections.py): who cancelled a plan, a credentialed response field
# Issue 17, part A: the sign-in throttle's table (api/auth/models.py), declared for the schema (migration 0014),
# read and written by SQL text in api.auth.throttle.
login_throttle  # unused variable
# Issue 17, part C: the batch geocoding job store (address_library/models.py), declared for the schema (migration
# 0017), read and written by SQL text in address_library.batch_jobs.
geocode_batch_job  # unused variable
_.teardown  # called by Dask by name when a worker plugin is removed (address_library/cluster_worker.py:71)
