"""``kds serve`` on a terminal: Sanic's own start-up hint and colour codes never reach kds's logs."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import orjson

from kds.server.process.metrics_dir import MULTIPROC_ENV
from tests.serving import free_port, process_gone, wait_for

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def test_json_logs_on_a_terminal_have_no_sanic_hint_and_no_colour(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    primary, secondary = pty.openpty()  # stdout is a terminal: where Sanic would colour and hint
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("KDS_", "SANIC_"))}
    environment.pop(MULTIPROC_ENV, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "kds", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--database-url", database_url, "--workers", "2", "--shutdown-delay", "0"],
        stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary, env=environment, start_new_session=True,
    )  # fmt: skip
    os.close(secondary)
    output = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal closed with the last process writing to it
                return
            if not chunk:
                return
            output.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(lambda: output.count(b"Worker ready") >= 2 or process.poll() is not None, timeout=60,
                 message="both workers to start")  # fmt: skip
        assert process.poll() is None, output.decode(errors="replace")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        wait_for(lambda: process_gone(process.pid), timeout=5, message="the server to exit")
        reader.join(timeout=10)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        os.close(primary)
    text = output.decode(errors="replace")
    assert not ANSI.search(text), text
    assert "\\u001b" not in text, text  # nor escaped inside a JSON string
    assert "--dev" not in text and "--debug" not in text and "PRODUCTION" not in text, text
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    records = [orjson.loads(line) for line in lines]  # every line is one JSON object
    messages = [record["message"] for record in records]
    assert "kds serve starting" in messages and "kds serve stopped" in messages
    assert sum(message.startswith("Worker ready") for message in messages) == 2
