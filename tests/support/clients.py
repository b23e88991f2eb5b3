"""Shared by the system tests of real clients (log shippers, analytics SDKs): API keys made with the
local CLI, a fault proxy that answers 503 in front of the HTTP API, and virtualenvs for clients whose
pins cannot live in the project's own environment."""

from __future__ import annotations

import subprocess
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from local.process import REPO


def create_key(state: Path, tenant: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "local", "--state-dir", str(state), "keys", "create", "--tenant", tenant],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return out.stdout.splitlines()[0].strip()


def client_venv(root: Path, packages: tuple[str, ...]) -> Path:
    """The python of a new virtualenv under ``root`` with ``packages`` (exact pins) installed; the
    test is skipped when they cannot be installed."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              *packages], capture_output=True, text=True, timeout=600)  # fmt: skip
    if install.returncode != 0:
        pytest.skip(f"cannot install {' '.join(packages)}: {install.stderr[-500:]}")
    return python


@dataclass
class FaultProxy:
    """An HTTP proxy in front of the API: of every three requests, the first is answered 503 without
    being forwarded, the second is forwarded and its answer replaced by 503, the third goes through."""

    upstream: str
    seen: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> str:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with proxy.lock:
                    turn = len(proxy.seen) % 3
                    proxy.seen.append(["refused", "lost-answer", "forwarded"][turn])
                if turn == 0:
                    self.answer(503, {"retry-after": "1", "content-type": "text/plain"}, b"try later\n")
                    return
                request = urllib.request.Request(f"{proxy.upstream}{self.path}", data=body, method="POST")  # noqa: S310
                for name in ("content-type", "content-encoding", "authorization", "x-scope-orgid"):
                    if self.headers.get(name):
                        request.add_header(name, self.headers[name])
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                        status, headers, data = response.status, dict(response.headers), response.read()
                except urllib.error.HTTPError as error:
                    status, headers, data = error.code, dict(error.headers), error.read()
                if turn == 1:
                    self.answer(503, {"retry-after": "1", "content-type": "text/plain"}, b"lost\n")
                    return
                self.answer(status, {"content-type": headers.get("Content-Type", "text/plain")}, data)

            def answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
