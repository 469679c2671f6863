"""Presenters: incidents as the terminal shows them (table, wide, detail) and as scripts read them.

Every presenter takes already-validated documents; machine formats write nothing but data.
See docs/terminal.md.
"""
