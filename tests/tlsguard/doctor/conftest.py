"""A correctly deployed localcloud for ``tlsguard doctor``: s.yaml's function set, a private HTTPS-only state
bucket, and one heartbeat that has travelled the event path."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from localcloud.cloud import LocalCloud, write_endpoints
from tests.functions.conftest import (
    COMPLIANT_POLICY,
    POLICY,
    STATE_BUCKET,
    USER_KEY,
    compliant_bucket,
    deploy_functions,
    settle,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ON_CHANGE_OSS_RULE = "tlsguard-on-change-oss-tls-drift"


def state_bucket_policy() -> dict[str, Any]:
    """The state bucket's policy: HTTPS-only, nothing granted to anyone."""
    document: dict[str, Any] = json.loads(json.dumps(COMPLIANT_POLICY).replace("{b}", STATE_BUCKET))
    return document


@dataclass
class Deployed:
    cloud: LocalCloud
    endpoints_file: Path
    policy_file: Path
    tmp_path: Path

    def endpoints_as(self, key: tuple[str, str], name: str = "endpoints-user.json") -> Path:
        """The endpoints file with another AccessKey pair (the doctor then runs as that identity)."""
        document = dict(self.cloud.endpoints)
        document["access_key_id"], document["access_key_secret"] = key
        path = self.tmp_path / name
        write_endpoints(path, document)
        return path


@pytest.fixture
def deployed_cloud(cloud: LocalCloud, tmp_path: Path) -> Iterator[Deployed]:
    saved = (cloud.fc.timers_enabled, cloud.fc.async_retry_base_seconds, cloud.fc.async_retry_max_seconds)
    cloud.fc.timers_enabled = False
    cloud.fc.async_retry_base_seconds, cloud.fc.async_retry_max_seconds = 0.01, 0.05
    cloud.seed({"buckets": [{"name": STATE_BUCKET, "region": "cn-hangzhou", "policy": state_bucket_policy()},
                            compliant_bucket("app-prod")]})
    policy_file = tmp_path / "tlsguard.yaml"
    policy_file.write_text(POLICY)
    deployment = deploy_functions(cloud, tmp_path, policy_file)
    cloud.fc.fire_timer("tlsguard-sweep", "pending-verifications")  # writes the first heartbeat
    settle(cloud)
    yield Deployed(cloud, tmp_path / "endpoints.json", policy_file, tmp_path)
    deployment.close()
    cloud.fc.wait_idle(10)
    cloud.fc.timers_enabled, cloud.fc.async_retry_base_seconds, cloud.fc.async_retry_max_seconds = saved


__all__ = ["ON_CHANGE_OSS_RULE", "USER_KEY", "Deployed"]
