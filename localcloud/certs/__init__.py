"""Certificate authorities and the certificate factory (contract 1: ``cloud.certs``).

:class:`CertAuthorityStore` is what the rest of localcloud uses: CAS and seeds mint certificates with
:meth:`~CertAuthorityStore.issue`, OSS serves bucket default domains with :meth:`~CertAuthorityStore.public_chain`,
services read certificates with :meth:`~CertAuthorityStore.describe`, and :meth:`~CertAuthorityStore.write_ca_bundle`
writes the roots clients trust (the endpoints file's ``ca_bundle``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from localcloud.certs.factory import CERT_KINDS, CertificateFactory, IssuedCertificate
from localcloud.certs.info import CertificateInfo, describe, split_pem_chain

if TYPE_CHECKING:
    from pathlib import Path

    from localcloud.cloud import LocalCloud

__all__ = ["CERT_KINDS", "CertAuthorityStore", "CertificateInfo", "IssuedCertificate", "describe", "public_suffix",
           "split_pem_chain"]


def public_suffix(host: str) -> str:
    """The endpoint name a bucket default domain's wildcard certificate covers.

    ``<bucket>.oss-<region>[-internal].aliyuncs.com`` → ``oss-<region>[-internal].aliyuncs.com``; the regional
    endpoint itself (three labels) is its own suffix. Decided by the label count, never by the bucket name: a
    bucket may be called ``oss-example`` (OSS naming rules reserve no prefix,
    https://www.alibabacloud.com/help/en/oss/user-guide/bucket-naming-conventions; the OSS API samples use a bucket
    named ``oss-example``).
    """
    host = host.lower().rstrip(".")
    labels = host.split(".")
    return ".".join(labels[1:]) if len(labels) > 3 else host


class CertAuthorityStore:
    """localcloud's certificate authorities, bound to the cloud's clock.

    The CAs are created with the store (their keys are cached per process, so a second LocalCloud is cheap);
    every certificate is dated from ``cloud.clock``, so tests that move the clock mint accordingly.
    """

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self.factory = CertificateFactory(cloud.clock.now())
        self._public_lock = threading.Lock()
        self._public: dict[str, tuple[tuple[str, ...], str]] = {}

    def issue(self, kind: str, domains: list[str], *, name: str | None = None,
              days: int | None = None) -> IssuedCertificate:
        """Mint a certificate of ``kind`` (one of :data:`CERT_KINDS`) for ``domains``.

        ``days`` is the days left for ``expiring`` (and ``valid``), days since expiry for ``expired`` and days
        until the start for ``not_yet_valid``.
        """
        return self.factory.issue(kind, domains, self.cloud.clock.now(), name=name, days=days)

    @staticmethod
    def describe(pem: str) -> CertificateInfo:
        """What the first certificate of ``pem`` says about itself."""
        return describe(pem)

    def public_chain(self, host: str) -> tuple[tuple[str, ...], str]:
        """(chain, key) served on a bucket default domain ``<bucket>.oss-<region>.aliyuncs.com``.

        A wildcard ``*.oss-<region>.aliyuncs.com`` (plus the bare endpoint name) from the "public" CA, cached
        per endpoint suffix: the first call per region signs one certificate, later calls are a dict lookup.
        """
        suffix = public_suffix(host)
        cached = self._public.get(suffix)
        if cached is not None:
            return cached
        with self._public_lock:
            cached = self._public.get(suffix)
            if cached is None:
                cached = self.factory.public_wildcard(suffix, self.cloud.clock.now())
                self._public[suffix] = cached
            return cached

    def roots_pem(self) -> tuple[str, ...]:
        """PEM of every localcloud root a client should trust."""
        return tuple(authority.pem for authority in self.factory.roots)

    def write_ca_bundle(self, path: Path) -> Path:
        """Write :meth:`roots_pem` to ``path`` (the endpoints file's ``ca_bundle``) and return the path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(self.roots_pem()))
        return path
