"""Handler cold start: import time of each Lambda entry module in a fresh interpreter, against a fresh
interpreter that only imports boto3 (the floor: every function here needs boto3 anyway).

Each sample is its own subprocess; the candidates run interleaved and the figures are medians. The
modules are imported as the zip ships them: a copy of the packages with unchecked-hash bytecode, staged
by ``infra/scripts/build.py``'s own functions, so that a working tree without bytecode
(PYTHONDONTWRITEBYTECODE, as in CI) does not time the compiler.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
_PROBE = (
    "import time, sys; t = time.perf_counter()\n"
    "for name in sys.argv[1:]: __import__(name)\n"
    "print(time.perf_counter() - t, len(sys.modules))"
)
# What a handler pulls in besides our packages, in import order (sys.modules keeps it).
_LIBRARIES = (
    "import sys, json; before = set(sys.modules); __import__(sys.argv[1])\n"
    "ours = set(sys.argv[2:])\n"
    "print(json.dumps([n for n in sys.modules if n not in before and n.split('.')[0] not in ours]))"
)
# Our packages' own share, measured precisely: preload the libraries, then time only the handler.
_ON_TOP = (
    "import sys, time; n = int(sys.argv[1])\n"
    "for name in sys.argv[2 : 2 + n]: __import__(name)\n"
    "t = time.perf_counter(); __import__(sys.argv[-1])\n"
    "print(time.perf_counter() - t, len(sys.modules))"
)
HANDLERS = ("ingest.handler", "consumers.worker.handler")
LIBRARIES_ROW = "  its libraries only: "
FLOOR = "floor: import boto3"
SHIPPED = ("core", "ingest", "consumers", "loadtest")  # the zip's packages, plus the bench's baseline


def _python(root: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", *args], capture_output=True, text=True, check=True, env=env,
                          cwd=root).stdout  # fmt: skip


def _available(module: str) -> bool:
    sys.path.insert(0, str(ROOT))
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
    finally:
        sys.path.pop(0)


def candidates(root: Path) -> dict[str, list[str]]:
    """name -> modules to import. Each function imports only its own module on Lambda.

    Each handler also gets a row for its libraries alone: boto3 plus every non-project module the
    handler's import loads, in the same order. The gap between the two rows is what our own packages
    cost; the gap to the floor is what Powertools, orjson and friends cost.
    """
    out = {FLOOR: ["boto3"]}
    for module in HANDLERS:
        if _available(module):
            out[f"handler: {module}"] = [module]
            out[f"{LIBRARIES_ROW}{module}"] = [
                "boto3",
                *json.loads(_python(root, _LIBRARIES, module, *SHIPPED)),
            ]
    out["baseline handlers"] = ["loadtest.bench.baseline"]
    return out


def stage(dest: Path) -> Path:
    """The packages laid out and byte-compiled in ``dest`` by the build's own functions, with this
    interpreter, so the bench imports what the zip would."""
    spec = importlib.util.spec_from_file_location("sluice_build", ROOT / "infra" / "scripts" / "build.py")
    assert spec is not None and spec.loader is not None
    build: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    build.with_bytecode(build.project_files(ROOT, SHIPPED), sys.executable, dest)
    return dest


def _sample(modules: list[str], root: Path, preload: list[str] | None = None) -> tuple[float, float, int]:
    args = [_PROBE, *modules] if preload is None else [_ON_TOP, str(len(preload)), *preload, *modules]
    t0 = time.perf_counter()
    seconds, count = _python(root, *args).split()
    return float(seconds), time.perf_counter() - t0, int(count)


def _quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4)
    return q1, q3


def run(samples: int = 9) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sluice-coldstart-") as tmp:
        return _run(samples, stage(Path(tmp)))


def _run(samples: int, root: Path) -> dict[str, Any]:
    cands = candidates(root)
    for modules in cands.values():  # one unmeasured run each: warm the page cache
        _sample(modules, root)
    imports: dict[str, list[float]] = {k: [] for k in cands}
    walls: dict[str, list[float]] = {k: [] for k in cands}
    mods: dict[str, int] = {}
    own: dict[str, list[float]] = {}
    for _ in range(samples):
        for name, modules in cands.items():
            seconds, wall, mods[name] = _sample(modules, root)
            imports[name].append(seconds)
            walls[name].append(wall)
            libraries = cands.get(f"{LIBRARIES_ROW}{modules[0]}")
            if name.startswith("handler:") and libraries:
                own.setdefault(name, []).append(_sample(modules, root, preload=libraries)[0])
    rows = []
    for name, modules in cands.items():
        ratios = [a / b for a, b in zip(imports[name], imports[FLOOR], strict=True)]
        rows.append({
            "candidate": name,
            "modules": modules if len(modules) < 5 else [f"{len(modules)} modules"],
            "import_ms": statistics.median(imports[name]) * 1000,
            # our packages alone, on top of already-imported libraries (handler rows only)
            "own_ms": statistics.median(own[name]) * 1000 if name in own else None,
            "process_ms": statistics.median(walls[name]) * 1000,
            "ratio_to_floor": statistics.median(ratios),
            # the middle half of the per-round ratios: how far this machine's noise moves the figure
            "ratio_iqr": _quartiles(ratios),
            "sys_modules": mods[name],
        })  # fmt: skip
    return {"samples": samples, "rows": rows}
