"""``kds serve``: the Sanic REST gateway over the incident database (docs/api.md, docs/operations.md).

Three folders, one job each:

- :mod:`kds.server.api` — the route table (:mod:`~kds.server.api.routes`: method, path, handler,
  scope, OpenAPI operation), the handlers (incidents, audit, health, metrics/OpenAPI) and the
  OpenAPI document generated from the table.
- :mod:`kds.server.http` — HTTP policy around every request, in the order of
  :mod:`~kds.server.http.middleware`: request ids, logs and metrics (:mod:`~kds.server.http.observe`),
  limits, CORS, authentication, security headers; problem responses for every error.
- :mod:`kds.server.process` — the process lifecycle: the app factory, the runner that starts the
  workers, the main process's supervisor, the worker's graceful shutdown, request timeouts, the
  per-worker database pool, typed worker and request state, and :mod:`~kds.server.process.private_apis`,
  the only module that touches private Sanic or prometheus-client APIs.
"""
