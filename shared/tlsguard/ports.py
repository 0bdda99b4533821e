"""Ports: what the lifecycle needs from the outside world, as ``typing.Protocol`` s. Adapters implement them.

:class:`Ports` bundles one run's adapters; a port that is None is a service this run does not reach (a CLI run
without CDN credentials, say), and the targets that need it fail with that reason instead of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tlsguard.certs.chain import TrustStore
    from tlsguard.certs.model import ApiView, CasCandidate, LiveView
    from tlsguard.policy.model import EncryptionPolicy, RawHttpsConfig
    from tlsguard.probe import CipherCheck, ProbeReport, TlsPolicy


@dataclass(frozen=True)
class BucketRef:
    name: str
    region: str


class OssPort(Protocol):
    """The OSS operations tlsguard uses. Errors are raised as :class:`tlsguard.errors.CloudError` subclasses.

    Writes to guarded buckets (``put_*``, ``delete_policy``) are attempted once: the lifecycle settles a lost
    response by re-reading before it writes again. State-bucket calls retry (create-if-absent is safe to retry).
    """

    def list_buckets(self, prefix: str = "") -> Iterator[BucketRef]:
        """Stream every bucket, page by page (never the whole fleet in memory)."""
        ...

    def get_bucket_tags(self, bucket: BucketRef) -> dict[str, str]: ...

    def get_https_config(self, bucket: BucketRef) -> RawHttpsConfig: ...

    def put_https_config(self, bucket: BucketRef, config: RawHttpsConfig) -> None: ...

    def get_policy(self, bucket: BucketRef) -> str | None:
        """The raw policy JSON, or None when the bucket has none."""
        ...

    def put_policy(self, bucket: BucketRef, text: str) -> None: ...

    def delete_policy(self, bucket: BucketRef) -> None: ...

    def get_encryption(self, bucket: BucketRef) -> EncryptionPolicy | None:
        """The default encryption rule, or None when the bucket has none."""
        ...

    def put_encryption(self, bucket: BucketRef, rule: EncryptionPolicy) -> None: ...

    def put_object_if_absent(self, bucket: str, key: str, body: bytes) -> bool:
        """Write with ``x-oss-forbid-overwrite: true``; False when the object already existed."""
        ...

    def get_object(self, bucket: str, key: str) -> bytes | None: ...

    def delete_object(self, bucket: str, key: str) -> None: ...

    def list_objects(self, bucket: str, prefix: str, start_after: str = "") -> Iterator[str]:
        """Stream the keys under ``prefix`` in key order (after ``start_after`` when given)."""
        ...


class CnameBindingView(Protocol):
    """One ListCname entry (see :class:`tlsguard.adapters.oss_cname.CnameBinding`)."""

    bucket: str
    region: str
    domain: str
    status: str
    api: ApiView


class CnamePort(Protocol):
    """OSS custom domains: ListCname and PutCname (bind a CAS certificate)."""

    def list_cnames(self, bucket: BucketRef) -> list[Any]: ...

    def bind_cas_certificate(self, bucket: BucketRef, domain: str, cert_id: str,
                             previous_cert_id: str | None) -> None: ...


class CdnPort(Protocol):
    """CDN domains: discovery, certificate info and binding, HTTPS function configs."""

    def list_domains(self) -> Iterator[Any]: ...

    def certificate_view(self, domain: str) -> ApiView: ...

    def set_cas_certificate(self, domain: str, cert_id: int, region: str = "cn-hangzhou") -> None: ...

    def domain_configs(self, domain: str, function_names: tuple[str, ...]) -> list[Any]: ...

    def batch_set_config(self, domain: str, functions: dict[str, dict[str, str]]) -> None: ...

    def delete_config(self, domain: str, config_id: str, function_name: str = "") -> None: ...


class CasPort(Protocol):
    """SSL Certificates Service: the certificates that could be bound, and their public chains for vetting."""

    def candidates(self, domain: str = "") -> list[CasCandidate]: ...

    def certificate_chain(self, cert_id: int) -> tuple[str, ...]:
        """The certificate's PEM chain (leaf first); never the private key."""
        ...


class LivePort(Protocol):
    """What an endpoint really does: handshakes and plain requests, with SNI, within time and byte limits."""

    def served_chain(self, host: str) -> LiveView: ...

    def probe(self, host: str, policy: TlsPolicy) -> ProbeReport: ...

    def probe_ciphers(self, host: str, policy: TlsPolicy,
                      accepted: dict[str, str | None]) -> tuple[tuple[CipherCheck, ...], int]: ...

    def http_answer(self, host: str, *, https: bool) -> tuple[int, dict[str, str], str]:
        """(status, lower-cased headers, error) of ``GET /``; status 0 with the error when there is no answer."""
        ...


class NotifierPort(Protocol):
    def send(self, alert: dict[str, Any]) -> None:
        """Deliver one message; raise on failure (the caller reports it and carries on)."""
        ...


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        import time

        return time.time()


@dataclass
class Ports:
    """One run's adapters. Only ``oss`` is always present."""

    oss: OssPort
    cname: CnamePort | None = None
    cdn: CdnPort | None = None
    cas: CasPort | None = None
    live: LivePort | None = None
    account: str = ""
    #: The PEM bundle certificate chains are judged against ("" means certifi's roots); loaded on first use, so a
    #: run that judges no certificate (a bucket sweep) never imports cryptography nor holds the roots in memory.
    trust_bundle: str = ""
    _trust: TrustStore | None = None

    @property
    def trust(self) -> TrustStore:
        if self._trust is None:
            from tlsguard.certs.chain import load_trust_store

            self._trust = load_trust_store(self.trust_bundle or None)
        return self._trust

    @trust.setter
    def trust(self, value: TrustStore) -> None:
        self._trust = value
