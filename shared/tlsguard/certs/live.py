"""The live view: a TLS handshake to a domain's endpoint with SNI, collecting the chain exactly as served.

Uses the probe engineer's raw-handshake chain collection (:func:`tlsguard.probe.probe`): the TLS 1.2
Certificate message is plaintext, so the chain comes back in served order, incomplete or misordered as it is.
Only when the endpoint speaks TLS 1.3 alone does the probe fall back to a stdlib handshake (leaf only before
Python 3.13). The endpoint is configurable: ``connect`` dials a fixed address (localcloud's TLS port, a specific
edge) while the SNI stays the domain.
"""

from __future__ import annotations

import time

from tlsguard.certs.model import LiveView


def collect_live(domain: str, *, connect: tuple[str, int] | None = None, port: int = 443,
                 timeout: float = 5.0) -> LiveView:
    """Handshake with ``domain`` (SNI) at ``connect`` (default ``domain:port``) and return the served chain.

    Bounded: the attempts (TLS 1.2, then 1.3, then 1.1/1.0) share one budget of ``2 * timeout`` seconds, each
    connection gets at most ``timeout``, and the bytes read are capped by the probe's limits. The first attempt
    that ends in a read error (a stall, a byte limit, a reply that is not TLS) ends the collection with that
    reason, so a hostile endpoint costs one connection timeout at most.
    """
    from tlsguard.probe import ProbeOptions, ProbeTarget, probe

    target = ProbeTarget(host=domain, port=port, sni=domain, connect=connect)
    endpoint = f"{connect[0]}:{connect[1]}" if connect else f"{domain}:{port}"
    budget = timeout * 2
    deadline = time.monotonic() + budget
    read_error = ""
    last_error = ""
    for versions in (("TLSv1.2",), ("TLSv1.3",), ("TLSv1.1", "TLSv1.0")):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            read_error = f"no certificate within the {budget:.1f} s budget"
            break
        report = probe(target, None, ProbeOptions(timeout=min(timeout, remaining), total_timeout=remaining,
                                                  versions=versions, collect_chain=True))
        if report.error:
            return LiveView(endpoint=endpoint, error=report.error)
        if report.chain.der:
            return LiveView(chain_pem=report.chain.pem, endpoint=endpoint)
        read_error = next((v.error for v in report.versions if v.error), "")
        if read_error:  # stalled, over a byte limit or not TLS: other versions would fare no better
            break
        last_error = report.chain.error or next((v.alert for v in report.versions if v.alert), "") or \
            "no certificate served"
    return LiveView(endpoint=endpoint, error=read_error or last_error)
