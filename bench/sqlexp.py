"""EXPLAIN (ANALYZE, BUFFERS) experiment runner used for bench/SQL_FINDINGS.md.

python bench/sqlexp.py URL FILE.sql [--hide idx1,idx2] [--plan] [--reps N] [--set guc=value ...]
The SQL may use %(ns)s (rotated over the 20 benchmark namespaces), %(sev)s, %(cluster)s,
%(off)s, %(ts)s / %(cid)s (a keyset cursor). Indexes named by --hide are dropped inside a
transaction that is rolled back. Prints the median planning and execution times and buffers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import psycopg

NAMESPACES = [
    "default", "kube-system", "monitoring", "payments", "checkout", "cart", "search", "auth",
    "billing", "inventory", "shipping", "notifications", "analytics", "logging", "ingress-nginx",
    "cert-manager", "data-pipeline", "ml-serving", "frontend", "backend-api",
]  # fmt: skip


def walk(node: dict, out: list[str], depth: int = 0) -> None:
    label = node["Node Type"]
    for key in ("Index Name", "Relation Name", "Strategy"):
        if key in node:
            label += f" {node[key]}"
    out.append(
        f"{'  ' * depth}{label} rows={node.get('Actual Rows')} loops={node.get('Actual Loops')} "
        f"time={node.get('Actual Total Time')} hit={node.get('Shared Hit Blocks')} "
        f"read={node.get('Shared Read Blocks')}"
        + (f" heapfetch={node['Heap Fetches']}" if "Heap Fetches" in node else "")
    )
    for child in node.get("Plans", []):
        walk(child, out, depth + 1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("file")
    parser.add_argument("--hide", default="")
    parser.add_argument("--plan", action="store_true")
    parser.add_argument("--timing", action="store_true")
    parser.add_argument("--wall", choices=["prepared", "unprepared"], help="time real executions instead of EXPLAIN")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--sev", default="high")
    parser.add_argument("--off", type=int, default=0)
    args = parser.parse_args()
    text = Path(args.file).read_text(encoding="utf-8")
    with psycopg.connect(args.url) as conn:
        for item in args.set:
            name, _, value = item.partition("=")
            conn.execute(f"SET {name} = '{value}'")
        for name in filter(None, args.hide.split(",")):
            conn.execute(f"DROP INDEX {name}")
        plans, execs, hits = [], [], []
        first = None
        for rep in range(args.reps + (2 if not args.wall else 7)):
            ns = NAMESPACES[rep % len(NAMESPACES)]
            params = {"ns": ns, "sev": args.sev, "cluster": "prod-us-east-1", "off": args.off}
            if "%(ts)s" in text:
                # gen/<strategy>_<filters>_<paging>.sql -> gen/<filters>.cursor.sql (the 5000th matching row)
                path = Path(args.file)
                base = path.stem.split("_", 1)[1].rsplit("_", 1)[0]
                cursor_sql = (path.parent / f"{base}.cursor.sql").read_text(encoding="utf-8")
                row = conn.execute(cursor_sql, params).fetchone()
                if row is None:  # fewer than 5000 matches (100k data set): page from the 50th row instead
                    row = conn.execute(cursor_sql.replace("OFFSET 5000", "OFFSET 50"), params).fetchone()
                params.update(ts=row[0], cid=row[1])
            if args.wall:
                started = time.perf_counter()
                conn.execute(text, params, prepare=args.wall == "prepared").fetchall()
                if rep >= 7:
                    execs.append((time.perf_counter() - started) * 1000)
                continue
            timing = "ON" if (args.timing or args.plan) else "OFF"
            result = conn.execute(
                f"EXPLAIN (ANALYZE, BUFFERS, TIMING {timing}, FORMAT JSON) " + text, params
            ).fetchone()[0][0]
            if rep < 2:
                first = first or result
                continue  # warm-up
            plans.append(result["Planning Time"])
            execs.append(result["Execution Time"])
            hits.append(result["Plan"].get("Shared Hit Blocks", 0) + result["Plan"].get("Shared Read Blocks", 0))
        conn.rollback()
    if args.wall:
        execs.sort()
        print(
            json.dumps(
                {
                    "file": args.file,
                    "hide": args.hide,
                    "mode": args.wall,
                    "wall_ms_p50": round(statistics.median(execs), 3),
                    "wall_ms_p90": round(execs[int(len(execs) * 0.9)], 3),
                }
            )
        )
        return 0
    if args.plan:
        out: list[str] = []
        walk(result["Plan"], out)
        print("\n".join(out))
    print(
        json.dumps(
            {
                "file": args.file,
                "hide": args.hide,
                "plan_ms_median": round(statistics.median(plans), 3),
                "exec_ms_median": round(statistics.median(execs), 3),
                "exec_ms_max": round(max(execs), 3),
                "buffers_median": statistics.median(hits),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
