"""The API: handlers grouped by resource, the route table (:mod:`~kds.server.api.routes`) and the OpenAPI document."""
