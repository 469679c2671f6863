"""Remote mode: the CLI's incident commands through a running ``kds serve`` (docs/remote.md).

Imported only when ``--server-url`` / ``KDS_SERVER_URL`` is given, so that ``kds --help`` and the
direct mode never import httpx.
"""
