"""What one bucket costs in CPU: a TLS handshake to a new bucket host and a kept-alive SDK call, on each side.

Usage: ``python bench/bench_call_costs.py [--buckets 3000] [--repeat 1000]``

The sweep benchmark is CPU-bound on small machines; this one says where that CPU goes. It starts
``python -m localcloud serve`` in its own process (no latency fault), then, one call after the other in this
process, measures client CPU (``time.process_time``) and localcloud CPU (``/proc``) per operation:

1. a bare TLS handshake (CPython ``ssl``, certificate and hostname verified) to ``--repeat`` distinct bucket
   hosts, closed at once: the price of every bucket being its own virtual host;
2. GetBucketHttpsConfig, GetBucketPolicy and GetBucketEncryption through tlsguard's OSS adapter
   (alibabacloud-oss-v2 on the urllib3 transport, retries, error mapping) on one kept-alive connection;
3. GetBucketHttpsConfig through the adapter on ``--repeat`` distinct bucket hosts (handshake plus call);
4. one compliant bucket through the whole lifecycle (``tlsguard.lifecycle.Lifecycle.run``, as the sweep runs it:
   resolve, three facet reads on a new bucket host, evaluate, result) against the same three calls made bare on
   another new bucket host, interleaved bucket by bucket (``--repeat`` of each): the difference is what the
   lifecycle adds per bucket;
5. the per-bucket estimate (one new-host call plus two kept-alive calls) and the CPU per call that allows, next to
   what 1.5x the I/O bound at 20 ms and concurrency 32 allows on this machine's cores.

Prints a table and one JSON line (``{"bench": "call_costs", ...}``). Figures are per operation, in ms of CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "shared")]

from bench.bench_sweep import POLICY, process_cpu_seconds, start_localcloud  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable


def measure(server_pid: int, count: int, run: Callable[[], object]) -> dict[str, float]:
    """Client and localcloud CPU (and wall) per operation, in ms, for ``count`` operations done by ``run``."""
    server_before, client_before = process_cpu_seconds(server_pid), time.process_time()
    wall_before = time.perf_counter()
    run()
    return {"client_ms": round(1000 * (time.process_time() - client_before) / count, 3),
            "localcloud_ms": round(1000 * (process_cpu_seconds(server_pid) - server_before) / count, 3),
            "wall_ms": round(1000 * (time.perf_counter() - wall_before) / count, 3)}


def lifecycle_against_bare(server_pid: int, lifecycle: Any, trigger: Any, adapter: Any, bare_refs: list[Any],
                           lifecycle_refs: list[Any]) -> dict[str, dict[str, float]]:
    """One compliant bucket through the lifecycle against the same three calls made bare on another new bucket
    host, interleaved bucket by bucket so that both see the same load (this machine is shared)."""
    from tlsguard.model import TargetKind, TargetRef

    spent = {"bare": [0.0, 0.0, 0.0], "lifecycle": [0.0, 0.0, 0.0]}  # client CPU, localcloud CPU, wall

    def timed(side: str, run: Callable[[], object]) -> None:
        server, client, wall = process_cpu_seconds(server_pid), time.process_time(), time.perf_counter()
        run()
        figures = spent[side]
        figures[0] += time.process_time() - client
        figures[1] += process_cpu_seconds(server_pid) - server
        figures[2] += time.perf_counter() - wall

    def bare(ref: Any) -> None:
        adapter.get_https_config(ref)
        adapter.get_policy(ref)
        adapter.get_encryption(ref)

    def through(ref: Any) -> None:
        result = lifecycle.run(TargetRef(TargetKind.OSS_BUCKET, ref.name, ref.region, lifecycle.ctx.ports.account),
                               trigger=trigger)
        assert result.outcome.value == "compliant", result.reason

    for first, second in zip(bare_refs, lifecycle_refs, strict=True):
        timed("bare", lambda ref=first: bare(ref))
        timed("lifecycle", lambda ref=second: through(ref))
    count = max(1, len(bare_refs))
    return {side: {"client_ms": round(1000 * f[0] / count, 3), "localcloud_ms": round(1000 * f[1] / count, 3),
                   "wall_ms": round(1000 * f[2] / count, 3)} for side, f in spent.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--buckets", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=1000)
    args = parser.parse_args()
    repeat = min(args.repeat, args.buckets // 4)
    from tlsguard.adapters.oss import AliyunOss
    from tlsguard.lifecycle import Lifecycle
    from tlsguard.model import TargetKind, TargetRef, Trigger
    from tlsguard.policy.loader import load_policy
    from tlsguard.ports import BucketRef
    from tlsguard.retry import RetryPolicy
    from tlsguard.wiring import build, oss_connection
    from tlsguard.wiring import context as run_context

    with tempfile.TemporaryDirectory(prefix="bench-costs-") as tmp:
        server, endpoints = start_localcloud(args.buckets, 0.0, Path(tmp))
        try:
            adapter = AliyunOss(oss_connection(str(Path(tmp) / "endpoints.json")), retry=RetryPolicy(attempts=1))
            refs = [b for b in adapter.list_buckets() if b.name != "tlsguard-state"]
            context = ssl.create_default_context(cafile=endpoints["ca_bundle"])
            port = int(endpoints["tls_port"])

            def handshakes() -> None:
                for ref in refs[:repeat]:
                    with socket.create_connection(("127.0.0.1", port)) as raw, \
                            context.wrap_socket(raw, server_hostname=f"{ref.name}.oss-{ref.region}.aliyuncs.com"):
                        pass

            warm = BucketRef(refs[0].name, refs[0].region)
            adapter.get_https_config(warm)
            policy_file = Path(tmp) / "tlsguard.yaml"
            policy_file.write_text(textwrap.dedent(POLICY))
            wiring = build(load_policy(policy_file), localcloud=str(Path(tmp) / "endpoints.json"), concurrency=1)
            lifecycle = Lifecycle(run_context(wiring, apply=True))
            lifecycle.ctx.open_targets, lifecycle.ctx.pending_targets = set(), set()  # listed once per run
            trigger = Trigger("cli", actor="bench")
            lifecycle.run(TargetRef(TargetKind.OSS_BUCKET, warm.name, warm.region, wiring.ports.account),
                          trigger=trigger)  # imports and first client outside the figures
            paired = lifecycle_against_bare(server.pid, lifecycle, trigger, adapter, refs[2 * repeat:3 * repeat],
                                            refs[3 * repeat:4 * repeat])
            results = {
                "tls_handshake_new_host": measure(server.pid, repeat, handshakes),
                "https_config_kept_alive": measure(server.pid, repeat,
                                                   lambda: [adapter.get_https_config(warm) for _ in range(repeat)]),
                "policy_kept_alive": measure(server.pid, repeat,
                                             lambda: [adapter.get_policy(warm) for _ in range(repeat)]),
                "encryption_kept_alive": measure(server.pid, repeat,
                                                 lambda: [adapter.get_encryption(warm) for _ in range(repeat)]),
                "https_config_new_host": measure(server.pid, repeat, lambda: [
                    adapter.get_https_config(ref) for ref in refs[repeat:2 * repeat]]),
                "bare_bucket_new_host": paired["bare"],
                "lifecycle_bucket_new_host": paired["lifecycle"],
            }
        finally:
            server.terminate()
            server.wait(timeout=30)
    cores = os.cpu_count() or 1
    per_bucket = {side: results["https_config_new_host"][side] + 2 * results["https_config_kept_alive"][side]
                  for side in ("client_ms", "localcloud_ms")}
    per_call = round(sum(per_bucket.values()) / 3, 3)
    bare_three = results["bare_bucket_new_host"]["client_ms"]
    lifecycle_over_calls = round(results["lifecycle_bucket_new_host"]["client_ms"] - bare_three, 3)
    allowed = round(1.5 * 20.0 / 32 * cores, 3)  # CPU ms per call that 1.5x the bound leaves on these cores
    print(f"CPU per operation, one after the other, no injected latency ({cores} cores)")
    print(f"  {'operation':<28}{'client ms':>10}{'localcloud ms':>15}{'wall ms':>10}")
    for name, figures in results.items():
        print(f"  {name:<28}{figures['client_ms']:>10.3f}{figures['localcloud_ms']:>15.3f}{figures['wall_ms']:>10.3f}")
    print(f"  per bucket (new-host call + 2 kept-alive calls): client {per_bucket['client_ms']:.2f} ms, "
          f"localcloud {per_bucket['localcloud_ms']:.2f} ms -> {per_call:.2f} ms of CPU per call; 1.5x the I/O "
          f"bound at 20 ms and concurrency 32 allows {allowed:.2f} ms per call on {cores} cores")
    through = results["lifecycle_bucket_new_host"]["client_ms"]
    print(f"  one compliant bucket through the lifecycle: client {through:.2f} ms, {lifecycle_over_calls:+.2f} ms over "
          f"the same three calls made bare ({bare_three:.2f} ms: resolve, evaluate, result, logging)")
    print(json.dumps({"bench": "call_costs", "cores": cores, "repeat": repeat, "operations": results,
                      "per_bucket_ms": {k: round(v, 3) for k, v in per_bucket.items()},
                      "cpu_per_call_ms": per_call, "allowed_per_call_ms_at_1_5x": allowed,
                      "lifecycle_client_ms_over_bare_calls": lifecycle_over_calls}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
