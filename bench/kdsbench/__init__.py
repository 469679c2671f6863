"""The kds benchmark harness (issue 9): kds vs PostgREST 12 vs the database floor, on the same data."""
