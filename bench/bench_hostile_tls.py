"""Hostile certificates, chains and TLS/HTTP replies: wall time and peak memory of each step that meets them.

Usage: ``python bench/bench_hostile_tls.py [--cases looped-chain,mesh-40] [--guard 90] [--analysis]
[--tree PATH] [--no-tracemalloc] [--json]`` (from the repository root).

The inputs are those of tests/hardening/test_hostile_tls.py, built and served by its own builders and servers
(imported, in this process): a looped chain A -> B -> A, meshes of 20 (the most that path building searches), 21
and 40 cross-signed certificates, a chain of 100 certificates, a 200 KB certificate, bytes that are not DER, a TLS
server that stalls, one that dribbles a byte every 20 ms, an HTTP endpoint sending headers without end (and one
dribbling them), and a renewal run (``tlsguard apply --kind oss-cname --kind cdn-domain`` against an in-process
localcloud) over four domains where one serves bad DER. Each case's step runs in its own child process, so one
case's peak RSS is not hidden by another's and the servers' memory is not counted:

* chains served over TLS: the live view (``collect_live``, a real handshake with SNI) then every ``cert.*`` check
  (``evaluate``, as the lifecycle judges a domain; the chain analysis is part of it);
* stalling/dribbling TLS servers: the live view alone; HTTP endpoints: ``LiveProber.http_answer`` (plain HTTP);
* the renewal run: the whole ``apply`` command, in-process (click's test runner).

``--analysis`` measures the chain analysis alone (``analyse_chain``) on the same certificates, as CAS or any other
source would hand them over (no server, no handshake): the certificate cases only.

Per case, a child reports the outcome (the finding, status or error the step ended with; ``BUG <exception>`` when
it raised), the step's seconds and the child's peak RSS (``VmHWM``; in brackets above its baseline after imports;
not ``ru_maxrss``, which Linux makes at least the parent's peak, see :func:`run_child`). A second child, on fresh
inputs, runs the step under tracemalloc for the peak of the Python heap (tracing slows Python-heavy steps such as
the renewal run and adds to the RSS, so it is kept out of the first; ``--no-tracemalloc`` skips it). A child still
running after ``--guard`` seconds is killed and reported as ``>90 s (killed)`` (no second child then).

``--tree PATH`` runs the steps with tlsguard (and the tests' helpers for judging) from another checkout, e.g. a
``git worktree`` of the code before the hardening; the inputs and servers always come from this checkout.

Prints a table and one JSON line (``{"bench": "hostile_tls", ...}``); ``--json`` prints only the JSON document.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "shared")]

from cryptography.hazmat.primitives import serialization  # noqa: E402

from tests.hardening import test_hostile_tls as hostile  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: What ``serve_not_der`` puts in its Certificate message (a truncated SEQUENCE, then junk), for ``--analysis``.
NOT_DER = b"\x30\x82\x04\x00" + b"not a certificate, just bytes " * 8

# The child: imports everything the step needs (counted in the baseline), prints the baseline, runs the step once.
_CHILD = r"""
import json, os, sys, time, tracemalloc
spec = json.loads(open(sys.argv[1]).read())
sys.path[:0] = [os.path.join(spec["tree"], "shared"), spec["tree"]]
import datetime as dt
import encodings.idna  # a connection to a host name imports it on first use: counted in the baseline too
from cryptography import x509
import cryptography.x509.verification
import tlsguard, tlsguard.probe, tlsguard.checks
from tlsguard.adapters.live import LiveProber
from tlsguard.certs.chain import TrustStore, analyse_chain
from tlsguard.certs.live import collect_live
from tests.tlsguard.certs._support import WWW, judge
if spec["step"] == "renewal":
    from click.testing import CliRunner
    from tlsguard.cli import cli
def hwm_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


print(json.dumps({"baseline_mb": hwm_mb(), "tlsguard": os.path.dirname(tlsguard.__file__)}), flush=True)
trust = TrustStore(roots=tuple(x509.load_pem_x509_certificate(p.encode()) for p in spec["roots"]), source="bench")
now = dt.datetime.now(dt.timezone.utc)
address = ("127.0.0.1", spec["port"])
timeout = spec["timeout"]


def first_line(text):
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def live_step():
    live = collect_live(WWW.name, connect=address, timeout=timeout)
    findings = judge((), trust, live=live, now=now)
    drifted = [f for f in findings if f.severity.name != "INFO"]
    chain = [f for f in drifted if f.check == "cert.chain"] or [f for f in drifted if f.check == "cert.reachable"]
    got = f"({len(live.chain_pem)} read)"
    if chain:
        return f"{chain[0].check} {chain[0].alert_state.split(':')[0]} {got}", chain[0].message
    return f"{', '.join(sorted({f.check for f in drifted})) or 'no drift'} {got}", live.error or ""


def analysis_step():
    analysis = analyse_chain(tuple(spec["pem"]), trust, now)
    return analysis.status.value, analysis.error or ""


def tls_read_step():
    live = collect_live(WWW.name, connect=address, timeout=timeout)
    return ("error" if live.error else f"{len(live.chain_pem)} certs read"), live.error or ""


def http_step():
    prober = LiveProber(connect=address, http_connect=address, timeout=timeout)
    status, headers, error = prober.http_answer(WWW.name, https=False)
    return ("error" if error else f"HTTP {status}"), error or f"{len(headers)} headers"


def renewal_step():
    result = CliRunner().invoke(cli, ["apply", "--policy", spec["policy"], "--localcloud", spec["endpoints"],
                                      "--kind", "oss-cname", "--kind", "cdn-domain", "--json"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    try:
        document = json.loads(result.stdout)
    except ValueError:
        return f"exit {result.exit_code}, no JSON report", first_line(result.output[-300:])
    items = {item["target"]["name"]: item for item in document["targets"]}
    counts = {}
    for item in items.values():
        counts[item["outcome"]] = counts.get(item["outcome"], 0) + 1
    outcomes = f"{len(items)} ended: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    if "Traceback" in result.output:
        outcomes += " (a traceback printed)"
    bad = items.get("bad.example.com", {})
    chain = [f["message"] for f in bad.get("findings", []) if f["check"] == "cert.chain"]
    return outcomes, (chain[0] if chain else bad.get("reason", ""))


step = {"live": live_step, "analysis": analysis_step, "tls-read": tls_read_step, "http": http_step,
        "renewal": renewal_step}[spec["step"]]
if spec["tracemalloc"]:
    tracemalloc.start()
start = time.perf_counter()
try:
    outcome, detail = step()
except BaseException as exc:
    outcome, detail = "BUG " + type(exc).__name__, first_line(str(exc))
seconds = time.perf_counter() - start
traced = tracemalloc.get_traced_memory()[1] / 1024 / 1024 if spec["tracemalloc"] else None
tracemalloc.stop()
print(json.dumps({"outcome": outcome, "detail": detail, "seconds": seconds, "tracemalloc_mb": traced,
                  "peak_rss_mb": hwm_mb()}), flush=True)
"""


@dataclass(frozen=True)
class Case:
    """One hostile input: what it is, the step that meets it, and how it is served (entered in this process)."""

    what: str
    step: str  # live | tls-read | http | renewal (``--analysis``: analysis, for the cases with ``pem``)
    serve: Callable[[Path], contextlib.AbstractContextManager[dict[str, Any]]]
    pem: Callable[[], tuple[list[str], list[str]]] | None = None  # (chain, roots) for ``--analysis``


def _roots(served: hostile.Served) -> list[str]:
    return [root.public_bytes(serialization.Encoding.PEM).decode() for root in served.trust.roots]


def _served_chain(build: Callable[[], hostile.Served]) -> Callable[[Path], contextlib.AbstractContextManager[
        dict[str, Any]]]:
    @contextlib.contextmanager
    def serve(_: Path) -> Iterator[dict[str, Any]]:
        served = build()
        with hostile.tls_server(served) as port:
            yield {"port": port, "roots": _roots(served), "served": len(served.chain)}

    return serve


def _raw(handler: Callable[..., None], roots: bool = False) -> Callable[[Path], contextlib.AbstractContextManager[
        dict[str, Any]]]:
    @contextlib.contextmanager
    def serve(_: Path) -> Iterator[dict[str, Any]]:
        with hostile.raw_server(handler) as port:
            yield {"port": port, "roots": _roots(hostile.good_chain()) if roots else []}

    return serve


def _chain_pem(build: Callable[[], hostile.Served]) -> Callable[[], tuple[list[str], list[str]]]:
    def pem() -> tuple[list[str], list[str]]:
        served = build()
        return list(served.pem), _roots(served)

    return pem


def _not_der_pem() -> tuple[list[str], list[str]]:
    text = base64.encodebytes(NOT_DER).decode()
    return [f"-----BEGIN CERTIFICATE-----\n{text}-----END CERTIFICATE-----\n"], _roots(hostile.good_chain())


@contextlib.contextmanager
def _renewal(workdir: Path) -> Iterator[dict[str, Any]]:
    """localcloud in this process with the renewal seed, bad.example.com's TLS routed to the not-DER server."""
    from localcloud.cloud import LocalCloud, write_endpoints
    from localcloud.pytest_plugin import BASE_SEED
    from tests.tlsguard.certs._support import domain_policy

    cloud = LocalCloud(propagation_seconds=0.0, state_dir=str(workdir / "localcloud"))
    cloud.seed(BASE_SEED)
    cloud.start()
    try:
        cloud.seed(hostile.RENEWAL_SEED)
        endpoints = dict(cloud.endpoints, account_id=cloud.default_account_id)
        endpoints["access_key_id"], endpoints["access_key_secret"] = cloud.default_access_key
        with hostile.raw_server(hostile.serve_not_der) as bad:
            router = hostile.SniRouter((str(endpoints.get("host") or hostile.LOCALHOST), int(endpoints["tls_port"])),
                                       {"bad.example.com": (hostile.LOCALHOST, bad)})
            try:
                routed = workdir / "routed-endpoints.json"
                write_endpoints(routed, {**endpoints, "tls_port": router.port})
                yield {"policy": str(domain_policy(workdir)), "endpoints": str(routed)}
            finally:
                router.stop()
    finally:
        cloud.stop()


CASES: dict[str, Case] = {
    "looped-chain": Case("chain leaf <- A <- B <- A", "live", _served_chain(hostile.looped_chain),
                         _chain_pem(hostile.looped_chain)),
    "mesh-20": Case("20 certificates: 5 CAs cross-signed", "live", _served_chain(lambda: hostile.meshed_chain(20)),
                    _chain_pem(lambda: hostile.meshed_chain(20))),
    "mesh-21": Case("21 certificates: 5 CAs cross-signed", "live", _served_chain(lambda: hostile.meshed_chain(21)),
                    _chain_pem(lambda: hostile.meshed_chain(21))),
    "mesh-40": Case("40 certificates: 5 CAs cross-signed", "live", _served_chain(lambda: hostile.meshed_chain(40)),
                    _chain_pem(lambda: hostile.meshed_chain(40))),
    "chain-100": Case("a chain of 100 certificates", "live", _served_chain(lambda: hostile.long_chain(100)),
                      _chain_pem(lambda: hostile.long_chain(100))),
    "cert-200kb": Case("a leaf with a 200 KB extension", "live", _served_chain(hostile.huge_chain),
                       _chain_pem(hostile.huge_chain)),
    "not-der": Case("Certificate message not DER", "live", _raw(hostile.serve_not_der, roots=True), _not_der_pem),
    "tls-stall": Case("TLS server stalls mid-ServerHello", "tls-read", _raw(hostile.serve_stall)),
    "tls-dribble": Case("TLS flight, 1 byte per 20 ms", "tls-read", _raw(hostile.serve_dribble)),
    "http-endless-headers": Case("HTTP: 1 KB headers without end", "http", _raw(hostile.serve_endless_headers)),
    "http-dribbled-headers": Case("HTTP: headers, 1 byte per 20 ms", "http", _raw(hostile.serve_dribbled_headers)),
    "renewal-bad-der": Case("apply on 4 domains, 1 serving bad DER", "renewal", _renewal),
}


def _vm_hwm_mb(pid: int) -> float | None:
    """The peak RSS of ``pid``'s current process image (``VmHWM``), None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return None


def run_child(spec: dict[str, Any], workdir: Path, guard: float) -> dict[str, Any]:
    """Run the step in a child under the hang guard; its peak RSS from ``VmHWM``, watched while it runs.

    Not ``ru_maxrss`` (of ``wait4`` or ``RUSAGE_CHILDREN``): Linux carries the parent's peak RSS over fork and exec
    into the child's ``ru_maxrss``, so every child would report at least this process's peak (servers, localcloud
    and builders included). ``VmHWM`` belongs to the child's own image; it is polled every 20 ms, so a child killed
    by the guard still has a peak (the child reports its exact one when it ends).
    """
    spec_file, out_file, err_file = workdir / "spec.json", workdir / "out.jsonl", workdir / "err.txt"
    spec_file.write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with out_file.open("wb") as out, err_file.open("wb") as err:
        # cwd: the case's own directory, so that ``-c``'s sys.path[0] cannot pull in this checkout's packages
        process = subprocess.Popen([sys.executable, "-c", _CHILD, str(spec_file)], cwd=workdir, env=env,
                                   stdout=out, stderr=err, start_new_session=True)
        deadline = time.monotonic() + guard
        killed, watched = False, None
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            watched = _vm_hwm_mb(process.pid) or watched
            if time.monotonic() > deadline and not killed:
                os.killpg(process.pid, signal.SIGKILL)
                killed = True
            time.sleep(0.02)
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    lines = [json.loads(line) for line in out_file.read_text().splitlines() if line.startswith("{")]
    baseline = lines[0] if lines else {}
    result: dict[str, Any] = {"peak_rss_mb": watched, "baseline_mb": baseline.get("baseline_mb"),
                              "ru_maxrss_mb": usage.ru_maxrss / 1024, "tlsguard": baseline.get("tlsguard"),
                              "killed": killed}
    if killed:
        result.update(outcome=f">{guard:.0f} s (killed)", detail="", seconds=None, tracemalloc_mb=None)
    elif len(lines) < 2:
        tail = err_file.read_text().strip().splitlines()
        result.update(outcome=f"child died (exit {process.returncode})", detail=tail[-1] if tail else "",
                      seconds=None, tracemalloc_mb=None)
    else:
        result.update(lines[-1])
    return result


def run_once(name: str, case: Case, args: argparse.Namespace, *, traced: bool) -> dict[str, Any]:
    """One child on freshly built and served inputs (a renewal run changes localcloud: each run gets its own)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"hostile-{name}-"))
    spec: dict[str, Any] = {"tree": str(args.tree), "timeout": args.probe_timeout, "tracemalloc": traced,
                            "port": 0, "roots": []}
    try:
        if args.analysis:
            assert case.pem is not None
            chain, roots = case.pem()
            spec.update(step="analysis", pem=chain, roots=roots)
            return run_child(spec, workdir, args.guard)
        with case.serve(workdir) as served:
            spec.update(step=case.step, **served)
            return run_child(spec, workdir, args.guard)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_case(name: str, case: Case, args: argparse.Namespace) -> dict[str, Any]:
    """Seconds and peak RSS from a plain run; the heap peak from a second run under tracemalloc, whose tracing
    would slow the first (up to 2.5x on the renewal run) and add its own traces to its RSS."""
    result = {"what": case.what, "step": "analysis" if args.analysis else case.step,
              **run_once(name, case, args, traced=False)}
    if args.tracemalloc and not result["killed"]:
        traced = run_once(name, case, args, traced=True)
        result["tracemalloc_mb"] = traced["tracemalloc_mb"]
        result["traced_run"] = {k: traced[k] for k in ("outcome", "seconds", "peak_rss_mb", "killed")}
    return result


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="", help=f"comma-separated, of: {', '.join(CASES)} (default: all)")
    parser.add_argument("--guard", type=float, default=90.0, help="seconds before a child is killed (hang guard)")
    parser.add_argument("--analysis", action="store_true",
                        help="the chain analysis alone on the certificate cases' chains (no server, no handshake)")
    parser.add_argument("--tree", type=Path, default=ROOT, help="checkout whose tlsguard runs the steps")
    parser.add_argument("--probe-timeout", type=float, default=hostile.TIMEOUT,
                        help="probe timeout per connection (the tests': %(default)s s)")
    parser.add_argument("--no-tracemalloc", dest="tracemalloc", action="store_false",
                        help="skip the second child of each case, under tracemalloc (no heap peak)")
    parser.add_argument("--json", action="store_true", help="print only the JSON document")
    args = parser.parse_args()
    args.tree = args.tree.resolve()
    names = [n.strip() for n in args.cases.split(",") if n.strip()] or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    if args.analysis:
        names = [n for n in names if CASES[n].pem is not None]

    def say(text: str, *, flush: bool = False) -> None:
        if not args.json:
            print(text, flush=flush)

    say(f"load average {os.getloadavg()[0]:.1f}; tlsguard from {args.tree / 'shared'}; "
        f"step: {'chain analysis alone' if args.analysis else 'live view / checks / renewal run'}; "
        f"hang guard {args.guard:.0f} s; probe timeout {args.probe_timeout} s")
    header = (f"{'case':22} {'outcome':46} {'seconds':>15} {'peak RSS MB':>13} {'tracemalloc MB':>14}  "
              "finding / error")
    say(header)
    say("-" * (len(header) + 40))
    results: dict[str, Any] = {}
    for name in names:
        result = run_case(name, CASES[name], args)
        results[name] = result
        seconds = result["outcome"] if result["killed"] else _cell(result["seconds"], ".3f")
        outcome = "(killed)" if result["killed"] else result["outcome"]
        delta = None if None in (result["baseline_mb"], result["peak_rss_mb"]) else \
            result["peak_rss_mb"] - result["baseline_mb"]
        rss = f"{_cell(result['peak_rss_mb'], '.0f')} (+{_cell(delta, '.0f')})"
        say(f"{name:22} {outcome[:46]:46} {seconds:>15} {rss:>13} {_cell(result['tracemalloc_mb'], '.2f'):>14}  "
            f"{result['detail'][:100]}", flush=True)
        if result["tlsguard"] and not result["tlsguard"].startswith(str(args.tree)):
            say(f"  WARNING: the child imported tlsguard from {result['tlsguard']}, not from {args.tree}")
    say("(peak RSS: the child's VmHWM, in brackets above its baseline after imports; tracemalloc: the step's "
        "peak Python heap)")
    document = {"bench": "hostile_tls", "tree": str(args.tree), "analysis": args.analysis, "guard_seconds": args.guard,
                "probe_timeout": args.probe_timeout, "tracemalloc": args.tracemalloc, "cases": results}
    print(json.dumps(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
