"""The Lambda zip's dependency filter (``infra/scripts/build.py``): what it leaves out is never loaded."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from infra.scripts import build


def _site_packages() -> Path:
    spec = importlib.util.find_spec("phonenumbers")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent.parent


def test_phonenumbers_lookup_data_is_left_out_and_the_matcher_still_finds_numbers(tmp_path: Path) -> None:
    source = _site_packages() / "phonenumbers"
    deps = tmp_path / "deps"
    shutil.copytree(source, deps / "phonenumbers", ignore=shutil.ignore_patterns("__pycache__"))

    files = build.dependency_files(deps)

    assert not [name for name in files if name.startswith(build.UNUSED_DEPENDENCY_DATA)]
    assert "phonenumbers/data/__init__.py" in files
    assert "phonenumbers/shortdata/__init__.py" in files
    kept = tmp_path / "kept"
    for name, path in files.items():
        (kept / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, kept / name)
    probe = (
        "import sys, phonenumbers\n"
        "from phonenumbers import Leniency, PhoneNumberMatcher\n"
        "assert phonenumbers.__file__.startswith(sys.argv[1]), phonenumbers.__file__\n"
        "found = [m.raw_string for m in PhoneNumberMatcher(sys.argv[2], 'US', leniency=Leniency.VALID)]\n"
        "print(found)\n"
    )
    # -S: no site-packages, so only the filtered copy can be imported.
    out = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(kept), "call +44 20 7946 0958 or (415) 555-2671"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(kept)},
    )
    assert out.stdout.strip() == "['+44 20 7946 0958', '(415) 555-2671']"
