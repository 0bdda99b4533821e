"""OSS state: buckets and what hangs off them (https config, policy, encryption, tags, CNAMEs, objects)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from localcloud.tlsregistry import OSS_DEFAULT_TLS_VERSIONS

SSE_ALGORITHMS = ("AES256", "KMS", "SM4")
STORAGE_CLASSES = ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
#: Bucket ACLs (https://www.alibabacloud.com/help/en/oss/developer-reference/putbucketacl).
BUCKET_ACLS = ("private", "public-read", "public-read-write")


@dataclass(frozen=True)
class HttpsConfig:
    """A bucket's ``HttpsConfiguration`` document as last PUT (the whole document: PUT replaces it)."""

    tls_enabled: bool = False
    tls_versions: tuple[str, ...] = ()
    #: Whether the document carried a ``CipherSuite`` element at all (GET returns it only then).
    has_cipher_suite: bool = False
    cipher_enabled: bool = False
    strong: bool = False
    custom_tls12: tuple[str, ...] = ()
    custom_tls13: tuple[str, ...] = ()

    @property
    def effective_versions(self) -> tuple[str, ...]:
        """What the endpoint negotiates: the listed versions, or OSS's default set when management is off."""
        return self.tls_versions if self.tls_enabled else OSS_DEFAULT_TLS_VERSIONS

    @property
    def cipher_mode(self) -> str:
        """``all`` (CipherSuite off or absent), ``strong`` or ``custom`` (the TLS registry's vocabulary)."""
        if not self.cipher_enabled:
            return "all"
        return "strong" if self.strong else "custom"

    def as_dict(self) -> dict[str, object]:
        doc: dict[str, object] = {"TLS": {"Enable": self.tls_enabled, "TLSVersion": list(self.tls_versions)}}
        if self.has_cipher_suite:
            doc["CipherSuite"] = {"Enable": self.cipher_enabled, "StrongCipherSuite": self.strong,
                                  "CustomCipherSuite": list(self.custom_tls12),
                                  "TLS13CustomCipherSuite": list(self.custom_tls13)}
        return doc


@dataclass(frozen=True)
class Encryption:
    """``ServerSideEncryptionRule/ApplyServerSideEncryptionByDefault``."""

    algorithm: str
    kms_key_id: str = ""
    kms_data_encryption: str = ""

    def as_dict(self) -> dict[str, str]:
        doc = {"SSEAlgorithm": self.algorithm}
        if self.kms_key_id:
            doc["KMSMasterKeyID"] = self.kms_key_id
        if self.kms_data_encryption:
            doc["KMSDataEncryption"] = self.kms_data_encryption
        return doc


@dataclass
class CnameBinding:
    """A custom domain bound to a bucket, and the certificate bound to the domain (if any)."""

    domain: str
    last_modified: float
    status: str = "Enabled"
    cert_id: int | None = None
    cert_type: str = ""  # "CAS" | "Upload"
    cert_status: str = "Enabled"
    cert_bound_at: float = 0.0


@dataclass(frozen=True)
class CnameToken:
    """A CreateCnameToken answer: the value the domain's ``_dnsauth`` TXT record must hold, and its expiry."""

    bucket: str
    domain: str
    token: str
    expires_at: float


@dataclass
class StoredObject:
    key: str
    body: bytes
    content_type: str
    last_modified: float
    etag: str = ""
    crc64: str = ""

    def __post_init__(self) -> None:
        if not self.etag:
            self.etag = '"' + hashlib.md5(self.body).hexdigest().upper() + '"'
        if not self.crc64:
            self.crc64 = str(crc64_ecma(self.body))


@dataclass
class Bucket:
    name: str
    region: str
    account_id: str
    created_at: float
    storage_class: str = "Standard"
    resource_group_id: str = "rg-default"
    tags: dict[str, str] = field(default_factory=dict)
    https: HttpsConfig = field(default_factory=HttpsConfig)
    #: Whether PutBucketHttpsConfig (or a seed) ever set the document.
    https_configured: bool = False
    policy: str | None = None
    encryption: Encryption | None = None
    cnames: dict[str, CnameBinding] = field(default_factory=dict)
    #: Seeded domain patterns whose ``_dnsauth`` TXT record holds this bucket's CNAME token (DNS set up already).
    verified_domains: tuple[str, ...] = ()
    objects: dict[str, StoredObject] = field(default_factory=dict)
    #: The bucket ACL GetBucketInfo reports (seeded; no PutBucketAcl is emulated).
    acl: str = "private"

    @property
    def location(self) -> str:
        return f"oss-{self.region}"

    @property
    def default_host(self) -> str:
        return f"{self.name}.oss-{self.region}.aliyuncs.com"

    @property
    def internal_host(self) -> str:
        """The bucket's intranet (VPC) endpoint name."""
        return f"{self.name}.oss-{self.region}-internal.aliyuncs.com"


# CRC-64/XZ (ECMA-182 polynomial, reflected, init and xor-out all ones): the ``x-oss-hash-crc64ecma`` checksum.
_CRC64_POLY = 0xC96C5795D7870F42
_CRC64_TABLE: list[int] = []
for _byte in range(256):
    _crc = _byte
    for _ in range(8):
        _crc = (_crc >> 1) ^ _CRC64_POLY if _crc & 1 else _crc >> 1
    _CRC64_TABLE.append(_crc)


def crc64_ecma(data: bytes) -> int:
    """The CRC64 OSS reports in ``x-oss-hash-crc64ecma`` (decimal string on the wire)."""
    crc = 0xFFFFFFFFFFFFFFFF
    table = _CRC64_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF
