"""Run every benchmark in bench/ (``bench_*.py``) one after the other, with the arguments bench/README.md quotes.

Usage: ``python bench/run_all.py [--quick]``. ``--quick`` runs each on the tiny fleet of its smoke test
(tests/bench/test_bench_smoke.py): seconds instead of minutes, figures only good for checking that they print.
Each benchmark is also runnable alone; see bench/README.md for the command and what it measures.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: The README's command for each benchmark (scripts not listed run with their defaults).
ARGS = {
    "bench_sweep.py": ["--processes", "2"],
}
#: The smoke tests' tiny fleets.
QUICK = {
    "bench_sweep.py": ["--buckets", "60", "--latency-ms", "2", "--concurrency", "8", "--naive-sample", "6",
                       "--drift", "0.1"],
    "bench_call_costs.py": ["--buckets", "60", "--repeat", "15"],
    "bench_functions.py": ["--events", "6", "--latency-ms", "30", "--overhead-runs", "3", "--buckets", "3",
                           "--import-repeats", "1"],
    "bench_verify.py": ["--buckets", "3", "--domains", "2", "--cdn", "2"],
    "bench_hostile_tls.py": ["--cases", "looped-chain"],
}


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    here = Path(__file__).resolve().parent
    failures = 0
    print(f"load average {os.getloadavg()[0]:.1f} (these machines are shared: compare ratios within one run)")
    for script in sorted(here.glob("bench_*.py")):
        args = (QUICK if quick else ARGS).get(script.name, [])
        if quick and script.name not in QUICK:
            continue
        print(f"\n### {script.name} {' '.join(args)}", flush=True)
        code = subprocess.call([sys.executable, str(script), *args], cwd=here.parent)
        if code != 0:
            failures += 1
            print(f"### {script.name} exited with {code}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
