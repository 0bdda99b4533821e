"""TLS policy probe: which versions and cipher suites an endpoint really accepts, in a handful of connections.

Public API: :func:`probe`, :func:`probe_many`, :class:`ProbeTarget`, :class:`ProbeOptions`, :class:`TlsPolicy`,
:func:`evaluate` and :func:`effect_status`. See docs/probe.md.
"""

from __future__ import annotations

from tlsguard.probe.errors import ProbeConnectError, ProbeError, ProbeLimitExceeded, ProbeProtocolError, ProbeTimeout
from tlsguard.probe.model import CipherCheck, ProbeReport, ProbeTarget, ServedChain, VersionResult
from tlsguard.probe.policy import (
    DEFAULT_PROPAGATION_WINDOW_SECONDS,
    CipherPolicy,
    EffectStatus,
    Mismatch,
    MismatchKind,
    PolicyVerdict,
    TlsPolicy,
    effect_status,
    evaluate,
)
from tlsguard.probe.probe import ProbeOptions, probe, probe_ciphers, probe_many

__all__ = [
    "DEFAULT_PROPAGATION_WINDOW_SECONDS",
    "CipherCheck",
    "CipherPolicy",
    "EffectStatus",
    "Mismatch",
    "MismatchKind",
    "PolicyVerdict",
    "ProbeConnectError",
    "ProbeError",
    "ProbeLimitExceeded",
    "ProbeOptions",
    "ProbeProtocolError",
    "ProbeReport",
    "ProbeTarget",
    "ProbeTimeout",
    "ServedChain",
    "TlsPolicy",
    "VersionResult",
    "effect_status",
    "evaluate",
    "probe",
    "probe_ciphers",
    "probe_many",
]
