"""local/process.py: a stack that cannot start is reported with its log and leaves no process behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from local.process import StackFailed, StackProcess

pytestmark = pytest.mark.integration


def test_a_stack_that_fails_to_start_names_its_log_and_is_stopped(tmp_path: Path) -> None:
    # GIVEN a run command the CLI refuses
    stack = StackProcess(tmp_path / "state", run_args=["--no-such-option"], log_path=tmp_path / "run.log")
    # WHEN it is started
    with pytest.raises(StackFailed) as failed:
        stack.start(timeout=60)
    # THEN the error names the log and quotes it, and the process (group) is gone
    assert str(tmp_path / "run.log") in str(failed.value)
    assert "--no-such-option" in str(failed.value)
    assert stack.process is None
    assert stack.port is not None
    assert stack.pid is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(stack.pid, 0)
