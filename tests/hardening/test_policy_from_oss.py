"""A policy kept in OSS (``TLSGUARD_POLICY=oss://<bucket>/<key>``) meets the same bounds as a packaged file: the
function reads at most ``MAX_POLICY_BYTES + 1`` bytes of the object and refuses it by its size, with a clear error."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from tlsguard.adapters.oss import AliyunOss
from tlsguard.errors import ConfigError
from tlsguard.functions import runtime
from tlsguard.policy.loader import MAX_POLICY_BYTES

from tests.support import ACCOUNT, connection_for

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud

BUCKET = "tlsguard-policy-store"
SMALL_POLICY = b"version: 1\nmode: enforce\ndefaults:\n  tls_versions: [TLSv1.2, TLSv1.3]\n"


@pytest.fixture
def store(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> AliyunOss:
    cloud.oss.create_bucket(BUCKET, "cn-hangzhou", ACCOUNT)
    runtime._policy_cache.clear()
    monkeypatch.setattr(runtime, "_policy_cache", {})
    return AliyunOss(connection_for(cloud.endpoints))


def test_an_oversized_policy_object_is_refused_by_its_size(store: AliyunOss, cloud: LocalCloud,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    huge = b"# filler\n" * (3 * MAX_POLICY_BYTES // 9)
    assert store.put_object_if_absent(BUCKET, "policy/huge.yaml", huge)
    monkeypatch.setenv("TLSGUARD_POLICY", f"oss://{BUCKET}/policy/huge.yaml")
    with pytest.raises(ConfigError, match="over the limit") as caught:
        runtime.load_policy_for(connection_for(cloud.endpoints))
    assert f"oss://{BUCKET}/policy/huge.yaml" in str(caught.value)


def test_the_adapter_reads_no_more_than_asked(store: AliyunOss) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    assert store.put_object_if_absent(BUCKET, "blob", body)
    assert store.get_object(BUCKET, "blob", max_bytes=1000) == body[:1001]
    assert store.get_object(BUCKET, "blob", max_bytes=len(body)) == body
    assert store.get_object(BUCKET, "blob") == body
    assert store.get_object(BUCKET, "absent", max_bytes=10) is None


def test_a_policy_object_within_the_limit_loads(store: AliyunOss, cloud: LocalCloud,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert store.put_object_if_absent(BUCKET, "policy/tlsguard.yaml", SMALL_POLICY)
    monkeypatch.setenv("TLSGUARD_POLICY", f"oss://{BUCKET}/policy/tlsguard.yaml")
    policy = runtime.load_policy_for(connection_for(cloud.endpoints))
    assert policy.mode.value == "enforce"
