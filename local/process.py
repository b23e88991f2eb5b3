"""A local stack (``python -m local run``) as a child process on free ports: the one way tests and load runs start it.

Its own state directory and ports, so a load run never collides with a `make run` on 8080/4566 or with
another load run. Stopped with SIGTERM (the CLI stops cleanly on it), then SIGKILL for the whole
process group, so the emulator it started cannot outlive it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from local.emulator import free_port
from local.stack import Stack

REPO = Path(__file__).resolve().parent.parent


class StackFailed(RuntimeError):
    """The local stack did not come up; the message names its log."""


class StackProcess:
    """``python -m local run`` as a child process in its own session, on free ports.

    ``run_args`` are added to the ``run`` command (``--auth``, ``--verbose``, ...), ``env`` to its
    environment; everything it writes goes to ``log_path`` (default: ``stack.log`` in the state
    directory). Use it as a context manager: the process (and the emulator it started) is stopped on
    the way out whatever happened, and ``start`` stops it itself when it fails.
    """

    def __init__(self, state_dir: Path, worker_concurrency: int | None = None,
                 env: dict[str, str] | None = None, visibility_timeout: int | None = None, *,
                 run_args: Sequence[str] = (), log_path: Path | None = None) -> None:  # fmt: skip
        self.state_dir = state_dir
        self.worker_concurrency = worker_concurrency
        self.visibility_timeout = visibility_timeout
        self.env = env or {}
        self.run_args = list(run_args)
        self.process: subprocess.Popen[bytes] | None = None
        self.stack: Stack | None = None
        self.port: int | None = None
        self.pid: int | None = None  # kept after stop: the process group that was started
        self.log_path = log_path or state_dir / "stack.log"

    def start(self, timeout: float = 90.0) -> Stack:
        """Start the stack and wait until its API answers /health; ``StackFailed`` (stopped) otherwise."""
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> Stack:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        port, emulator_port = free_port(), free_port()
        while emulator_port == port:
            emulator_port = free_port()
        self.port = port
        command = [sys.executable, "-m", "local", "--state-dir", str(self.state_dir), "run",
                   "--port", str(port), "--emulator-port", str(emulator_port)]  # fmt: skip
        if self.worker_concurrency:
            command += ["--worker-concurrency", str(self.worker_concurrency)]
        if self.visibility_timeout:
            command += ["--visibility-timeout", str(self.visibility_timeout)]
        command += self.run_args
        env = {**os.environ, "PYTHONPATH": str(REPO), **self.env}
        env.pop("AWS_ENDPOINT_URL", None)  # start our own emulator, never reuse someone else's
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, fixed arguments
                command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pid = self.process.pid
        stack_file = self.state_dir / "stack.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StackFailed(
                    f"the local stack exited with code {self.process.returncode}; see {self.log_path}:\n"
                    + self.log_tail()
                )
            if stack_file.exists():
                try:
                    stack = Stack.load(stack_file)
                except (ValueError, TypeError):
                    stack = None  # being written
                if stack and stack.api_url.endswith(f":{port}") and _healthy(stack.api_url):
                    self.stack = stack
                    return stack
            time.sleep(0.25)
        raise StackFailed(
            f"the local stack did not answer /health within {timeout:.0f}s; see {self.log_path}:\n"
            + self.log_tail()
        )

    def log_tail(self, size: int = 2000) -> str:
        """The last ``size`` characters of the stack's log."""
        try:
            return self.log_path.read_bytes()[-size:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM (the CLI stops cleanly on it), then SIGKILL for whatever is left of the process group."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        finally:
            # The group holds the emulator the stack started: whatever is left of it goes too, even
            # when the stack itself already died.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            if process.poll() is None:
                process.wait(timeout=5)

    def __enter__(self) -> StackProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(api_url + "/health", timeout=2) as response:  # noqa: S310 - http URL we started
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
