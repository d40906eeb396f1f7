"""benchmarks: `make bench`; results in benchmarks/RESULTS.md."""
