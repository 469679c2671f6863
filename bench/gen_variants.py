"""Generate the SQL variants measured in SQL_FINDINGS.md (bench/sql/gen/*.sql).

Strategies:
  lead  - the lead's shape: count CTE + page CTE, both over the three-table join.
  mat   - namespace → history ids (ANY(ARRAY(...))), one index-only scan materialised as (id, ts);
          count and the top-N page both read it; only the page rows touch the heap.
Paging: off0, off5000, keyset (the cursor is the 5000th row of the same filters).
"""

from pathlib import Path

DOC = (Path(__file__).parent / "sql" / "doc.sqlfrag").read_text().strip()
JOIN = (
    "FROM resource_action_traces rat JOIN action_histories ah ON ah.id = rat.action_history_id "
    "JOIN resource_references rr ON rr.id = ah.resource_id"
)
HIST = (
    "ARRAY(SELECT ah.id FROM action_histories ah JOIN resource_references rr ON rr.id = ah.resource_id "
    "WHERE rr.namespace = %(ns)s)"
)
FILTERS = {
    "ns_sev": ["rr.namespace = %(ns)s", "rat.alert_severity = %(sev)s"],
    "ns": ["rr.namespace = %(ns)s"],
    "sev": ["rat.alert_severity = %(sev)s"],
    "cluster": ["rat.cluster_name = %(cluster)s"],
    "none": [],
}
ORDER = "ORDER BY rat.action_timestamp DESC, rat.id DESC"
RAT = "resource_action_traces rat"
PAGE_ROWS = (
    "FROM ids JOIN resource_action_traces rat ON rat.id = ids.id AND rat.action_timestamp = ids.action_timestamp\n"
    "           JOIN action_histories ah ON ah.id = rat.action_history_id\n"
    "           JOIN resource_references rr ON rr.id = ah.resource_id"
)
KEYSET = "(rat.action_timestamp, rat.id) < (%(ts)s, %(cid)s)"


def where(conds: list[str]) -> str:
    return ("WHERE " + " AND ".join(conds)) if conds else ""


def lead(conds: list[str], paging: str) -> str:
    page_conds = conds + ([KEYSET] if paging == "keyset" else [])
    off = "5000" if paging == "off5000" else "0"
    return f"""WITH total AS (SELECT count(*) AS n {JOIN} {where(conds)}),
page AS (SELECT rat.id, rat.action_timestamp, {DOC} AS doc {JOIN} {where(page_conds)} {ORDER} LIMIT 51 OFFSET {off})
SELECT total.n, page.id, page.action_timestamp, page.doc FROM total LEFT JOIN page ON true
ORDER BY page.action_timestamp DESC, page.id DESC"""


def mat(conds: list[str], paging: str) -> str:
    inner = [c if not c.startswith("rr.namespace") else f"rat.action_history_id = ANY ({HIST})" for c in conds]
    off = "5000" if paging == "off5000" else "0"
    key = "WHERE (m.action_timestamp, m.id) < (%(ts)s, %(cid)s)" if paging == "keyset" else ""
    return f"""WITH m AS MATERIALIZED (SELECT rat.id, rat.action_timestamp FROM {RAT} {where(inner)}),
total AS (SELECT count(*) AS n FROM m),
ids AS (SELECT m.id, m.action_timestamp FROM m {key} ORDER BY m.action_timestamp DESC, m.id DESC LIMIT 51 OFFSET {off}),
page AS (SELECT rat.id, rat.action_timestamp, {DOC} AS doc
           {PAGE_ROWS})
SELECT total.n, page.id, page.action_timestamp, page.doc FROM total LEFT JOIN page ON true
ORDER BY page.action_timestamp DESC, page.id DESC"""


def lean(conds: list[str], paging: str) -> str:
    """No namespace filter: no join in the count; ids first, heap + join for the page rows only."""
    off = "5000" if paging == "off5000" else "0"
    page_conds = conds + ([KEYSET] if paging == "keyset" else [])
    return f"""WITH total AS (SELECT count(*) AS n FROM resource_action_traces rat {where(conds)}),
ids AS (SELECT rat.id, rat.action_timestamp FROM {RAT} {where(page_conds)} {ORDER}
        LIMIT 51 OFFSET {off}),
page AS (SELECT rat.id, rat.action_timestamp, {DOC} AS doc
           {PAGE_ROWS})
SELECT total.n, page.id, page.action_timestamp, page.doc FROM total LEFT JOIN page ON true
ORDER BY page.action_timestamp DESC, page.id DESC"""


def main() -> None:
    out = Path(__file__).parent / "sql" / "gen"
    out.mkdir(exist_ok=True)
    for fname, conds in FILTERS.items():
        cursor = f"SELECT rat.action_timestamp, rat.id {JOIN} {where(conds)} {ORDER} OFFSET 5000 LIMIT 1"
        (out / f"{fname}.cursor.sql").write_text(cursor + "\n")
        for paging in ("off0", "off5000", "keyset"):
            (out / f"lead_{fname}_{paging}.sql").write_text(lead(conds, paging) + "\n")
            if "rr.namespace = %(ns)s" not in conds:
                (out / f"lean_{fname}_{paging}.sql").write_text(lean(conds, paging) + "\n")
            if "rr.namespace = %(ns)s" in conds:
                (out / f"mat_{fname}_{paging}.sql").write_text(mat(conds, paging) + "\n")


if __name__ == "__main__":
    main()
