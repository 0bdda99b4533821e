"""OssBackend: bucket state, the rules that guard it, seeding, and publishing TLS behaviour (contract 3).

Every bucket's default domain ``<bucket>.oss-<region>.aliyuncs.com`` and every CNAME with a bound certificate is
published into ``cloud.tls`` with the versions and cipher mode of the bucket's https config: immediately when
seeded, after ``cloud.tls.propagation_seconds`` when changed through the API (OSS documents "within 30 minutes").
"""

from __future__ import annotations

import fnmatch
import json
import secrets
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from localcloud.errors import ServiceError
from localcloud.oss import ciphers
from localcloud.oss.errors import (
    cname_token_not_found,
    invalid_argument,
    invalid_encryption_algorithm,
    malformed_xml,
    need_verify_domain_ownership,
    oss_error,
)
from localcloud.oss.model import (
    SSE_ALGORITHMS,
    STORAGE_CLASSES,
    Bucket,
    CnameBinding,
    CnameToken,
    Encryption,
    HttpsConfig,
)
from localcloud.oss.policy import parse_policy
from localcloud.tlsregistry import ALL_TLS_VERSIONS, EndpointTlsConfig

if TYPE_CHECKING:
    from localcloud.cas import CasCertificate
    from localcloud.cloud import LocalCloud


def build_https_config(tls_enabled: bool, versions: list[str], *, has_cipher_suite: bool = False,
                       cipher_enabled: bool = False, strong: bool = False, custom_tls12: list[str] | None = None,
                       custom_tls13: list[str] | None = None) -> HttpsConfig:
    """Validate an https configuration as PutBucketHttpsConfig does.

    Rules (https://www.alibabacloud.com/help/en/oss/developer-reference/putbuckethttpsconfig): versions are
    TLSv1.0-TLSv1.3 and at least one is required when ``Enable`` is true, else 400 MalformedXML (the answer the
    official SDK's tests expect for ``['aaa', 'bbb']`` and for no version: aliyun/aliyun-oss-python-sdk
    tests/test_bucket_https_config.py); a version listed twice counts once. Custom TLS 1.2 suites need TLS 1.2 and
    custom TLS 1.3 suites need TLS 1.3 among the versions served; names must be known (:mod:`ciphers`); custom
    mode needs at least one suite (400 InvalidArgument: the docs name no code for these).
    """
    for version in versions:
        if version not in ALL_TLS_VERSIONS:
            raise malformed_xml()
    if tls_enabled and not versions:
        raise malformed_xml()
    custom12 = list(custom_tls12 or [])
    custom13 = list(custom_tls13 or [])
    config = HttpsConfig(tls_enabled, tuple(dict.fromkeys(versions)) if tls_enabled else (),
                         has_cipher_suite, cipher_enabled, strong, tuple(custom12), tuple(custom13))
    served = config.effective_versions
    for suite in custom12:
        if not ciphers.is_tls12_suite(suite):
            raise invalid_argument(f"The cipher suite {suite} is not supported.", "CustomCipherSuite", suite)
    for suite in custom13:
        if not ciphers.is_tls13_suite(suite):
            raise invalid_argument(f"The cipher suite {suite} is not supported.", "TLS13CustomCipherSuite", suite)
    if custom12 and "TLSv1.2" not in served:
        raise invalid_argument("CustomCipherSuite requires TLSv1.2 to be allowed.", "CustomCipherSuite",
                               custom12[0])
    if custom13 and "TLSv1.3" not in served:
        raise invalid_argument("TLS13CustomCipherSuite requires TLSv1.3 to be allowed.", "TLS13CustomCipherSuite",
                               custom13[0])
    if cipher_enabled and not strong and not custom12 and not custom13:
        raise invalid_argument("Custom cipher suites are required when StrongCipherSuite is false.",
                               "CustomCipherSuite", "")
    return config


def build_encryption(algorithm: str, kms_key_id: str = "", kms_data_encryption: str = "") -> Encryption:
    """Validate a default-encryption rule as PutBucketEncryption does.

    An unknown ``SSEAlgorithm``: 400 InvalidEncryptionAlgorithmError (EC 0005-00000003). ``KMSMasterKeyID`` without
    KMS: 400 InvalidArgument EC 0005-00000204 (https://help.aliyun.com/en/oss/user-guide/0005-00000204); KMS with a
    ``KMSDataEncryption`` other than SM4: EC 0005-00000203 (https://help.aliyun.com/en/oss/user-guide/0005-00000203).
    ``KMSDataEncryption=SM4`` beside AES256 or SM4 is accepted and dropped: GET then shows none (the official SDK's
    test expects exactly that: aliyun/aliyun-oss-python-sdk tests/test_server_side_encryotion.py).
    """
    if algorithm not in SSE_ALGORITHMS:
        raise invalid_encryption_algorithm(algorithm)
    if kms_key_id and algorithm != "KMS":
        raise invalid_argument("KMSMasterKeyID is only allowed when SSEAlgorithm is KMS.", "KMSMasterKeyID",
                               kms_key_id, ec="0005-00000204")
    if kms_data_encryption and kms_data_encryption != "SM4":
        raise invalid_argument("KMSDataEncryption must be SM4.", "KMSDataEncryption", kms_data_encryption,
                               ec="0005-00000203")
    return Encryption(algorithm, kms_key_id, kms_data_encryption if algorithm == "KMS" else "")


def domain_covered(domain: str, names: tuple[str, ...]) -> bool:
    """Whether a certificate naming ``names`` (SANs, or the CN) is valid for ``domain`` (one-label wildcards)."""
    domain = domain.lower().rstrip(".")
    for name in names:
        name = name.lower().rstrip(".")
        if name == domain:
            return True
        if name.startswith("*.") and "." in domain and domain.split(".", 1)[1] == name[2:]:
            return True
    return False


#: Domains PutCname refuses (Alibaba Cloud's own).
RESERVED_DOMAIN_SUFFIXES = (".aliyuncs.com", ".aliyun.com", ".aliyun-inc.com", ".taobaocdn.com", ".taobao.com")
#: A CNAME token is valid for 72 hours: https://help.aliyun.com/en/oss/developer-reference/createcnametoken
CNAME_TOKEN_TTL_SECONDS = 72 * 3600
#: The TXT record that proves ownership of ``<domain>`` holds the token at ``_dnsauth.<domain>``
#: (https://help.aliyun.com/document_detail/436755.html: host record ``_dnsauth``, value the CnameToken).
DNSAUTH_PREFIX = "_dnsauth."
#: TXT values kept per name (a bound on what the control API accepts).
MAX_TXT_VALUES = 16


def normalise_domain(domain: str) -> str:
    """A custom domain as PutCname, DeleteCname and the token calls compare it: lower case, no trailing dot."""
    return domain.strip().lower().rstrip(".")


def check_bindable_domain(domain: str) -> None:
    """400 InvalidArgument EC 0018-00000401 for a name that is no domain or is one of Alibaba Cloud's own."""
    if not domain or "." not in domain or len(domain) > 253:
        raise invalid_argument("The domain name is invalid.", "Domain", domain, ec="0018-00000401")
    if domain.endswith(RESERVED_DOMAIN_SUFFIXES):
        # https://help.aliyun.com/zh/oss/support/0018-00000401: Alibaba Cloud's own domains cannot be bound.
        raise invalid_argument(f"The domain {domain} is reserved and cannot be bound.", "Domain", domain,
                               ec="0018-00000401")


@dataclass(frozen=True)
class CertificateRequest:
    """PutCname's ``CertificateConfiguration``."""

    cert_id: str = ""
    certificate: str = ""
    private_key: str = ""
    previous_cert_id: str = ""
    force: bool = False
    delete_certificate: bool = False


class OssBackend:
    """All buckets of every account, thread-safe."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self.lock = threading.RLock()
        self._buckets: dict[str, Bucket] = {}
        self._sorted_names: list[str] | None = []
        self._cname_owner: dict[str, str] = {}  # domain -> bucket
        self._cname_tokens: dict[tuple[str, str], CnameToken] = {}  # (bucket, domain) -> token
        self._dns_txt: dict[str, tuple[str, ...]] = {}  # "_dnsauth.<domain>" -> TXT values
        #: How long a new CNAME token lasts (72 h as documented; tests shorten it rather than skew the clock).
        self.cname_token_ttl_seconds: float = CNAME_TOKEN_TTL_SECONDS

    # -- state -------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self._buckets.clear()
            self._sorted_names = []
            self._cname_owner.clear()
            self._cname_tokens.clear()
            self._dns_txt.clear()
            self.cname_token_ttl_seconds = CNAME_TOKEN_TTL_SECONDS

    def get(self, name: str) -> Bucket | None:
        return self._buckets.get(name)

    def bucket_for_cname(self, domain: str) -> Bucket | None:
        owner = self._cname_owner.get(domain.lower())
        return self._buckets.get(owner) if owner else None

    def sorted_names(self) -> list[str]:
        with self.lock:
            if self._sorted_names is None:
                self._sorted_names = sorted(self._buckets)
            return self._sorted_names

    def buckets(self) -> list[Bucket]:
        return [self._buckets[name] for name in self.sorted_names()]

    def create_bucket(self, name: str, region: str, account_id: str, *, storage_class: str = "Standard",
                      tags: dict[str, str] | None = None, https: HttpsConfig | None = None,
                      https_configured: bool = False, immediate: bool = True) -> Bucket:
        now = self.cloud.clock.time()
        bucket = Bucket(name=name, region=region, account_id=account_id, created_at=now,
                        storage_class=storage_class, tags=dict(tags or {}), https=https or HttpsConfig(),
                        https_configured=https_configured)
        with self.lock:
            if name in self._buckets:
                raise oss_error(409, "BucketAlreadyExists", "The requested bucket name is not available.",
                                "0015-00000104")
            self._buckets[name] = bucket
            if self._sorted_names is not None and (not self._sorted_names or self._sorted_names[-1] < name):
                self._sorted_names.append(name)
            else:
                self._sorted_names = None
        self.publish_bucket(bucket, immediate=immediate)
        return bucket

    # -- writes ------------------------------------------------------------------------------------------------
    def set_https(self, bucket: Bucket, config: HttpsConfig, *, immediate: bool = False) -> None:
        with self.lock:
            bucket.https = config
            bucket.https_configured = True
        self.publish_bucket(bucket, immediate=immediate)

    def set_policy(self, bucket: Bucket, text: str | None) -> None:
        if text is not None:
            parse_policy(text, bucket.name)
        with self.lock:
            bucket.policy = text

    def policy_document(self, bucket: Bucket) -> dict[str, Any] | None:
        text = bucket.policy
        if text is None:
            return None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            return None
        return doc if isinstance(doc, dict) else None

    def set_encryption(self, bucket: Bucket, rule: Encryption | None) -> None:
        with self.lock:
            bucket.encryption = rule

    def set_tags(self, bucket: Bucket, tags: dict[str, str]) -> None:
        if len(tags) > 20:
            raise invalid_argument("A bucket can have at most 20 tags.", "Tagging", str(len(tags)))
        for key, value in tags.items():
            if not key or len(key) > 64 or len(value) > 128 or key.startswith(("aliyun", "acs:")):
                raise invalid_argument(f"The tag {key!r} is not valid.", "Tag", key)
        with self.lock:
            bucket.tags = dict(tags)

    # -- domain ownership (CreateCnameToken, the _dnsauth TXT record) ------------------------------------------
    def create_cname_token(self, bucket: Bucket, domain: str) -> CnameToken:
        """CreateCnameToken: a token valid 72 hours; while one is valid the same token is returned."""
        domain = normalise_domain(domain)
        check_bindable_domain(domain)
        now = self.cloud.clock.time()
        with self.lock:
            current = self._cname_tokens.get((bucket.name, domain))
            if current is not None and current.expires_at > now:
                return current
            token = CnameToken(bucket.name, domain, secrets.token_hex(16), now + self.cname_token_ttl_seconds)
            self._cname_tokens[(bucket.name, domain)] = token
            return token

    def get_cname_token(self, bucket: Bucket, domain: str) -> CnameToken:
        """GetCnameToken: the valid token, else 404 CnameTokenNotFound."""
        domain = normalise_domain(domain)
        token = self._cname_tokens.get((bucket.name, domain))
        if token is None or token.expires_at <= self.cloud.clock.time():
            raise cname_token_not_found(bucket.name, domain)
        return token

    def set_dns_txt(self, name: str, values: list[str] | tuple[str, ...]) -> None:
        """Publish (or, with no values, remove) the TXT record ``name``: localcloud's stand-in for public DNS."""
        name = normalise_domain(name)
        if not name or len(name) > 253 or len(values) > MAX_TXT_VALUES or any(len(v) > 255 for v in values):
            raise ValueError("a TXT record needs a name of at most 253 characters and at most "
                             f"{MAX_TXT_VALUES} values of at most 255 characters")
        with self.lock:
            if values:
                self._dns_txt[name] = tuple(str(v) for v in values)
            else:
                self._dns_txt.pop(name, None)

    def dns_txt(self, name: str) -> tuple[str, ...]:
        return self._dns_txt.get(normalise_domain(name), ())

    def ownership_verified(self, bucket: Bucket, domain: str) -> bool:
        """Whether PutCname may bind a new ``domain``: a valid CreateCnameToken token for this bucket, found in the
        ``_dnsauth.<domain>`` TXT record (or the seed says the record is in place: ``verified_domains``)."""
        token = self._cname_tokens.get((bucket.name, domain))
        if token is None or token.expires_at <= self.cloud.clock.time():
            return False
        if token.token in self.dns_txt(DNSAUTH_PREFIX + domain):
            return True
        return any(fnmatch.fnmatchcase(domain, pattern) for pattern in bucket.verified_domains)

    # -- CNAMEs ------------------------------------------------------------------------------------------------
    def put_cname(self, bucket: Bucket, domain: str, request: CertificateRequest | None, *,
                  immediate: bool = False, verify_ownership: bool = True) -> CnameBinding:
        """Bind ``domain`` to ``bucket`` and (optionally) a certificate to the domain, as PutCname does.

        Binding a domain the bucket does not have yet needs proven ownership (:meth:`ownership_verified`), else
        403 NeedVerifyDomainOwnership; changing the certificate of a domain already bound does not (it was proven
        when it was bound). Seeds bind with ``verify_ownership=False``.
        """
        domain = normalise_domain(domain)
        check_bindable_domain(domain)
        now = self.cloud.clock.time()
        with self.lock:
            owner = self._cname_owner.get(domain)
            if owner is not None and owner != bucket.name:
                raise oss_error(409, "CnameAlreadyExists", f"The cname {domain} already exists.", "0048-00000002",
                                Cname=domain)
            if (verify_ownership and domain not in bucket.cnames
                    and not self.ownership_verified(bucket, domain)):
                raise need_verify_domain_ownership()
            binding = bucket.cnames.get(domain)
            binding = CnameBinding(domain=domain, last_modified=now) if binding is None else replace(binding)
            if request is not None:
                self._apply_certificate(bucket, binding, request, now)
            binding.last_modified = now
            bucket.cnames[domain] = binding
            self._cname_owner[domain] = bucket.name
        self.publish_cname(bucket, binding, immediate=immediate)
        return binding

    def _apply_certificate(self, bucket: Bucket, binding: CnameBinding, request: CertificateRequest,
                           now: float) -> None:
        if request.delete_certificate:
            binding.cert_id = None
            binding.cert_type = ""
            return
        if request.previous_cert_id and not request.force:
            # https://help.aliyun.com/zh/oss/user-guide/0018-00000209: only a PreviousCertId that is given is
            # checked against the certificate bound now; Force=true skips the check.
            from localcloud.cas.backend import parse_cert_id

            if parse_cert_id(request.previous_cert_id) != binding.cert_id:
                current = (self.cloud.cas.get(bucket.account_id, binding.cert_id)
                           if binding.cert_id is not None else None)
                current_id = self.cloud.cas.oss_cert_id(current) if current else str(binding.cert_id or "")
                raise invalid_argument(f"The PreviousCertId {request.previous_cert_id} does not match the "
                                       f"certificate bound to {binding.domain} ({current_id or 'none'}).",
                                       "PreviousCertId", request.previous_cert_id, ec="0018-00000209")
        cert: CasCertificate | None
        if request.certificate or request.private_key:
            cert = self._upload_certificate(bucket, binding.domain, request)
            cert_type = "Upload"
        elif request.cert_id:
            cert = self.cloud.cas.get(bucket.account_id, request.cert_id)
            if cert is None:
                raise oss_error(404, "NoSuchCertificate",
                                f"The certificate {request.cert_id} does not exist in your account.",
                                "0048-00000011", CertId=request.cert_id)
            if not domain_covered(binding.domain, cert.info.sans or (cert.info.common_name,)):
                raise _domain_mismatch(binding.domain)
            cert_type = "CAS"
        else:
            return
        binding.cert_id = cert.id
        binding.cert_type = cert_type
        binding.cert_status = "Enabled"
        binding.cert_bound_at = now

    def _upload_certificate(self, bucket: Bucket, domain: str, request: CertificateRequest) -> CasCertificate:
        if not request.certificate or not request.private_key:
            # https://help.aliyun.com/zh/oss/user-guide/0018-00000210 (a private key without its certificate)
            raise invalid_argument("Certificate and PrivateKey must be given together.",
                                   "Certificate" if not request.certificate else "PrivateKey", "",
                                   ec="0018-00000210")
        from localcloud.certs.info import split_pem_chain

        chain = split_pem_chain(request.certificate)
        if not chain:
            raise invalid_argument("The certificate is not a valid PEM certificate.", "Certificate", "")
        try:
            info = self.cloud.certs.describe(chain[0])
        except ValueError:
            raise invalid_argument("The certificate is not a valid PEM certificate.", "Certificate", "") from None
        if not key_matches_certificate(chain[0], request.private_key):
            raise invalid_argument("The private key does not match the certificate.", "PrivateKey", "",
                                   ec="0048-00000013")
        if not domain_covered(domain, info.sans or (info.common_name,)):
            raise _domain_mismatch(domain)
        name = f"oss-cname-{domain}-{int(self.cloud.clock.time())}"
        return self.cloud.cas.upload(bucket.account_id, name, request.certificate, request.private_key)

    def delete_cname(self, bucket: Bucket, domain: str) -> bool:
        """DeleteCname; a domain the bucket does not have is a success that changes nothing (200, as the official
        SDK's test expects: aliyun/alibabacloud-oss-python-sdk-v2 tests/integration/test_bucket_cname_client.py).
        Returns whether a binding was removed."""
        domain = normalise_domain(domain)
        with self.lock:
            if domain not in bucket.cnames:
                return False
            del bucket.cnames[domain]
            self._cname_owner.pop(domain, None)
        self.cloud.tls.remove(domain, self.cloud.clock.time())
        return True

    # -- TLS registry ------------------------------------------------------------------------------------------
    def _endpoint(self, bucket: Bucket, host: str, kind: str, chain: tuple[str, ...], key: str) -> EndpointTlsConfig:
        https = bucket.https
        return EndpointTlsConfig(host=host, kind=kind, versions=https.effective_versions,
                                 cipher_mode=https.cipher_mode, custom_tls12=https.custom_tls12,
                                 custom_tls13=https.custom_tls13, chain_pem=chain, key_pem=key, bucket=bucket.name)

    def publish_bucket(self, bucket: Bucket, *, immediate: bool = False) -> None:
        """Publish the default domain, its internal twin and every certificate-bearing CNAME of ``bucket``.

        The OSS service answers virtual-host requests on ``<bucket>.oss-<region>-internal.aliyuncs.com`` too, so
        that name enforces the same https config (with the internal endpoint's own wildcard certificate).
        """
        now = self.cloud.clock.time()
        for host in (bucket.default_host, bucket.internal_host):
            chain, key = self.cloud.certs.public_chain(host)
            self.cloud.tls.publish(self._endpoint(bucket, host, "oss-default", chain, key), now, immediate=immediate)
        for binding in list(bucket.cnames.values()):
            self.publish_cname(bucket, binding, immediate=immediate)

    def publish_cname(self, bucket: Bucket, binding: CnameBinding, *, immediate: bool = False) -> None:
        now = self.cloud.clock.time()
        cert = self.cloud.cas.get(bucket.account_id, binding.cert_id) if binding.cert_id is not None else None
        if cert is None:
            if self.cloud.tls.pending(binding.domain) is not None or binding.domain in self.cloud.tls.hosts():
                self.cloud.tls.remove(binding.domain, now, immediate=immediate)
            return
        self.cloud.tls.publish(self._endpoint(bucket, binding.domain, "oss-cname", tuple(cert.chain_pem),
                                              cert.key_pem), now, immediate=immediate)

    # -- seeds -------------------------------------------------------------------------------------------------
    def seed(self, items: list[dict[str, Any]]) -> None:
        """The seed's ``buckets:`` section (format in ``localcloud/seeds/README.md``)."""
        for index, item in enumerate(items):
            self.seed_bucket(item, f"buckets[{index}]")

    def seed_bucket(self, item: dict[str, Any], where: str) -> Bucket:
        from localcloud.seed import SeedError

        if not isinstance(item, dict):
            raise SeedError(f"{where}: each bucket is a mapping, got {item!r}")
        allowed = {"name", "region", "account", "tags", "storage_class", "https_config", "policy", "encryption",
                   "cnames", "verified_domains", "acl"}
        unknown = set(item) - allowed
        if unknown:
            raise SeedError(f"{where}: unknown keys {', '.join(sorted(unknown))}; "
                            f"expected {', '.join(sorted(allowed))}")
        name = item.get("name")
        if not isinstance(name, str) or not valid_bucket_name(name):
            raise SeedError(f"{where}: name must be a valid bucket name (3-63 lower-case letters, digits, '-')")
        where = f"buckets[{name}]"
        region = str(item.get("region") or self.cloud.region)
        account = str(item.get("account") or self.cloud.default_account_id)
        if account not in self.cloud.iam.accounts():
            raise SeedError(f"{where}.account: unknown account {account!r}")
        storage_class = str(item.get("storage_class", "Standard"))
        if storage_class not in STORAGE_CLASSES:
            raise SeedError(f"{where}.storage_class: {storage_class!r} is not one of {', '.join(STORAGE_CLASSES)}")
        tags = item.get("tags") or {}
        if not isinstance(tags, dict):
            raise SeedError(f"{where}.tags: a mapping of tag keys to values")
        verified = item.get("verified_domains") or []
        if not isinstance(verified, list) or not all(isinstance(d, str) and d for d in verified):
            raise SeedError(f"{where}.verified_domains: a list of domain names or globs (*.example.com)")
        https, configured = HttpsConfig(), False
        if item.get("https_config") is not None:
            try:
                https = https_config_from_seed(item["https_config"])
            except (ServiceError, ValueError, TypeError, AttributeError) as exc:
                raise SeedError(f"{where}.https_config: {getattr(exc, 'message', exc)}") from None
            configured = True
        if self.get(name) is not None:
            raise SeedError(f"{where}: a bucket with this name already exists")
        bucket = self.create_bucket(name, region, account, storage_class=storage_class,
                                    tags={str(k): str(v) for k, v in tags.items()}, https=https,
                                    https_configured=configured, immediate=True)
        bucket.verified_domains = tuple(normalise_domain(d) for d in verified)
        from localcloud.oss.model import BUCKET_ACLS

        acl = str(item.get("acl", "private"))
        if acl not in BUCKET_ACLS:
            raise SeedError(f"{where}.acl: {acl!r} is not one of {', '.join(BUCKET_ACLS)}")
        bucket.acl = acl
        try:
            if item.get("policy") is not None:
                policy = item["policy"]
                self.set_policy(bucket, policy if isinstance(policy, str) else json.dumps(policy))
        except ServiceError as exc:
            raise SeedError(f"{where}.policy: {exc.message}") from None
        if item.get("encryption") is not None:
            spec = item["encryption"]
            try:
                self.set_encryption(bucket, build_encryption(str(spec.get("algorithm", "")),
                                                             str(spec.get("kms_key_id") or ""),
                                                             str(spec.get("kms_data_encryption") or "")))
            except (ServiceError, AttributeError) as exc:
                raise SeedError(f"{where}.encryption: {getattr(exc, 'message', exc)}") from None
        for c_index, cname in enumerate(item.get("cnames") or []):
            self._seed_cname(bucket, cname, f"{where}.cnames[{c_index}]")
        return bucket

    def _seed_cname(self, bucket: Bucket, spec: Any, where: str) -> None:
        from localcloud.seed import SeedError

        if not isinstance(spec, dict) or not spec.get("domain"):
            raise SeedError(f"{where}: each cname is a mapping with a domain")
        unknown = set(spec) - {"domain", "certificate", "status"}
        if unknown:
            raise SeedError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        request = None
        if spec.get("certificate"):
            cert = self.cloud.cas.find_by_name(bucket.account_id, str(spec["certificate"]))
            if cert is None:
                raise SeedError(f"{where}.certificate: no seeded CAS certificate named {spec['certificate']!r} "
                                f"in account {bucket.account_id}")
            request = CertificateRequest(cert_id=str(cert.id), force=True)
        try:
            # Seeds may bind a certificate that does not cover the domain (a wrong_host fixture): bind directly.
            binding = self.put_cname(bucket, str(spec["domain"]), None, immediate=True, verify_ownership=False)
            if request is not None:
                binding.cert_id = int(request.cert_id)
                binding.cert_type = "CAS"
                binding.cert_bound_at = self.cloud.clock.time()
            if spec.get("status"):
                binding.status = str(spec["status"])
            self.publish_cname(bucket, binding, immediate=True)
        except ServiceError as exc:
            raise SeedError(f"{where}: {exc.message}") from None

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            buckets = self.buckets()
            return {
                "buckets": [
                    {
                        "name": b.name, "region": b.region, "account_id": b.account_id, "tags": dict(b.tags),
                        "storage_class": b.storage_class,
                        "https_config": b.https.as_dict() if b.https_configured else None,
                        "policy": b.policy, "encryption": b.encryption.as_dict() if b.encryption else None,
                        "cnames": [
                            {"domain": c.domain, "status": c.status, "cert_id": c.cert_id, "cert_type": c.cert_type}
                            for c in b.cnames.values()
                        ],
                        "verified_domains": list(b.verified_domains),
                        "objects": len(b.objects),
                    }
                    for b in buckets
                ]
            }


def https_config_from_seed(spec: dict[str, Any]) -> HttpsConfig:
    """``{tls: {enable, versions}, cipher_suite?: {enable, strong, custom, tls13_custom}}`` -> validated config."""
    tls = spec.get("tls") or {}
    cipher = spec.get("cipher_suite")
    return build_https_config(
        bool(tls.get("enable", False)), [str(v) for v in tls.get("versions") or []],
        has_cipher_suite=cipher is not None,
        cipher_enabled=bool((cipher or {}).get("enable", False)),
        strong=bool((cipher or {}).get("strong", False)),
        custom_tls12=[str(s) for s in (cipher or {}).get("custom") or []],
        custom_tls13=[str(s) for s in (cipher or {}).get("tls13_custom") or []],
    )


def valid_bucket_name(name: str) -> bool:
    """OSS bucket naming: 3-63 characters, lower-case letters, digits and hyphens, no leading/trailing hyphen."""
    if not 3 <= len(name) <= 63 or name[0] == "-" or name[-1] == "-":
        return False
    return all(ch.islower() or ch.isdigit() or ch == "-" for ch in name) and name.isascii()


def _domain_mismatch(domain: str) -> ServiceError:
    return invalid_argument(f"The certificate does not match the domain {domain}.", "Domain", domain,
                            ec="0048-00000012")


def key_matches_certificate(cert_pem: str, key_pem: str) -> bool:
    """Whether ``key_pem`` is the private key of the certificate ``cert_pem``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        return False
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return bool(cert.public_key().public_bytes(enc, fmt) == key.public_key().public_bytes(enc, fmt))
