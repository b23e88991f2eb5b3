"""Handler copies for local execution environments load in a fresh process state."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_a_handler_copy_loads_before_its_module_was_ever_imported() -> None:
    # ingest.authorizer defines a dataclass under `from __future__ import annotations`; dataclasses looks
    # the defining module up in sys.modules, so a copy made before any import used to fail.
    code = (
        "import sys; from local.sources import load_container; "
        "assert 'ingest.authorizer' not in sys.modules; "
        "h = load_container('ingest.authorizer.lambda_handler'); "
        "print(callable(h))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
