"""The benchmark request for each server, and the check that both answer it identically."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import dataclass

from kds.db.seed import NAMESPACES as SEEDED

NAMESPACES = SEEDED[:20]  # the 20 ASCII namespaces of the seed ("one of 20", the benchmark query of docs/benchmarks.md)
LIMIT = 50


@dataclass(frozen=True)
class Target:
    name: str
    base_url: str
    headers: dict[str, str]

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def path(self, namespace: str) -> str:
        raise NotImplementedError

    def fetch(self, namespace: str) -> tuple[list[int], int]:
        """(ids in order, exact total) of the benchmark query for ``namespace``."""
        raise NotImplementedError

    def _get(self, namespace: str) -> tuple[bytes, dict[str, str]]:
        request = urllib.request.Request(self.base_url + self.path(namespace), headers=self.headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read(), dict(response.headers)


class PostgREST(Target):
    def path(self, namespace: str) -> str:
        ns = urllib.parse.quote(namespace, safe="")
        return f"/incidents?namespace=eq.{ns}&severity=eq.high&order=action_timestamp.desc,id.desc&limit={LIMIT}"

    def fetch(self, namespace: str) -> tuple[list[int], int]:
        body, headers = self._get(namespace)
        content_range = headers.get("Content-Range", "")  # e.g. "0-49/5601"
        return [row["id"] for row in json.loads(body)], int(content_range.rsplit("/", 1)[1])


class Kds(Target):
    def path(self, namespace: str) -> str:
        ns = urllib.parse.quote(namespace, safe="")
        return f"/api/v1/incidents?namespace={ns}&severity=high&limit={LIMIT}"

    def fetch(self, namespace: str) -> tuple[list[int], int]:
        body, _ = self._get(namespace)
        document = json.loads(body)
        return [row["id"] for row in document["data"]], int(document["pagination"]["total"])


def postgrest(port: int) -> PostgREST:
    return PostgREST("PostgREST", f"http://127.0.0.1:{port}", {"Prefer": "count=exact", "Accept": "application/json"})


def kds(port: int) -> Kds:
    return Kds("kds", f"http://127.0.0.1:{port}", {"Accept": "application/json"})


TRUTH = """
SELECT array(SELECT i.id FROM api.incidents i WHERE i.namespace = %(ns)s AND i.severity = 'high'
              ORDER BY i.action_timestamp DESC, i.id DESC LIMIT %(limit)s),
       (SELECT count(*) FROM api.incidents i WHERE i.namespace = %(ns)s AND i.severity = 'high')
"""


def truth(db_url: str, namespace: str) -> tuple[list[int], int]:
    """The benchmark query answered by the database itself."""
    import psycopg

    with psycopg.connect(db_url) as conn:
        ids, total = conn.execute(TRUTH, {"ns": namespace, "limit": LIMIT}).fetchone()  # type: ignore[misc]
    return list(ids), int(total)


def verify(db_url: str, targets: list[Target]) -> dict[str, int]:
    """Every target returns the database's ids, in the same order, with the same total, for every namespace.

    Returns the total per namespace; raises AssertionError naming the first difference."""
    totals: dict[str, int] = {}
    for namespace in NAMESPACES:
        ids, total = truth(db_url, namespace)
        if len(ids) != min(LIMIT, total) or not ids:
            raise AssertionError(f"{namespace}: {len(ids)} ids for total {total}")
        for target in targets:
            answer = target.fetch(namespace)
            if answer != (ids, total):
                raise AssertionError(
                    f"{namespace}: {target.name} differs from the database "
                    f"(total {answer[1]} vs {total}; ids equal: {answer[0] == ids})"
                )
        totals[namespace] = total
    return totals
