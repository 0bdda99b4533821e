"""Live verification: once a write's propagation window has passed, probe the endpoint and mark the write
``effective`` or ``not_effective``; an endpoint that stalls, resets or answers garbage leaves it pending.

``effective`` is final (the record is filed under ``verify-results/``). ``not_effective`` is alerted and probed
again on every verification run until the endpoint catches up (then the alert resolves) or a newer write of the
target supersedes it.

Cost per endpoint: one handshake per TLS version to prove, plus at most one per cipher class (TLS 1.2 suites,
TLS 1.3 suites) that the policy constrains, and those only when the versions already match; one handshake for a
certificate; one plain request each for HSTS and the HTTP-to-HTTPS redirect.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tlsguard.log import get_logger
from tlsguard.model import LiveVerification, TargetRef

if TYPE_CHECKING:
    from tlsguard.lifecycle import RunContext
    from tlsguard.ports import LivePort
    from tlsguard.state import PendingVerification

log = get_logger("tlsguard.verify_live")

EFFECTIVE, NOT_EFFECTIVE, INCONCLUSIVE = "effective", "not_effective", "inconclusive"
#: How the probe reports a handshake the server ended with a close or a TCP reset instead of an alert.
CLOSED_WITHOUT_ALERT = "connection closed without an alert"


@dataclass(frozen=True)
class Verification:
    """The verdict on one pending verification."""

    target: TargetRef
    journal_id: str
    checks: tuple[str, ...]
    verdict: LiveVerification  # EFFECTIVE, NOT_EFFECTIVE, or PENDING (inconclusive)
    detail: str
    connections: int = 0
    attempts: int = 0  # inconclusive probes so far (this one included)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target.to_dict(), "id": str(self.target), "journal_id": self.journal_id,
                "checks": list(self.checks), "live_verification": self.verdict.value, "detail": self.detail,
                "connections": self.connections, "attempts": self.attempts}


def judge(expect: dict[str, Any], live: LivePort) -> tuple[str, str, int]:
    """(effective | not_effective | inconclusive, what the endpoint showed, handshakes and requests made)."""
    host = str(expect.get("host") or "")
    verdicts: list[tuple[str, str]] = []
    connections = 0
    if "tls_versions" in expect or "ciphers" in expect:
        verdict, detail, used = _judge_tls(host, expect, live)
        verdicts.append((verdict, detail))
        connections += used
    if expect.get("certificate_sha1"):
        from tlsguard.certs.x509facts import facts_from_pem, normalise_fingerprint

        view = live.served_chain(host)
        connections += 1
        wanted = normalise_fingerprint(str(expect["certificate_sha1"]))
        if not view.chain_pem:
            verdicts.append((INCONCLUSIVE, f"no certificate served: {view.error or 'nothing'}"))
        else:
            try:
                leaf = facts_from_pem(view.chain_pem[0])
            except ValueError as exc:  # not valid DER, or over the size limit: certainly not the one bound
                verdicts.append((NOT_EFFECTIVE, f"serves a certificate that cannot be read ({exc})"))
            else:
                if leaf.fingerprint_sha1 == wanted:
                    verdicts.append((EFFECTIVE, f"serves {leaf.subject_cn} ({wanted[:23]}...)"))
                else:
                    verdicts.append((NOT_EFFECTIVE, f"still serves {leaf.subject_cn} "
                                                    f"({leaf.fingerprint_sha1[:23]}...), not {wanted[:23]}..."))
    if "hsts" in expect:
        status, headers, error = live.http_answer(host, https=True)
        connections += 1
        verdicts.append(_judge_hsts(int(expect["hsts"]), status, headers, error))
    if "https_redirect" in expect:
        status, headers, error = live.http_answer(host, https=False)
        connections += 1
        verdicts.append(_judge_redirect(bool(expect["https_redirect"]), status, headers, error))
    if not verdicts:
        return EFFECTIVE, "nothing to prove", 0
    if any(v == NOT_EFFECTIVE for v, _ in verdicts):
        return NOT_EFFECTIVE, "; ".join(d for v, d in verdicts if v == NOT_EFFECTIVE), connections
    if any(v == INCONCLUSIVE for v, _ in verdicts):
        return INCONCLUSIVE, "; ".join(d for v, d in verdicts if v == INCONCLUSIVE), connections
    return EFFECTIVE, "; ".join(d for _, d in verdicts), connections


def _judge_tls(host: str, expect: dict[str, Any], live: LivePort) -> tuple[str, str, int]:
    from tlsguard.probe import TlsPolicy, evaluate

    versions = expect.get("tls_versions")
    ciphers = expect.get("ciphers")
    version_policy = TlsPolicy.build(versions=versions) if versions is not None else TlsPolicy()
    report = live.probe(host, version_policy)
    used = report.connections
    if report.error:
        return INCONCLUSIVE, f"unreachable: {report.error}", used
    if not any(v.accepted for v in report.versions) and any(v.accepted is False for v in report.versions) and all(
            v.alert == CLOSED_WITHOUT_ALERT for v in report.versions if v.accepted is False):
        # No edge refuses every version by dropping the connection: a reset or a bare close is not a refusal
        return INCONCLUSIVE, f"every handshake was closed or reset without a TLS alert ({used} connections)", used
    verdict = evaluate(report, version_policy)
    if verdict.mismatches:
        return NOT_EFFECTIVE, "; ".join(m.describe() for m in verdict.mismatches), used
    if verdict.undetermined:
        return INCONCLUSIVE, "; ".join(verdict.undetermined), used
    accepted = report.accepted_versions()
    if ciphers:
        from dataclasses import replace

        cipher_policy = TlsPolicy.build(versions=versions, ciphers=str(ciphers))
        seen = {v.version: v.cipher for v in report.versions if v.accepted}
        checks, extra = live.probe_ciphers(host, cipher_policy, seen)
        used += extra
        cipher_verdict = evaluate(replace(report, ciphers=checks), cipher_policy)
        if cipher_verdict.mismatches:
            return NOT_EFFECTIVE, "; ".join(m.describe() for m in cipher_verdict.mismatches), used
        if cipher_verdict.undetermined:
            return INCONCLUSIVE, "; ".join(cipher_verdict.undetermined), used
    return EFFECTIVE, f"accepts exactly {', '.join(accepted) or 'nothing'}" + (f" with {ciphers} suites"
                                                                               if ciphers else ""), used


def _judge_hsts(max_age: int, status: int, headers: dict[str, str], error: str) -> tuple[str, str]:
    if status == 0:
        return INCONCLUSIVE, f"HTTPS request failed: {error}"
    header = headers.get("strict-transport-security", "")
    served = 0
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name.lower() == "max-age" and value.strip().isdigit():
            served = int(value.strip())
    if max_age == 0:
        return (EFFECTIVE, "no HSTS header") if not header else (NOT_EFFECTIVE, f"still sends HSTS {header!r}")
    if served == max_age:
        return EFFECTIVE, f"sends HSTS max-age={served}"
    return NOT_EFFECTIVE, f"sends {header!r}, not max-age={max_age}" if header else "sends no HSTS header"


def _judge_redirect(wanted: bool, status: int, headers: dict[str, str], error: str) -> tuple[str, str]:
    if status == 0:
        return INCONCLUSIVE, f"HTTP request failed: {error}"
    location = headers.get("location", "")
    redirects = status in (301, 302, 307, 308) and location.startswith("https://")
    if redirects == wanted:
        return EFFECTIVE, f"HTTP answers {status}" + (f" to {location}" if location else "")
    return NOT_EFFECTIVE, f"HTTP answers {status}" + (f" to {location}" if location else "") + \
        (", not a redirect to HTTPS" if wanted else ", still a redirect")


def run_due(ctx: RunContext, *, only: set[str] | None = None, concurrency: int = 16) -> list[Verification]:
    """Probe every pending verification whose window has passed (of the targets in ``only``, or all)."""
    if ctx.state is None or ctx.ports.live is None:
        return []
    state, live = ctx.state, ctx.ports.live
    now = ctx.clock()
    newest: dict[str, PendingVerification] = {}
    for pending in state.pending.all():
        if only is not None and pending.target.key not in only:
            continue
        older = newest.get(pending.target.key)
        if older is not None and older.stamp > pending.stamp:
            pending, older = older, pending
        if older is not None:  # a newer write of the target supersedes what this one expected
            state.pending.record_result(older, "superseded", f"superseded by {pending.journal_id}", now)
        newest[pending.target.key] = pending
    due = [p for p in newest.values() if p.due_at <= now]

    def one(pending: PendingVerification) -> Verification:
        try:
            verdict, detail, used = judge(pending.expect, live)
        except Exception as exc:  # a hostile endpoint must never end the run: it stays pending
            verdict, detail, used = INCONCLUSIVE, f"probe failed: {type(exc).__name__}: {exc}", 0
        if verdict == INCONCLUSIVE:
            attempts = state.pending.record_attempt(pending, detail, ctx.clock())
            return Verification(pending.target, pending.journal_id, pending.checks, LiveVerification.PENDING,
                                detail, used, attempts)
        if verdict == NOT_EFFECTIVE:
            # Not final: the record stays, so the next verification run probes again and an edge that catches up
            # turns effective (and resolves the alert) rather than staying "not effective" forever.
            log.warning("live verification", extra={"target": str(pending.target), "journal_id": pending.journal_id,
                                                    "verdict": verdict, "detail": detail, "connections": used})
            return Verification(pending.target, pending.journal_id, pending.checks, LiveVerification.NOT_EFFECTIVE,
                                detail, used, len(pending.attempts))
        state.pending.record_result(pending, verdict, detail, ctx.clock())
        outcome = LiveVerification.EFFECTIVE if verdict == EFFECTIVE else LiveVerification.NOT_EFFECTIVE
        log.info("live verification", extra={"target": str(pending.target), "journal_id": pending.journal_id,
                                             "verdict": verdict, "detail": detail, "connections": used})
        return Verification(pending.target, pending.journal_id, pending.checks, outcome, detail, used,
                            len(pending.attempts))

    if not due:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(due)))) as pool:
        verifications = list(pool.map(one, due))
    for verification in verifications:
        if verification.verdict is not LiveVerification.PENDING:
            ctx.live_results[verification.target.key] = (verification.verdict, verification.detail)
    return verifications
