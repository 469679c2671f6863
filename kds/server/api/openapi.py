"""The OpenAPI 3.1 document, generated from the route table and the core's pydantic models.

Every operation is a row of :data:`kds.server.api.routes.ROUTES`; what follows from the row is added
here, the same way for every route: a scoped route gets the (optional) bearer security, a
description naming its scope and the 401/403 answers of the authentication middleware; a route
with parameters can answer 414 (the request target limit), one with a body 413 (the body limit).
"""

from __future__ import annotations

import copy
from typing import Any

from kds import __version__
from kds.server.api.routes import ROUTES, Route
from kds.server.api.schemas import FORBIDDEN, UNAUTHORIZED, URI_TOO_LONG, component_schemas, problem_response
from kds.server.http.problems import STATUS_AND_TITLE, TYPE_BASE

# Authentication is optional (KDS_AUTH_TOKENS_FILE): either no credentials or a bearer token.
OPTIONAL_BEARER: list[dict[str, list[str]]] = [{}, {"bearerAuth": []}]
BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "Tokens listed (as SHA-256 digests) in KDS_AUTH_TOKENS_FILE; off when it is unset.",
}
PAYLOAD_TOO_LARGE = problem_response("`payload-too-large`: the body is larger than KDS_MAX_BODY_BYTES.")


def operation(route: Route) -> dict[str, Any]:
    """The route's OpenAPI operation: its own row plus what its scope, parameters and body imply."""
    result = copy.deepcopy(route.operation)
    responses = result["responses"]
    if route.scope is not None:
        result["security"] = OPTIONAL_BEARER
        needs = f"With authentication on, needs a bearer token with the scope `{route.scope}`."
        result["description"] = f"{result['description']} {needs}" if "description" in result else needs
        responses.setdefault("401", UNAUTHORIZED)
        responses.setdefault("403", FORBIDDEN)
    if result.get("parameters"):
        responses.setdefault("414", URI_TOO_LONG)
    if "requestBody" in result:
        responses.setdefault("413", PAYLOAD_TOO_LARGE)
    return result


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.openapi_path, {})[route.method.lower()] = operation(route)
    slugs = ", ".join(f"`{slug}` ({status})" for slug, (status, _) in STATUS_AND_TITLE.items())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kds incident API",
            "version": __version__,
            "description": (
                "Read access to remediation incidents and the notification audit trail. Every error is RFC 9457 "
                f"`application/problem+json` whose `type` is `{TYPE_BASE}<slug>`; slugs: {slugs}."
            ),
        },
        "paths": paths,
        "components": {"schemas": component_schemas(), "securitySchemes": {"bearerAuth": BEARER_SCHEME}},
    }


def document_bytes() -> bytes:
    import orjson

    return orjson.dumps(document())
