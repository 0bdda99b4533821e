"""``make package``: one zip per function (handler + tlsguard + pinned dependencies + policy), no localcloud, no tests.

    python deploy/package.py                      # for s.yaml's runtime (python3.12): dist/<function>.zip
    python deploy/package.py --python 3.10        # for python3.10: dist/python3.10/<function>.zip

Dependencies are built once per Python version into a local wheel directory (``build/wheels``, the only step
that needs the package index) and installed from it with ``pip --no-index --find-links``; both are cached under
``build/`` and rebuilt only when the requirements or constraints change. Each zip holds, at its root, ``index.py``
(FC's ``index.handler``), the ``tlsguard`` package, the dependencies and the policy as ``tlsguard.yaml``.
Size budget: SIZE_BUDGET_BYTES per zip (README, "Packaging").
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("sweep", "check", "on_change", "webhook", "failed", "cert_renewal")
REQUIREMENTS = ROOT / "deploy" / "requirements-fc.txt"
#: The sweep also needs the FC 3.0 SDK (it fans out with InvokeFunction); the others stay smaller without it.
FANOUT_REQUIREMENTS = ROOT / "deploy" / "requirements-fc-fanout.txt"
FANOUT_FUNCTIONS = frozenset({"sweep"})
#: Every function that runs the lifecycle over custom domains or CDN domains also needs the CDN/CAS RPC SDK; so does
#: failed, which wires the same ports (the trust store it loads needs cryptography, which comes with that SDK).
CDN_REQUIREMENTS = ROOT / "deploy" / "requirements-fc-cdn.txt"
CDN_FUNCTIONS = frozenset({"check", "on_change", "webhook", "cert_renewal", "failed"})
CONSTRAINTS = ROOT / "constraints.txt"
DEFAULT_POLICY = ROOT / "examples" / "tlsguard.yaml"
DEFAULT_RUNTIME = "3.12"
#: Budget per function zip (compressed). FC accepts far more; this keeps cold starts and uploads small.
SIZE_BUDGET_BYTES = 16 * 1024 * 1024
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "py.typed", "tests", "test")


def find_python(version: str) -> str:
    """An interpreter for ``version``: pyenv's, else ``python<version>`` on PATH, else this one if it matches."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for candidate in sorted(pyenv.glob(f"{version}.*/bin/python"), reverse=True):
        return str(candidate)
    found = shutil.which(f"python{version}")
    if found:
        return found
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    raise SystemExit(f"package: no python{version} found (pyenv or PATH)")


def _stamp(requirements: Path) -> str:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes() + requirements.read_bytes() + CONSTRAINTS.read_bytes())
    return digest.hexdigest()[:16]


def _run(command: list[str]) -> None:
    print("  $ " + " ".join(command), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def wheelhouse(python: str, version: str, build: Path) -> Path:
    """Build (once) every wheel the functions need for ``version`` into ``build/wheels``: the only online step."""
    tag = "py" + version.replace(".", "")
    wheels = build / "wheels"  # one directory: pure wheels are shared, binary ones carry their Python tag
    marker = wheels / f".stamp-{tag}-{_stamp(FANOUT_REQUIREMENTS)}-{_stamp(CDN_REQUIREMENTS)}"
    if not marker.exists():
        wheels.mkdir(parents=True, exist_ok=True)
        _run([python, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--use-pep517", "-w", str(wheels),
              "-c", str(CONSTRAINTS), "-r", str(FANOUT_REQUIREMENTS), "-r", str(CDN_REQUIREMENTS)])
        marker.touch()
    return wheels


def site_packages(python: str, version: str, build: Path, requirements: Path = REQUIREMENTS) -> Path:
    """Dependencies for ``version`` installed into ``build/site-py3XX-<set>`` with ``pip --no-index`` (cached)."""
    tag = "py" + version.replace(".", "")
    site = build / f"site-{tag}-{requirements.stem}"
    marker = site / f".stamp-{_stamp(requirements)}"
    if marker.exists():
        return site
    wheels = wheelhouse(python, version, build)
    shutil.rmtree(site, ignore_errors=True)
    _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index", "--find-links",
          str(wheels), "--target", str(site), "-c", str(CONSTRAINTS), "-r", str(requirements)])
    marker.touch()
    return site


def _inputs_digest(name: str, site: Path, policy: Path) -> str:
    """What a function's zip is made of: its dependency set, tlsguard's sources, its index.py and the policy."""
    digest = hashlib.sha256(site.name.encode() + "".join(sorted(p.name for p in site.glob(".stamp-*"))).encode())
    sources = sorted((ROOT / "shared" / "tlsguard").rglob("*"))
    extra: list[Path] = []
    for path in [*sources, ROOT / "functions" / name / "index.py", policy, *extra, Path(__file__)]:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def build_function(name: str, site: Path, policy: Path, staging: Path, out: Path) -> Path:
    """Stage and zip one function (skipped when the zip already holds exactly these inputs); returns the zip."""
    target = out / f"{name}.zip"
    recorded = target.with_suffix(".zip.inputs")
    inputs = _inputs_digest(name, site, policy)
    if target.exists() and recorded.exists() and recorded.read_text() == inputs:
        return target
    root = staging / name
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(site, root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".stamp-*", "bin", "SelfTest",
                                                             "tests"))
    shutil.copytree(ROOT / "shared" / "tlsguard", root / "tlsguard", ignore=_SKIP)
    shutil.copy2(ROOT / "functions" / name / "index.py", root / "index.py")
    shutil.copy2(policy, root / "tlsguard.yaml")
    out.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(str(path.relative_to(root)), date_time=(2020, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    os.replace(tmp, target)
    recorded.write_text(inputs)
    forbidden = [n for n in zipfile.ZipFile(target).namelist() if n.startswith(("localcloud/", "tests/"))]
    if forbidden:
        raise SystemExit(f"package: {target} contains {forbidden[:3]}")
    return target


def package(version: str = DEFAULT_RUNTIME, *, policy: Path = DEFAULT_POLICY, build: Path = ROOT / "build",
            dist: Path = ROOT / "dist", functions: tuple[str, ...] = FUNCTIONS) -> dict[str, Path]:
    """Build every function's zip for Python ``version``; returns {function: zip path}.

    Holds an exclusive lock on ``build/.package.lock``: concurrent builds (pytest-xdist workers) take turns
    instead of installing into the same directories at once.
    """
    import fcntl

    build.mkdir(parents=True, exist_ok=True)
    with open(build / ".package.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _package(version, policy=policy, build=build, dist=dist, functions=functions)


def _package(version: str, *, policy: Path, build: Path, dist: Path, functions: tuple[str, ...]) -> dict[str, Path]:
    python = find_python(version)
    def site_for(name: str) -> Path:
        if name in FANOUT_FUNCTIONS:
            return site_packages(python, version, build, FANOUT_REQUIREMENTS)
        if name in CDN_FUNCTIONS:
            return site_packages(python, version, build, CDN_REQUIREMENTS)
        return site_packages(python, version, build)

    out = dist if version == DEFAULT_RUNTIME else dist / f"python{version}"
    staging = build / "package" / f"py{version.replace('.', '')}"
    built = {name: build_function(name, site_for(name), policy, staging, out) for name in functions}
    over = {name: path.stat().st_size for name, path in built.items() if path.stat().st_size > SIZE_BUDGET_BYTES}
    if over:
        raise SystemExit(f"package: over the {SIZE_BUDGET_BYTES} byte budget: {over}")
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=DEFAULT_RUNTIME, help="target runtime version (3.10 or 3.12)")
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY, help="policy file packaged as tlsguard.yaml")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    args = parser.parse_args(argv)
    built = package(args.python, policy=args.policy, dist=args.dist)
    for path in built.values():
        size = path.stat().st_size
        print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {size / 1024 / 1024:.2f} MiB "
              f"(budget {SIZE_BUDGET_BYTES / 1024 / 1024:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
