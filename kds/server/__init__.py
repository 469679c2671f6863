"""``kds serve``: the Sanic REST gateway over the incident database (SPEC section 5).

The package is split by job: :mod:`~kds.server.app` builds the application,
:mod:`~kds.server.problems` is the one error path, :mod:`~kds.server.observe` does request ids,
logs and HTTP metrics, :mod:`~kds.server.database` owns the per-worker pool,
:mod:`~kds.server.shutdown` the Kubernetes-aware shutdown of a worker,
:mod:`~kds.server.supervisor` the main process's signals, and :mod:`~kds.server.runner` starts the
worker processes. Handlers live in :mod:`~kds.server.routes`; :mod:`~kds.server.openapi` describes them.
"""
