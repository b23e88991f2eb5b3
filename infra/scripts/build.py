"""Build the Lambda code zip: ``make build`` (ARCH=arm64|x86_64, default arm64).

One zip for all five functions (their handlers differ), holding the project packages and the runtime
dependencies, rather than a dependency layer plus a code zip:
  * ingest and the consumers share ``core`` (envelope, schema, wiring) and must run the same version
    of it; one artefact per build makes a half-updated pipeline impossible;
  * the dependencies are small (a few MB zipped, far below the 50 MB direct-upload limit), so a layer
    would save little upload time and add a second versioned artefact to publish and pin;
  * one sha256 identifies exactly what runs (Terraform's source_code_hash).

boto3/botocore are left out: the Lambda python3.12 runtime provides them (pinned only for local runs).

The zip carries bytecode for the runtime's interpreter. /var/task is read-only, so without .pyc files
every cold start compiles Powertools and our packages from source: about 30 ms more per import of
the ingest handler on this machine (``python -m loadtest.bench --skip-e2e`` shows the import times).
The bytecode is compiled by a Python of the runtime's minor version (``LAMBDA_PYTHON``, default
``python3.12`` on PATH), as unchecked-hash .pyc files: they embed no timestamp, are loaded without
looking at the source, and name ``/var/task/...`` in tracebacks. Where no such interpreter exists the
zip is built without bytecode and the build says so.

The zip is reproducible: same sources + same constraints.txt + same interpreter give the same bytes
(sorted entries, fixed timestamps and permissions, hash-based bytecode).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "ingest", "consumers")
PROJECT_SUFFIXES = {".py", ".json"}
PROVIDED_BY_RUNTIME = {"boto3", "botocore"}
PYTHON_VERSION = "3.12"
# Lambda's python3.12 runtime is Amazon Linux 2023 (glibc 2.34): manylinux2014 and manylinux_2_28 both fit.
PLATFORMS = {
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
}
FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can store
LAMBDA_TASK_ROOT = "/var/task"
_COMPILE = (
    "import compileall, sys, py_compile\n"
    "ok = compileall.compile_dir(sys.argv[1], quiet=2, stripdir=sys.argv[1], prependdir=sys.argv[2],\n"
    "    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH, workers=1)\n"
    "sys.exit(0 if ok else 1)"
)


def runtime_requirements(pyproject: Path) -> list[str]:
    """[project.dependencies] of pyproject.toml, less what the Lambda runtime already has."""
    deps: list[str] = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    keep = []
    for dep in deps:
        name = re.split(r"[\s<>=!~;\[]", dep, maxsplit=1)[0]
        if name.lower().replace("_", "-") not in PROVIDED_BY_RUNTIME:
            keep.append(dep)
    return sorted(keep)


def install_dependencies(requirements: list[str], arch: str, constraints: Path, cache: Path) -> Path:
    """pip-install the requirements for the Lambda platform into a directory cached by their inputs."""
    key_src = "\n".join([*requirements, arch, PYTHON_VERSION, constraints.read_text()])
    target = cache / f"deps-{arch}-{hashlib.sha256(key_src.encode()).hexdigest()[:16]}"
    if target.is_dir():
        return target
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    for platform in PLATFORMS[arch]:
        cmd += ["--platform", platform]
    cmd += [
        "--only-binary=:all:",
        "--python-version", PYTHON_VERSION,
        "--implementation", "cp",
        "-c", str(constraints),
        "--target", str(tmp),
        *requirements,
    ]  # fmt: skip
    subprocess.run(cmd, check=True)  # noqa: S603 (fixed command, our own arguments)
    tmp.rename(target)
    return target


def project_files(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Archive name -> file for the project packages: only .py and .json (no tests, caches, notes)."""
    files: dict[str, Path] = {}
    for package in packages:
        base = root / package
        if not base.is_dir():
            print(f"note: {package}/ not found, nothing to package from it", file=sys.stderr)
            continue
        for path in base.rglob("*"):
            if path.is_file() and path.suffix in PROJECT_SUFFIXES and "__pycache__" not in path.parts:
                files[path.relative_to(root).as_posix()] = path
    return files


# Data of dependencies that sluice never loads. phonenumbers ships the geocoder's place names, carrier
# names and time zones per number range (about 45 MB unpacked, 6.5 MB of the zip); redaction uses only its
# matcher, which reads ``phonenumbers/data`` and ``shortdata``. ``tests/tooling/test_build.py`` checks the
# matcher still works without these folders.
UNUSED_DEPENDENCY_DATA = ("phonenumbers/geodata", "phonenumbers/carrierdata", "phonenumbers/tzdata")


def dependency_files(deps: Path) -> dict[str, Path]:
    """Archive name -> file for the installed dependencies, less console scripts, bytecode caches
    and ``UNUSED_DEPENDENCY_DATA``."""
    files: dict[str, Path] = {}
    for path in deps.rglob("*"):
        rel = path.relative_to(deps)
        # bin/ holds console scripts with this machine's interpreter path: useless in Lambda.
        if (
            path.is_file()
            and "__pycache__" not in rel.parts
            and rel.parts[0] != "bin"
            and path.suffix != ".pyc"
            and not rel.as_posix().startswith(tuple(d + "/" for d in UNUSED_DEPENDENCY_DATA))
        ):
            files[rel.as_posix()] = path
    return files


def runtime_python(name: str) -> str | None:
    """The interpreter that compiles bytecode for the runtime: ``name`` if it runs and is Python 3.12,
    else the newest pyenv-installed 3.12 (pyenv's shim fails when 3.12 is not the selected version)."""
    candidates = [shutil.which(name) or name]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    candidates += [str(p) for p in sorted(pyenv.glob(f"{PYTHON_VERSION}.*/bin/python{PYTHON_VERSION}"))[::-1]]
    for exe in candidates:
        try:
            probe = subprocess.run(  # noqa: S603 (an interpreter the user named, fixed arguments)
                [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                check=False,
            )
        except OSError:
            continue
        if probe.returncode == 0 and probe.stdout.strip() == PYTHON_VERSION:
            return exe
    return None


def with_bytecode(files: dict[str, Path], python: str, staging: Path) -> dict[str, Path]:
    """``files`` plus ``__pycache__/*.cpython-3XX.pyc`` for each .py, compiled by ``python``.

    The files are copied into ``staging`` in their archive layout, compiled there as unchecked-hash
    .pyc (no timestamps, the source is never re-read), with ``/var/task`` as the path tracebacks name.
    """
    for name, path in files.items():
        dest = staging / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    subprocess.run([python, "-c", _COMPILE, str(staging), LAMBDA_TASK_ROOT], check=True)  # noqa: S603
    out = dict(files)
    for pyc in staging.rglob("*.pyc"):
        out[pyc.relative_to(staging).as_posix()] = pyc
    return out


def write_zip(out: Path, files: dict[str, Path]) -> None:
    tmp = out.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            executable = os.access(files[name], os.X_OK) and files[name].suffix in {".so", ""}
            info.external_attr = ((0o755 if executable else 0o644) | 0o100000) << 16
            info.create_system = 3  # Unix, whatever machine builds it
            zf.writestr(info, files[name].read_bytes(), compresslevel=9)
    tmp.replace(out)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--arch", default=os.environ.get("ARCH") or "arm64", choices=sorted(PLATFORMS))
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--cache", type=Path, default=ROOT / "build" / "lambda")
    parser.add_argument(
        "--python",
        default=os.environ.get("LAMBDA_PYTHON") or f"python{PYTHON_VERSION}",
        help=f"interpreter that compiles the bytecode (must be Python {PYTHON_VERSION})",
    )
    args = parser.parse_args(argv)

    requirements = runtime_requirements(ROOT / "pyproject.toml")
    deps = install_dependencies(requirements, args.arch, ROOT / "constraints.txt", args.cache)
    files = dependency_files(deps)
    ours = project_files(ROOT)
    clash = sorted(set(files) & set(ours))
    if clash:
        raise SystemExit(f"project files clash with dependency files: {clash[:5]}")
    files.update(ours)

    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"sluice-lambda-{args.arch}.zip"
    python = runtime_python(args.python)
    with tempfile.TemporaryDirectory(prefix="sluice-build-") as staging:
        if python is None:
            print(
                f"note: no Python {PYTHON_VERSION} interpreter at {args.python!r} (set LAMBDA_PYTHON): "
                "the zip has no bytecode, so each cold start compiles the sources",
                file=sys.stderr,
            )
        else:
            files = with_bytecode(files, python, Path(staging))
        write_zip(out, files)
    print(f"dependencies: {', '.join(requirements)} (boto3/botocore: provided by the Lambda runtime)")
    print(f"bytecode: {f'compiled by {python}' if python else 'none'}")
    print(
        f"{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}  {out.stat().st_size:,} bytes  "
        f"{len(files)} files ({len(ours)} project)  sha256 {sha256(out)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
