"""HTTP policy around every request: ids, logs, metrics, problems, limits, CORS, auth, headers."""
