"""CAS state: the certificates each account holds in SSL Certificates Service (contract 2).

OSS PutCname, CDN SetCdnDomainSSLCertificate and the seed loader all resolve and register certificates here,
as the real services do: a certificate bound by id is looked up in CAS, and one uploaded as PEM is registered
in CAS (``Upload`` true) before it is bound.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from localcloud.rpc.qps import RpcGuards

if TYPE_CHECKING:
    from localcloud.certs import CertificateInfo
    from localcloud.cloud import LocalCloud

#: Per-user QPS limits: ListUserCertificateOrder 10/s, GetUserCertificateDetail 100/s
#: (https://help.aliyun.com/document_detail/465112.html) and UploadUserCertificate 100/s are in their API
#: references; DeleteUserCertificate is assumed to be 10/s (docs/emulated/cas.md).
CAS_QPS_LIMITS = {"ListUserCertificateOrder": 10, "GetUserCertificateDetail": 100, "UploadUserCertificate": 100,
                  "DeleteUserCertificate": 10}
#: First CertificateId handed out; real ids are 7-8 digit integers (e.g. 4930000).
FIRST_CERTIFICATE_ID = 14000001


@dataclass(frozen=True)
class CasCertificate:
    """One certificate held in CAS for an account.

    ``chain_pem`` is the chain exactly as a service binding it will serve it (leaf first);
    ``upload`` is true for certificates uploaded by the user (OrderType UPLOAD) rather than issued.
    """

    id: int
    name: str
    account_id: str
    chain_pem: tuple[str, ...]
    key_pem: str
    info: CertificateInfo
    upload: bool
    region: str
    created_at: float = 0.0
    kind: str = "upload"

    @property
    def cert_pem(self) -> str:
        """The chain as one PEM text (what GetUserCertificateDetail returns as ``Cert``)."""
        return "".join(pem if pem.endswith("\n") else pem + "\n" for pem in self.chain_pem)


def parse_cert_id(cert_id: str | int) -> int | None:
    """Accept ``123``, ``"123"`` or OSS's ``"123-cn-hangzhou"`` form; None when it is no certificate id."""
    if isinstance(cert_id, bool):
        return None
    if isinstance(cert_id, int):
        return cert_id
    text = str(cert_id).strip()
    head = text.split("-", 1)[0]
    if not head.isdigit():
        return None
    return int(head)


def split_pem_chain(pem_text: str) -> tuple[str, ...]:
    """Split concatenated PEM certificates into single blocks, in order."""
    marker_begin = "-----BEGIN CERTIFICATE-----"
    marker_end = "-----END CERTIFICATE-----"
    blocks: list[str] = []
    rest = pem_text
    while True:
        start = rest.find(marker_begin)
        if start < 0:
            break
        end = rest.find(marker_end, start)
        if end < 0:
            break
        end += len(marker_end)
        blocks.append(rest[start:end] + "\n")
        rest = rest[end:]
    return tuple(blocks)


class CasBackend(RpcGuards):
    """Certificates per account, keyed by numeric CertificateId; thread-safe."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self._lock = threading.Lock()
        self._by_id: dict[int, CasCertificate] = {}
        self._ids = itertools.count(FIRST_CERTIFICATE_ID)
        self.init_guards(CAS_QPS_LIMITS)

    def reset(self) -> None:
        with self._lock:
            self._by_id.clear()
            self._ids = itertools.count(FIRST_CERTIFICATE_ID)
        self.reset_guards()

    # -- contract 2 --------------------------------------------------------------------------------------
    def get(self, account_id: str, cert_id: str | int) -> CasCertificate | None:
        """The account's certificate with this id (``123``, ``"123"`` or ``"123-cn-hangzhou"``), else None."""
        number = parse_cert_id(cert_id)
        if number is None:
            return None
        with self._lock:
            cert = self._by_id.get(number)
        if cert is None or cert.account_id != account_id:
            return None
        return cert

    def find_by_name(self, account_id: str, name: str) -> CasCertificate | None:
        """The account's most recent certificate with this name, else None."""
        with self._lock:
            matches = [c for c in self._by_id.values() if c.account_id == account_id and c.name == name]
        return max(matches, key=lambda c: c.id) if matches else None

    def upload(self, account_id: str, name: str, cert_pem: str, key_pem: str) -> CasCertificate:
        """Register a user-supplied certificate (PEM chain, leaf first) and its key; returns the new entry.

        Raises ValueError when ``cert_pem`` holds no certificate.
        """
        chain = split_pem_chain(cert_pem)
        if not chain:
            raise ValueError("no PEM certificate in the uploaded text")
        info = self.cloud.certs.describe(chain[0])
        return self._store(account_id, name, chain, key_pem, info, upload=True, kind="upload")

    def oss_cert_id(self, cert: CasCertificate) -> str:
        """The ``"<id>-<region>"`` form OSS shows for a CAS certificate."""
        return f"{cert.id}-{cert.region}"

    # -- more ----------------------------------------------------------------------------------------------
    def certificates(self, account_id: str) -> list[CasCertificate]:
        """The account's certificates, newest first (the order ListUserCertificateOrder uses)."""
        with self._lock:
            found = [c for c in self._by_id.values() if c.account_id == account_id]
        return sorted(found, key=lambda c: c.id, reverse=True)

    def delete(self, account_id: str, cert_id: str | int) -> bool:
        cert = self.get(account_id, cert_id)
        if cert is None:
            return False
        with self._lock:
            self._by_id.pop(cert.id, None)
        return True

    def _store(self, account_id: str, name: str, chain: tuple[str, ...], key_pem: str, info: CertificateInfo,
               *, upload: bool, kind: str) -> CasCertificate:
        now = self.cloud.clock.time()
        with self._lock:
            cert = CasCertificate(id=next(self._ids), name=name, account_id=account_id, chain_pem=chain,
                                  key_pem=key_pem, info=info, upload=upload, region=self.cloud.region,
                                  created_at=now, kind=kind)
            self._by_id[cert.id] = cert
        return cert

    # -- seeds and state -----------------------------------------------------------------------------------
    def seed(self, items: list[dict[str, Any]]) -> None:
        """The seed's ``certificates:`` section: ``{name, kind, domains, days?, account?, upload?}`` each."""
        from localcloud.seed import SeedError

        for index, item in enumerate(items):
            where = f"certificates[{index}]"
            if not isinstance(item, dict):
                raise SeedError(f"{where}: each certificate is a mapping, got {item!r}")
            unknown = set(item) - {"name", "kind", "domains", "days", "account", "upload"}
            if unknown:
                raise SeedError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
            name = item.get("name")
            if not name or not isinstance(name, str):
                raise SeedError(f"{where}: a certificate needs a name")
            where = f"certificates[{name}]"
            kind = str(item.get("kind", "valid"))
            domains = item.get("domains")
            if isinstance(domains, str):
                domains = [domains]
            if not domains or not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
                raise SeedError(f"{where}: domains must be a non-empty list of host names")
            account = str(item.get("account") or self.cloud.default_account_id)
            if account not in self.cloud.iam.accounts():
                raise SeedError(f"{where}: unknown account {account!r}")
            days = item.get("days")
            if days is not None and not isinstance(days, int):
                raise SeedError(f"{where}: days must be an integer")
            if self.find_by_name(account, name) is not None:
                raise SeedError(f"{where}: account {account} already holds a certificate named {name!r}")
            try:
                issued = self.cloud.certs.issue(kind, list(domains), name=name, days=days)
            except (ValueError, KeyError) as exc:
                raise SeedError(f"{where}: cannot issue a {kind!r} certificate: {exc}") from None
            self._store(account, name, tuple(issued.chain_pem), issued.key_pem, issued.info,
                        upload=bool(item.get("upload", False)), kind=kind)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            certs = sorted(self._by_id.values(), key=lambda c: c.id)
        return {
            "certificates": [
                {"id": c.id, "name": c.name, "account_id": c.account_id, "kind": c.kind, "upload": c.upload,
                 "region": c.region, "common_name": c.info.common_name, "sans": list(c.info.sans),
                 "not_after": c.info.not_after.isoformat(), "fingerprint_sha1": c.info.fingerprint_sha1}
                for c in certs
            ]
        }
