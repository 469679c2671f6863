"""``kds serve``: the Sanic REST gateway over the incident database (SPEC section 5).

Three folders, one job each:

- :mod:`kds.server.api` — the handlers (incidents, audit, health, metrics/OpenAPI) and the OpenAPI document.
- :mod:`kds.server.http` — HTTP policy around every request: request ids, logs, metrics, problem responses,
  limits, CORS, authentication, security headers (:mod:`~kds.server.http.observe` ties ids, logs and metrics).
- :mod:`kds.server.process` — the process lifecycle: the app factory, the runner that starts the workers, the
  main process's supervisor, the worker's graceful shutdown, request timeouts, the per-worker database pool
  and worker state.
"""
