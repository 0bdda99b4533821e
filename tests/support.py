"""Helpers every test of the lifecycle uses: wire tlsguard exactly as the CLI does, against the test's localcloud.

``wiring_for(cloud, policy_path)`` builds the ports (OSS over HTTPS through the TLS plane, CDN and CAS over RPC, the
live prober dialling the TLS plane, localcloud's CA bundle as trust) with fast retries; ``lifecycle_for`` adds a
run context on localcloud's clock. ``outsider(cloud)`` is the RAM user ops-alice through the same SDK: how drift is
introduced.
"""

from __future__ import annotations

import dataclasses
import textwrap
from typing import TYPE_CHECKING, Any

from tlsguard.adapters.oss import AliyunOss, OssConnection, connection_from_endpoint_data
from tlsguard.lifecycle import Lifecycle
from tlsguard.policy.loader import load_policy
from tlsguard.retry import RetryPolicy
from tlsguard.wiring import Wiring, build, context

if TYPE_CHECKING:
    from pathlib import Path

    from tlsguard.model import Mode

ACCOUNT = "1500000000000001"
ALICE = ("LCTESTUSERKEY0000001", "lc-test-user-secret-0000000000001")
STATE_BUCKET = "tlsguard-state"
FAST_RETRY = RetryPolicy(attempts=4, initial_seconds=0.01, max_seconds=0.05, jitter_seconds=0.01)


def write_policy(tmp_path: Path, text: str, name: str = "tlsguard.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def connection_for(endpoints: dict[str, Any], key: tuple[str, str] | None = None, token: str = "") -> OssConnection:
    """How the CLI connects with ``--localcloud`` (HTTPS through the TLS plane), optionally with other keys."""
    connection = connection_from_endpoint_data(endpoints)
    if key is None:
        return connection
    return dataclasses.replace(connection, access_key_id=key[0], access_key_secret=key[1], security_token=token)


def wiring_for(cloud: Any, policy_path: Path, **kwargs: Any) -> Wiring:
    """The CLI's wiring against localcloud, with fast retries."""
    kwargs.setdefault("retry", FAST_RETRY)
    return build(load_policy(policy_path), localcloud=dict(cloud.endpoints), **kwargs)


def lifecycle_for(cloud: Any, policy_path: Path, *, apply: bool = True, mode: Mode | None = None,
                  parallel_reads: bool = False, wiring: Wiring | None = None, **kwargs: Any) -> Lifecycle:
    """A lifecycle wired as the CLI wires it, on localcloud's clock (tests move it)."""
    wiring = wiring or wiring_for(cloud, policy_path, **kwargs)
    ctx = context(wiring, apply=apply, mode=mode, parallel_reads=parallel_reads, clock=cloud.clock.time)
    ctx.write_backoff_seconds = 0.01
    return Lifecycle(ctx)


def outsider(cloud: Any) -> AliyunOss:
    """The RAM user ops-alice, through the same SDK: how drift is introduced in tests."""
    return AliyunOss(connection_for(cloud.endpoints, ALICE), retry=RetryPolicy(attempts=1))


# -- real handshakes with localcloud's TLS plane (appended for the function-set tests) ------------------------------
def bucket_host(bucket: str, region: str = "cn-hangzhou") -> str:
    """The virtual-hosted name a bucket's TLS edge answers to."""
    return f"{bucket}.oss-{region}.aliyuncs.com"


def tls_accepts(endpoints: dict[str, Any], host: str, version: str) -> bool:
    """Whether the TLS plane completes a handshake pinned to ``version`` ("TLSv1.0" ... "TLSv1.3") for SNI ``host``."""
    import socket
    import ssl
    import warnings

    pinned = {"TLSv1.0": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1, "TLSv1.2": ssl.TLSVersion.TLSv1_2,
              "TLSv1.3": ssl.TLSVersion.TLSv1_3}[version]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # pinning TLS 1.0/1.1 is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = pinned
    context.set_ciphers("ALL:@SECLEVEL=0")
    try:
        with socket.create_connection(("127.0.0.1", int(endpoints["tls_port"])), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname=host):
            return True
    except (ssl.SSLError, OSError):
        return False


def served_sha1(endpoints: dict[str, Any], host: str) -> str:
    """The SHA-1 fingerprint (lower-case hex) of the leaf the TLS plane serves for SNI ``host``."""
    import hashlib
    import socket
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", int(endpoints["tls_port"])), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None, f"no certificate served for {host}"
    return hashlib.sha1(der).hexdigest()


def pem_sha1(pem: str) -> str:
    """The SHA-1 fingerprint (lower-case hex) of a PEM certificate."""
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
    return hashlib.sha1(der).hexdigest()
