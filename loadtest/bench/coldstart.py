"""Handler cold start: the import time of the Lambda entry modules in a fresh interpreter, against
a fresh interpreter that only imports boto3 (the floor: every function here needs boto3 anyway).

Each sample is its own subprocess; the candidates run interleaved, and the figures are medians.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
_PROBE = (
    "import time, sys; t = time.perf_counter()\n"
    "for name in sys.argv[1:]: __import__(name)\n"
    "print(time.perf_counter() - t, len(sys.modules))"
)


def _available(module: str) -> bool:
    sys.path.insert(0, str(ROOT))
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
    finally:
        sys.path.pop(0)


def candidates() -> dict[str, list[str]]:
    """name -> modules to import. Each function imports only its own module on Lambda."""
    out = {"floor: import boto3": ["boto3"]}
    for module in ("ingest.handler", "consumers.worker"):
        if _available(module):
            out[f"handler: {module}"] = [module]
    out["baseline handlers"] = ["loadtest.bench.baseline"]
    return out


def _sample(modules: list[str]) -> tuple[float, float, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = _now()
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *modules],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
    ).stdout
    wall = _now() - t0
    seconds, count = out.split()
    return float(seconds), wall, int(count)


def _now() -> float:
    import time

    return time.perf_counter()


def run(samples: int = 9) -> dict[str, Any]:
    cands = candidates()
    for modules in cands.values():  # one unmeasured run each: byte-compile, warm the page cache
        _sample(modules)
    imports: dict[str, list[float]] = {k: [] for k in cands}
    walls: dict[str, list[float]] = {k: [] for k in cands}
    mods: dict[str, int] = {}
    for _ in range(samples):
        for name, modules in cands.items():
            seconds, wall, count = _sample(modules)
            imports[name].append(seconds)
            walls[name].append(wall)
            mods[name] = count
    floor = "floor: import boto3"
    rows = []
    for name in cands:
        rows.append(
            {
                "candidate": name,
                "modules": cands[name],
                "import_ms": statistics.median(imports[name]) * 1000,
                "process_ms": statistics.median(walls[name]) * 1000,
                "ratio_to_floor": statistics.median(
                    a / b for a, b in zip(imports[name], imports[floor], strict=True)
                ),
                "sys_modules": mods[name],
            }
        )
    return {"samples": samples, "rows": rows}


if __name__ == "__main__":
    for row in run(5)["rows"]:
        print(row)
