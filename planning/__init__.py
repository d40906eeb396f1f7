"""planning: decisions on top of the work: workload, staffing, daily assignment, grid redesign (and, next, inspection plans)."""
