"""planning.routing: inspection routes — road travel times, the PyVRP solve under our guard, VROOM's JSON format."""
