"""The AWS emulator: moto in server mode in a child process, or one already running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEFAULT_EMULATOR_PORT = 4566


class PortInUse(RuntimeError):
    """The port a local server needs is taken: name it and say what to do."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the emulator exited with code {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=1):  # noqa: S310 - a local URL we built
                return
        except urllib.error.HTTPError:
            return  # it answered: up (LocalStack answers that path with a 404)
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"the AWS emulator at {url} did not answer within {timeout:.0f}s")


@dataclass
class Emulator:
    """A running emulator: the endpoint URL and, when we started it, the process to stop."""

    url: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def owned(self) -> bool:
        return self.process is not None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def start(port: int = DEFAULT_EMULATOR_PORT, log_path: Path | None = None) -> Emulator:
    """Use ``AWS_ENDPOINT_URL`` when it points at a running emulator; otherwise start moto on ``port``."""
    existing = os.environ.get("AWS_ENDPOINT_URL")
    if existing:
        wait_until_up(existing, timeout=5)
        return Emulator(existing)
    if not port_is_free(port):
        raise PortInUse(
            f"port {port} is already in use: is another `make run` or an emulator running? Stop it, or point "
            f"AWS_ENDPOINT_URL=http://127.0.0.1:{port} at it to reuse it."
        )
    command = [sys.executable, "-m", "local.moto_server"]
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - lives as long as the child
    repo = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(  # noqa: S603 - fixed command, no shell
        [*command, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=repo
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process=process)
    except BaseException as exc:
        Emulator(url, process).stop()
        if isinstance(exc, RuntimeError) and log_path is not None:
            # e.g. a patch of local/patches/ refusing the installed moto: say why, not only that it exited
            tail = log_path.read_bytes()[-2000:].decode(errors="replace")
            raise RuntimeError(f"{exc}; the end of {log_path}:\n{tail}") from exc
        raise
    return Emulator(url, process)
