"""Real `qa-bot` server processes on loopback for the end-to-end tests (and the load benchmark)."""

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def qa_bot_server(*args: str, ready_path: str, port: int, timeout: float = 120, env=None):
    """`qa-bot ARGS --port PORT` running until the block ends; yields its base URL once `ready_path`
    answers 200."""
    # Its output goes to a file: a pipe nobody reads fills up and stalls the server.
    log = tempfile.TemporaryFile("w+")
    process = subprocess.Popen([sys.executable, "-m", "qa_bot", *args, "--port", str(port)], env=env,
                               stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base + ready_path, process, log, timeout)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def wait_until_ready(url: str, process: subprocess.Popen, log, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"{url}: the server exited: {log.read()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout} s")
