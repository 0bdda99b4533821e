"""Live verification cost: connections and wall time to prove (or disprove) that a write is effective.

Usage: ``python bench/bench_verify.py [--buckets 30] [--domains 15] [--cdn 15] [--concurrency 16]``

1. Starts ``python -m localcloud serve`` in its own process (propagation 0 s: a change is served at once) with
   three kinds of endpoint, each drifted so that ``tlsguard apply`` writes and leaves a pending live verification:
   * ``--buckets`` buckets accepting every TLS version and every suite, under a policy of TLS 1.2 + 1.3 with
     strong suites (expectation: versions and cipher classes);
   * ``--domains`` custom domains (one site bucket each) bound to a certificate expiring in 5 days, a valid one
     waiting in CAS (expectation: the SHA-1 of the leaf served);
   * ``--cdn`` CDN domains forcing plain HTTP, under a policy of forced HTTPS and HSTS (expectation: one HTTPS
     request for the HSTS header, one plain request for the redirect).
2. Runs the lifecycle over every target (``runs.discover`` + ``runs.sweep``, as ``tlsguard apply`` does), then
   points the live port at two counting TCP relays (one in front of localcloud's TLS plane, one in front of its
   CDN edge's plain HTTP port) and runs ``verify_live.run_due`` once per kind, ``--concurrency`` at a time.
3. Per kind: verdicts, connections per verification as the verification reports them (``Verification.connections``)
   and as the relays counted them independently (the two must agree), the goal, and wall time.

Goals: one handshake per TLS version to prove plus at most one per cipher class (<= 4 + 2 for a strong-suite
bucket), 1 for a certificate, 1 per HTTP check (2 for HSTS + redirect).

Prints a summary and one JSON line (``{"bench": "verify", ...}``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "shared")]

from bench._localcloud import start_localcloud_process  # noqa: E402
from bench.bench_sweep import ACCOUNT  # noqa: E402
from localcloud.relay import CountingRelay  # noqa: E402

POLICY = """
version: 1
mode: enforce
defaults:
  tls_versions: [TLSv1.2, TLSv1.3]
  cipher_suites: {mode: strong}
state: {bucket: tlsguard-state}
certificates:
  renew_before_days: 30
  cdn_https:
    https_force: true
    hsts: {max_age: 5184000}
verify: {propagation_minutes: 0}
"""
#: Connections a verification may open, per kind (the goal).
GOALS = {"oss-bucket": 6, "oss-cname": 1, "cdn-domain": 2}
GOAL_TEXT = {"oss-bucket": "<= 4 versions + 2 cipher classes", "oss-cname": "1 (the certificate)",
             "cdn-domain": "1 per HTTP check (HSTS + redirect)"}


def https_only(name: str) -> dict[str, Any]:
    return {"Effect": "Deny", "Principal": ["*"], "Action": ["oss:*"],
            "Resource": [f"acs:oss:*:*:{name}", f"acs:oss:*:*:{name}/*"],
            "Condition": {"Bool": {"acs:SecureTransport": ["false"]}}}


def bucket(name: str, *, legacy: bool, cnames: list[dict[str, str]] | None = None) -> dict[str, Any]:
    https = {"tls": {"enable": True, "versions": ["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]}} if legacy else \
        {"tls": {"enable": True, "versions": ["TLSv1.2", "TLSv1.3"]}, "cipher_suite": {"enable": True, "strong": True}}
    item: dict[str, Any] = {"name": name, "region": "cn-hangzhou", "https_config": https,
                            "policy": {"Version": "1", "Statement": [https_only(name)]},
                            "encryption": {"algorithm": "AES256"}}
    if cnames:
        item["cnames"] = cnames
    return item


def seed(buckets: int, domains: int, cdn: int) -> dict[str, Any]:
    """Drifted endpoints of each kind; certificates are wildcards (a few mints serve every domain)."""
    return {
        "region": "cn-hangzhou", "propagation_seconds": 0, "accounts": [ACCOUNT],
        "certificates": [
            {"name": "cname-old", "kind": "expiring", "days": 5, "domains": ["*.cname.example.test"]},
            {"name": "cname-new", "kind": "valid", "domains": ["*.cname.example.test"]},
            {"name": "cdn-leaf", "kind": "valid", "domains": ["*.cdn.example.test"]}],
        "buckets": [{"name": "tlsguard-state"},
                    *(bucket(f"verify-{i:03d}", legacy=True) for i in range(buckets)),
                    *(bucket(f"site-{i:03d}", legacy=False, cnames=[
                        {"domain": f"d{i:03d}.cname.example.test", "certificate": "cname-old"}])
                      for i in range(domains))],
        "cdn_domains": [{"name": f"e{i:03d}.cdn.example.test", "certificate": "cdn-leaf",
                         "configs": {"http_force": {"enable": "on"}}} for i in range(cdn)],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--buckets", type=int, default=30, help="strong-suite buckets to verify")
    parser.add_argument("--domains", type=int, default=15, help="custom-domain certificates to verify")
    parser.add_argument("--cdn", type=int, default=15, help="CDN domains (HSTS + redirect) to verify")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    os.environ.setdefault("TLSGUARD_LOG_LEVEL", "ERROR")
    import yaml
    from tlsguard import runs, verify_live
    from tlsguard.adapters.live import LiveProber
    from tlsguard.lifecycle import Lifecycle
    from tlsguard.model import LiveVerification, TargetKind, Trigger
    from tlsguard.policy.loader import load_policy
    from tlsguard.wiring import build, context

    wanted = {"oss-bucket": args.buckets, "oss-cname": args.domains, "cdn-domain": args.cdn}
    per_kind: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        workdir = Path(tmp)
        seed_file = workdir / "seed.yaml"
        seed_file.write_text(yaml.safe_dump(seed(args.buckets, args.domains, args.cdn)))
        server, endpoints = start_localcloud_process(seed_file, workdir, "--propagation-seconds", "0", timeout=120)
        relays: list[CountingRelay] = []
        try:
            policy_file = workdir / "tlsguard.yaml"
            policy_file.write_text(textwrap.dedent(POLICY))
            wiring = build(load_policy(policy_file), localcloud=str(workdir / "endpoints.json"),
                           concurrency=args.concurrency)
            ctx = context(wiring, apply=True)
            lifecycle = Lifecycle(ctx)
            runs.start_run(lifecycle)
            applied = list(runs.sweep(lifecycle, runs.discover(ctx, rediscover=True, concurrency=args.concurrency),
                                      concurrency=args.concurrency, trigger=Trigger("cli", actor="bench")))
            remediated: dict[str, int] = {}
            for result in applied:
                if result.outcome.value == "remediated":
                    remediated[result.target.kind.value] = remediated.get(result.target.kind.value, 0) + 1
            assert ctx.state is not None
            pending = ctx.state.pending.all()
            host = str(endpoints.get("host") or "127.0.0.1")
            tls_relay = CountingRelay((host, int(endpoints["tls_port"])))
            http_relay = CountingRelay((host, int(endpoints["edge_http_port"])))
            relays = [tls_relay, http_relay]
            ctx.ports.live = LiveProber(connect=("127.0.0.1", tls_relay.port),
                                        http_connect=("127.0.0.1", http_relay.port))
            for kind in TargetKind:
                keys = {p.target.key for p in pending if p.target.kind is kind}
                tls_before, http_before = tls_relay.accepts, http_relay.accepts
                started = time.perf_counter()
                verifications = verify_live.run_due(ctx, only=keys, concurrency=args.concurrency) if keys else []
                wall = time.perf_counter() - started
                time.sleep(0.05)  # let the relays' accept loops count the last connections
                relayed = (tls_relay.accepts - tls_before) + (http_relay.accepts - http_before)
                reported = [v.connections for v in verifications]
                count = len(verifications)
                per_kind[kind.value] = {
                    "endpoints": wanted[kind.value], "remediated": remediated.get(kind.value, 0),
                    "verifications": count,
                    "effective": sum(v.verdict is LiveVerification.EFFECTIVE for v in verifications),
                    "details": sorted({v.detail for v in verifications})[:3],
                    "connections_reported": sum(reported),
                    "connections_relayed": relayed,
                    "tls_connections_relayed": tls_relay.accepts - tls_before,
                    "http_connections_relayed": http_relay.accepts - http_before,
                    "connections_per_verification": round(sum(reported) / count, 2) if count else None,
                    "max_connections_per_verification": max(reported) if reported else None,
                    "relayed_per_verification": round(relayed / count, 2) if count else None,
                    "goal_max_connections": GOALS[kind.value], "goal": GOAL_TEXT[kind.value],
                    "goal_met": bool(reported) and max(reported) <= GOALS[kind.value],
                    "wall_seconds": round(wall, 3),
                    "wall_ms_per_verification": round(1000 * wall / count, 1) if count else None,
                }
        finally:
            for relay in relays:
                relay.close()
            server.terminate()
            server.wait(timeout=30)
    load = os.getloadavg()[0]
    print(f"live verification, {args.concurrency} at a time, against localcloud (propagation 0 s); load average "
          f"{load:.1f}")
    print(f"  {'kind':<12}{'verified':>9}{'effective':>10}{'conns/verif':>13}{'max':>5}{'relayed/verif':>15}"
          f"{'goal':>6}{'wall s':>8}{'ms/verif':>10}")  # ms/verif: wall / verifications (they run at once)
    for name, row in per_kind.items():
        print(f"  {name:<12}{row['verifications']:>9}{row['effective']:>10}"
              f"{row['connections_per_verification'] or 0:>13}{row['max_connections_per_verification'] or 0:>5}"
              f"{row['relayed_per_verification'] or 0:>15}{row['goal_max_connections']:>6}{row['wall_seconds']:>8}"
              f"{row['wall_ms_per_verification'] or 0:>10}   {row['goal']}{'' if row['goal_met'] else '  NOT MET'}")
    print(json.dumps({"bench": "verify", "concurrency": args.concurrency, "load_average": round(load, 2),
                      "kinds": per_kind}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
