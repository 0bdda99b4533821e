"""Hostile policy files: time and peak memory of ``load_policy`` on each, and rule resolution over many rules.

Run: ``python bench/bench_policy_files.py [--timeout 120] [--targets 2000]`` (from the repository root).

Each file is loaded in its own child process (so one file's peak RSS is not hidden by another's), under an address
space limit of 4 GiB (a runaway load ends in MemoryError instead of taking the shared machine) and a wall-clock
timeout. The child reports the outcome (loaded, ConfigError with its message, or any other exception: a bug), the
seconds ``load_policy`` took and its peak RSS above the interpreter's baseline after imports. Then, in this process,
the policy of many rules just under the size limit is resolved for ``--targets`` buckets: the time per target shows
whether matching grows with rules x targets.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = (ROOT / "examples" / "tlsguard.yaml").read_text()
MIB = 1024 * 1024
_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
from tlsguard.errors import ConfigError
from tlsguard.policy.loader import load_policy
import jsonschema, yaml  # what a load imports anyway: counted in the baseline
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    policy = load_policy(sys.argv[1])
    outcome, detail = "loaded", f"{len(policy.rules)} rules"
except ConfigError as exc:
    outcome, detail = "ConfigError", str(exc)
except BaseException as exc:
    outcome, detail = "BUG " + type(exc).__name__, str(exc)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "detail": detail[:160], "seconds": seconds, "peak_mb": peak / 1024,
                  "delta_mb": (peak - base) / 1024}))
"""


def many_rules(limit_bytes: int) -> str:
    """The example policy plus realistic rules (names, prefix and suffix globs, a region) up to ``limit_bytes``."""
    parts = [EXAMPLE.split("rules:\n")[0], "rules:\n"]
    size = sum(len(p) for p in parts)
    tail = EXAMPLE[EXAMPLE.index("waivers:"):]
    index = 0
    while True:
        if index % 2:
            match = f"names: [team{index:05d}-assets, team{index:05d}-logs]"
        else:
            match = f"globs: ['team{index:05d}-*', '*-svc{index:05d}']\n      regions: [cn-hangzhou]"
        rule = f"  - name: team-{index:05d}-rule\n    match:\n      {match}\n    https_only: true\n"
        if size + len(rule) + len(tail) >= limit_bytes:
            break
        parts.append(rule)
        size += len(rule)
        index += 1
    parts.append(tail)
    return "".join(parts)


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """"Billion laughs": each level a list of ``width`` aliases of the one before (width ** levels leaves)."""
    lines = ['lol0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"lol{level}: &l{level} [{', '.join(f'*l{level - 1}' for _ in range(width))}]")
    body = "\n".join("  " + line for line in lines)
    return f"version: 1\ndefaults: {{https_only: true}}\ncertificates:\n  cdn_https:\n{body}\n"


def hostile_files() -> dict[str, bytes]:
    rng = random.Random(14)
    latin = EXAMPLE.replace("(SEC-88)", "(SEC-88, Zürich)")
    return {
        "alias bomb (9 levels x 9)": alias_bomb().encode(),
        "10 MB of rules": many_rules(10 * MIB).encode(),
        "rules just under 1 MiB": many_rules(MIB - 1024).encode(),
        "UTF-16 with BOM": EXAMPLE.encode("utf-16"),
        "UTF-16-LE without BOM": EXAMPLE.encode("utf-16-le"),
        "Latin-1": latin.encode("latin-1"),
        "random bytes (64 KiB)": rng.randbytes(64 * 1024),
        "deep nesting (100,000 [)": b"version: 1\ndefaults: {}\nx: " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
        "huge scalar (900 KB name)": EXAMPLE.replace("name: backups-sm4", "name: " + "b" * 900_000).encode(),
        "rate limit 1e-300": (EXAMPLE + "\n").replace("GetBucketHttpsConfig: 300",
                                                      "GetBucketHttpsConfig: 1.0e-300").encode(),
        "glob '['": EXAMPLE.replace("names: [acme-prod-backups]", "globs: ['[']").encode(),
        "propagation .nan": EXAMPLE.replace("propagation_minutes: 30", "propagation_minutes: .nan").encode(),
        "5,000-digit integer": EXAMPLE.replace("window_minutes: 60", "window_minutes: " + "9" * 5000).encode(),
    }


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (4 * 1024 * MIB, 4 * 1024 * MIB))


def load_in_child(path: Path, timeout: float) -> dict[str, object]:
    start = time.perf_counter()
    try:
        completed = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(ROOT / "shared")], timeout=timeout,
                                   capture_output=True, text=True, preexec_fn=limit_memory, check=False)
    except subprocess.TimeoutExpired:
        return {"outcome": f"TIMEOUT after {timeout:.0f} s", "detail": "", "seconds": time.perf_counter() - start,
                "peak_mb": None, "delta_mb": None}
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        return {"outcome": f"child died (exit {completed.returncode})", "detail": completed.stderr[-160:],
                "seconds": time.perf_counter() - start, "peak_mb": None, "delta_mb": None}
    result: dict[str, object] = json.loads(lines[-1])
    return result


def resolution(policy_text: str, targets: int) -> dict[str, float]:
    """Resolve ``targets`` bucket names against the many-rules policy: seconds per target."""
    sys.path.insert(0, str(ROOT / "shared"))
    from tlsguard.model import TargetRef
    from tlsguard.policy.loader import parse_policy, resolve

    policy = parse_policy(policy_text, "many-rules.yaml")
    today = dt.date(2026, 12, 1)
    names = [f"team{i * 7:05d}-assets" if i % 2 else f"bucket-{i}" for i in range(targets)]
    start = time.perf_counter()
    matched = 0
    for name in names:
        matched += bool(resolve(policy, TargetRef.bucket_target(name, "cn-hangzhou"), {}, today).rules)
    seconds = time.perf_counter() - start
    return {"rules": len(policy.rules), "targets": targets, "matched": matched, "seconds": seconds,
            "us_per_target": seconds / targets * 1e6}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a child load is abandoned")
    parser.add_argument("--targets", type=int, default=2000, help="buckets resolved against the many-rules policy")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in hostile_files().items():
            path = Path(tmp) / "policy.yaml"
            path.write_bytes(content)
            result = load_in_child(path, args.timeout)
            results[name] = {"bytes": len(content), **result}
            peak = "-" if result["peak_mb"] is None else f"{result['peak_mb']:.0f} MB (+{result['delta_mb']:.0f})"
            print(f"{name:28} {len(content):>10,} B  {result['seconds']:7.2f} s  peak RSS {peak:>16}  "
                  f"{result['outcome']}: {result['detail'][:110]!s}", flush=True)
    resolved = resolution(many_rules(MIB - 1024), args.targets)
    print(f"resolve: {resolved['targets']} buckets x {resolved['rules']} rules in {resolved['seconds']:.2f} s "
          f"({resolved['us_per_target']:.0f} us per bucket, {resolved['matched']} matched a rule)")
    print(json.dumps({"bench": "policy_files", "files": results, "resolve": resolved}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
