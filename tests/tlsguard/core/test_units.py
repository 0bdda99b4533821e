"""Small pure pieces: token buckets, retries, webhook signatures, log redaction, journal ids, trail triggers."""

from __future__ import annotations

import io
import json
import logging

import pytest
from tlsguard.errors import ConfigError, PermissionDenied, Transient
from tlsguard.functions.events import trigger_from_trail
from tlsguard.log import JsonFormatter, bind, register_secret
from tlsguard.model import TargetKind, TargetRef
from tlsguard.notify.webhook import sign, verify
from tlsguard.ratelimit import TokenBucket
from tlsguard.retry import RetryPolicy, call_with_retries
from tlsguard.state import JournalId, new_journal_id

pytestmark = pytest.mark.unit


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_token_bucket_allows_the_burst_then_paces_at_the_rate() -> None:
    fake = FakeTime()
    bucket = TokenBucket(rate=10.0, burst=2.0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(12):
        bucket.acquire()
    # 2 free tokens, then 10 more at 10/s: one second of waiting in total.
    assert fake.slept and abs(fake.now - 1.0) < 1e-9


def test_retries_only_transient_errors() -> None:
    calls = {"transient": 0, "denied": 0}

    def flaky() -> str:
        calls["transient"] += 1
        if calls["transient"] < 3:
            raise Transient("slow down", service="oss", operation="GetBucketPolicy", code="SlowDown")
        return "ok"

    fast = RetryPolicy(attempts=5, initial_seconds=0.001, max_seconds=0.002, jitter_seconds=0.001)
    assert call_with_retries(fast, flaky) == "ok" and calls["transient"] == 3

    def denied() -> str:
        calls["denied"] += 1
        raise PermissionDenied("no", service="oss", operation="GetBucketPolicy", code="AccessDenied")

    with pytest.raises(PermissionDenied):
        call_with_retries(fast, denied)
    assert calls["denied"] == 1


def test_retries_give_up_after_the_configured_attempts() -> None:
    attempts = []

    def always() -> None:
        attempts.append(1)
        raise Transient("503", service="oss", operation="X", status=503)

    with pytest.raises(Transient):
        call_with_retries(RetryPolicy(attempts=3, initial_seconds=0.001, max_seconds=0.001, jitter_seconds=0), always)
    assert len(attempts) == 3


def test_webhook_signature_round_trip_and_tamper_detection() -> None:
    body = b'{"bucket":"b1"}'
    signature = sign("s3cret-value", "1700000000", body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify("s3cret-value", "1700000000", body, signature, now=1700000100)
    assert not verify("s3cret-value", "1700000000", body + b" ", signature, now=1700000100)
    assert not verify("other-secret", "1700000000", body, signature, now=1700000100)
    assert not verify("s3cret-value", "1700000000", body, signature, now=1700009999)  # stale


def test_log_lines_are_json_with_ids_and_secrets_redacted() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("tlsguard.test.redaction")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    try:
        register_secret("hunter2-webhook-secret")
        bind(request_id="req-1", correlation_id="evt-9")
        logger.warning("posting with hunter2-webhook-secret", extra={"access_key_secret": "abc", "bucket": "b1"})
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["request_id"] == "req-1" and line["correlation_id"] == "evt-9" and line["bucket"] == "b1"
    assert "hunter2" not in stream.getvalue()
    assert line["access_key_secret"] == "***"


def test_journal_ids_carry_kind_target_and_time() -> None:
    journal_id = new_journal_id(TargetRef.bucket_target("bucket-a", "cn-hangzhou"), 1_700_000_000.25)
    assert journal_id.startswith("oss-bucket/bucket-a/20231114T221320250000Z-")
    parsed = JournalId.parse(journal_id)
    assert (parsed.kind, parsed.name, parsed.target_key) == (TargetKind.OSS_BUCKET, "bucket-a", "oss-bucket/bucket-a")
    assert abs(parsed.epoch - 1_700_000_000.25) < 1e-3 and str(parsed) == journal_id
    domain = new_journal_id(TargetRef(TargetKind.CDN_DOMAIN, "cdn.example.com"), 1_700_000_000.0)
    assert JournalId.parse(domain).kind is TargetKind.CDN_DOMAIN
    assert new_journal_id(TargetRef.bucket_target("bucket-a"), 1.0) != new_journal_id(
        TargetRef.bucket_target("bucket-a"), 1.0)  # random suffix: two runs in the same microsecond differ
    for bad in ("../../etc/passwd", "oss-bucket/../x/20231114T221320250000Z-0a1b2c3d",
                "bucket-a.20231114T221320250000Z.0a1b2c3d", "nfs/bucket-a/20231114T221320250000Z-0a1b2c3d"):
        with pytest.raises(ConfigError):
            JournalId.parse(bad)


def test_trail_trigger_recognises_our_own_role() -> None:
    own = trigger_from_trail({"eventId": "e1", "eventName": "PutBucketHttpsConfig", "userIdentity": {
        "type": "assumed-role", "userName": "tlsguard-fc-role:sweep", "principalId": "3000:sweep"}},
        ["tlsguard-fc-role"])
    assert own.own and own.event_id == "e1" and own.actor == "assumed-role:tlsguard-fc-role:sweep"
    alice = trigger_from_trail({"eventId": "e2", "userIdentity": {"type": "ram-user", "userName": "ops-alice"}},
                               ["tlsguard-fc-role"])
    assert not alice.own and alice.actor == "ram-user:ops-alice"
    other_role = trigger_from_trail({"eventId": "e3", "userIdentity": {
        "type": "assumed-role", "userName": "deployer:ci"}}, ["tlsguard-fc-role"])
    assert not other_role.own


def test_core_imports_load_no_cloud_sdk() -> None:
    """Cold start: the policy core, checks, lifecycle, runs, CLI and wiring import no SDK until a client is built."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]

    code = ("import sys, tlsguard.policy.loader, tlsguard.model, tlsguard.facets, tlsguard.checks, "
            "tlsguard.lifecycle, tlsguard.runs, tlsguard.verify_live, tlsguard.alerts.path, tlsguard.state, "
            "tlsguard.report, tlsguard.cli, tlsguard.wiring, tlsguard.notify.webhook, tlsguard.functions.events; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('alibabacloud_oss_v2', 'aliyunsdkcore', 'oss2', 'requests', 'urllib3', 'tenacity', 'jsonschema')); "
            "print(','.join(bad))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": f"{root / 'shared'}:{root}", "PATH": "/usr/bin:/bin"}).stdout.strip()
    assert output == ""


def test_real_endpoints_use_the_standard_credential_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from tlsguard.adapters.oss import connection_from_environment

    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "STS.example")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "example-secret")
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "example-token")
    monkeypatch.setenv("TLSGUARD_REGION", "ap-southeast-1")
    connection = connection_from_environment()
    assert (connection.region, connection.access_key_id, connection.security_token) == (
        "ap-southeast-1", "STS.example", "example-token")
    assert connection.endpoint is None and connection.tls_address is None  # the SDK's own HTTPS endpoints
    assert "example-secret" not in repr(connection)
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_ID")
    with pytest.raises(ConfigError, match="ALIBABA_CLOUD_ACCESS_KEY_ID is not set"):  # half a key pair: one line
        connection_from_environment()


def test_one_definition_each_of_the_model_types() -> None:
    """Severity, Finding and Outcome are defined once, in tlsguard.model: no duplicate model type comes back."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "shared" / "tlsguard"
    names = ("Severity", "Finding", "Outcome")
    found: dict[str, list[str]] = {name: [] for name in names}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name in found:
                found[node.name].append(f"{path.relative_to(root)}:{node.lineno}")
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Call):
                # a functional definition (Enum("Severity", ...), namedtuple(...), NewType(...)) counts too
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and target.id in found:
                        found[target.id].append(f"{path.relative_to(root)}:{node.lineno}")
    assert {name: [where.split(":")[0] for where in places] for name, places in found.items()} == {
        name: ["model.py"] for name in names}, found
    # ... and the grep agrees (what a reviewer would run)
    import re

    pattern = re.compile(r"^\s*class\s+(Severity|Finding|Outcome)\b", re.MULTILINE)
    hits = [(str(path.relative_to(root)), m.group(1)) for path in root.rglob("*.py")
            for m in pattern.finditer(path.read_text(encoding="utf-8"))]
    assert sorted(hits) == [("model.py", "Finding"), ("model.py", "Outcome"), ("model.py", "Severity")]
