"""``tlsguard doctor`` against localcloud: every check passes on a correct deployment, and each failure mode is
detected (missing or wrong EventBridge rule, public or plain-HTTP state bucket, missing function, stale heartbeat,
missing RAM permission), through the official SDK clients over HTTP on loopback."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from click.testing import CliRunner
from tlsguard import cli as cli_module
from tlsguard import doctor
from tlsguard.functions.permissions import OPERATIONS, grants, needed_operations
from tlsguard.policy.loader import load_policy

from tests.functions.conftest import STATE_BUCKET, USER_KEY, settle
from tests.tlsguard.doctor.conftest import ON_CHANGE_OSS_RULE, state_bucket_policy

if TYPE_CHECKING:
    from pathlib import Path

    from tests.tlsguard.doctor.conftest import Deployed

ACCOUNT = "1500000000000001"


def run_cli(policy_file: Path, endpoints_file: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_module.cli, ["doctor", "--policy", str(policy_file), "--localcloud",
                                                 str(endpoints_file), *extra])
    return result.exit_code, result.output


def doctor_json(deployed: Deployed, endpoints_file: Path | None = None) -> tuple[int, dict[str, Any]]:
    code, output = run_cli(deployed.policy_file, endpoints_file or deployed.endpoints_file, "--json")
    return code, json.loads(output)


def line(document: dict[str, Any], group: str, name: str) -> dict[str, Any]:
    found = [c for c in document["checks"] if c["group"] == group and c["name"] == name]
    assert len(found) == 1, (group, name, [(c["group"], c["name"]) for c in document["checks"]])
    return found[0]


def set_state_bucket_policy(deployed: Deployed, text: str | None) -> None:
    """Change the state bucket's policy behind tlsguard's back: through the API, the write's event would reach
    tlsguard-on-change, which puts the state bucket back on the policy (HTTPS-only) before the doctor looks."""
    cloud = deployed.cloud
    cloud.oss.set_policy(cloud.oss.get(STATE_BUCKET), text)


def statuses(document: dict[str, Any], status: str) -> set[tuple[str, str]]:
    return {(c["group"], c["name"]) for c in document["checks"] if c["status"] == status}


def test_every_check_passes_against_a_correct_deployment(deployed_cloud: Deployed) -> None:
    code, document = doctor_json(deployed_cloud)
    assert statuses(document, "fail") == set(), [c for c in document["checks"] if c["status"] == "fail"]
    assert code == 0 and document["exit_code"] == 0 and document["summary"]["fail"] == 0
    assert document["identity"]["AccountId"] == ACCOUNT and document["identity"]["IdentityType"] == "Account"
    assert line(document, "credentials", "identity")["status"] == "pass"
    for name in (f"{STATE_BUCKET} exists", f"{STATE_BUCKET} ACL", f"{STATE_BUCKET} policy",
                 f"{STATE_BUCKET} HTTPS-only"):
        assert line(document, "state-bucket", name)["status"] == "pass", name
    assert line(document, "eventbridge", "oss rule")["status"] == "pass"
    assert ON_CHANGE_OSS_RULE in line(document, "eventbridge", "oss rule")["detail"]
    assert line(document, "eventbridge", "cdn rule")["status"] == "pass"
    for name in doctor.FUNCTION_SET:
        assert line(document, "functions", name)["status"] == "pass", name
    assert "python3.12" in line(document, "functions", "tlsguard-sweep")["detail"]
    assert line(document, "actiontrail", "PutBucketHttpsConfig")["status"] == "pass"  # the heartbeat's event
    heartbeat = line(document, "heartbeat", "event path")
    assert heartbeat["status"] == "pass" and "lag" in heartbeat["detail"]
    # every read the functions need was tried and allowed; every write is "unknown" (no harmless call exists)
    for action in ("oss:GetBucketHttpsConfig", "oss:GetBucketPolicy", "oss:GetBucketEncryption", "oss:ListBuckets",
                   "oss:PutObject", "oss:DeleteObject", "cdn:DescribeUserDomains", "fc:InvokeFunction"):
        assert line(document, "ram", action)["status"] == "pass", action
    assert line(document, "ram", "oss:PutBucketPolicy")["status"] == "unknown"
    assert {c["name"] for c in document["checks"] if c["group"] == "ram"} == {a for a, _ in grants(needed_operations())}
    # the probe object is gone again
    assert not [k for k in deployed_cloud.cloud.oss.get(STATE_BUCKET).objects if "/doctor/" in k]
    code, human = run_cli(deployed_cloud.policy_file, deployed_cloud.endpoints_file)
    assert code == 0 and f"as acs:ram::{ACCOUNT}:root" in human and " 0 fail," in human


def test_a_missing_rule_is_detected(deployed_cloud: Deployed) -> None:
    assert deployed_cloud.cloud.events.remove_rule(ON_CHANGE_OSS_RULE)
    code, document = doctor_json(deployed_cloud)
    assert code == 1
    check = line(document, "eventbridge", "oss rule")
    assert check["status"] == "fail" and "no rule" in check["detail"] and "s deploy" in check["fix"]
    assert line(document, "eventbridge", "cdn rule")["status"] == "pass"
    code, human = run_cli(deployed_cloud.policy_file, deployed_cloud.endpoints_file)
    assert code == 1 and "FAIL    eventbridge  oss rule" in human and "fix: deploy s.yaml again" in human


def test_a_rule_with_wrong_event_names_or_disabled_is_detected(deployed_cloud: Deployed) -> None:
    events = deployed_cloud.cloud.events
    rule = next(r for r in events.rules() if r.name == ON_CHANGE_OSS_RULE)
    pattern = json.loads(json.dumps(rule.pattern))
    pattern["data"]["eventName"] = [n for n in pattern["data"]["eventName"] if n != "PutBucketEncryption"]
    events.add_rule(rule.name, pattern, rule.function)
    _, document = doctor_json(deployed_cloud)
    check = line(document, "eventbridge", "oss rule")
    assert check["status"] == "fail" and "does not name PutBucketEncryption" in check["detail"]
    events.add_rule(rule.name, rule.pattern, rule.function)
    events.set_enabled(rule.name, False)
    _, document = doctor_json(deployed_cloud)
    check = line(document, "eventbridge", "oss rule")
    assert check["status"] == "fail" and f"rule {ON_CHANGE_OSS_RULE} is DISABLE" in check["detail"]


def test_a_public_state_bucket_is_detected(deployed_cloud: Deployed) -> None:
    deployed_cloud.cloud.oss.get(STATE_BUCKET).acl = "public-read"
    _, document = doctor_json(deployed_cloud)
    assert line(document, "state-bucket", f"{STATE_BUCKET} ACL")["status"] == "fail"
    assert "public-read" in line(document, "state-bucket", f"{STATE_BUCKET} ACL")["detail"]
    deployed_cloud.cloud.oss.get(STATE_BUCKET).acl = "private"
    document_policy = state_bucket_policy()
    document_policy["Statement"].append({"Effect": "Allow", "Principal": ["*"], "Action": ["oss:GetObject"],
                                         "Resource": [f"acs:oss:*:*:{STATE_BUCKET}/*"]})
    set_state_bucket_policy(deployed_cloud, json.dumps(document_policy))
    code, document = doctor_json(deployed_cloud)
    check = line(document, "state-bucket", f"{STATE_BUCKET} policy")
    assert code == 1 and check["status"] == "fail" and "oss:GetObject" in check["detail"]
    assert line(document, "state-bucket", f"{STATE_BUCKET} ACL")["status"] == "pass"
    assert line(document, "state-bucket", f"{STATE_BUCKET} HTTPS-only")["status"] == "pass"


def test_a_state_bucket_that_allows_plain_http_is_detected(deployed_cloud: Deployed) -> None:
    set_state_bucket_policy(deployed_cloud, None)
    code, document = doctor_json(deployed_cloud)
    check = line(document, "state-bucket", f"{STATE_BUCKET} HTTPS-only")
    assert code == 1 and check["status"] == "fail" and "acs:SecureTransport" in check["fix"]
    assert line(document, "state-bucket", f"{STATE_BUCKET} policy")["status"] == "pass"


def test_a_missing_function_is_detected(deployed_cloud: Deployed) -> None:
    assert deployed_cloud.cloud.fc.remove_function("tlsguard-webhook")
    code, document = doctor_json(deployed_cloud)
    check = line(document, "functions", "tlsguard-webhook")
    assert code == 1 and check["status"] == "fail" and check["detail"] == "not deployed"
    assert line(document, "functions", "tlsguard-sweep")["status"] == "pass"


def test_a_function_role_missing_from_own_principals_is_detected(deployed_cloud: Deployed) -> None:
    policy_file = deployed_cloud.policy_file
    policy_file.write_text(policy_file.read_text().replace("own_principals: [tlsguard-fc-role]",
                                                           "own_principals: [someone-else]"))
    _, document = doctor_json(deployed_cloud)
    check = line(document, "functions", "tlsguard-on-change")
    assert check["status"] == "fail" and "not in guard.own_principals" in check["detail"]


def test_a_stale_heartbeat_is_detected(deployed_cloud: Deployed) -> None:
    cloud = deployed_cloud.cloud
    cloud.events.set_enabled(ON_CHANGE_OSS_RULE, False)
    cloud.clock.advance(90)  # past the heartbeat's minimum interval, well inside the signing skew
    cloud.fc.fire_timer("tlsguard-sweep", "pending-verifications")  # a heartbeat whose event goes nowhere
    settle(cloud)
    policy = load_policy(deployed_cloud.policy_file)
    ports = doctor.build_ports(policy, str(deployed_cloud.endpoints_file))
    now = doctor.run(ports, policy, clock=cloud.clock.time)
    assert [(c.group, c.status) for c in now.lines if c.group == "heartbeat"] == [("heartbeat", "pass")]
    later = doctor.run(ports, policy, clock=lambda: cloud.clock.time() + 16 * 60)
    heartbeat = next(c for c in later.lines if c.group == "heartbeat")
    assert heartbeat.status == "fail" and "event path broken; only sweeps protect" in heartbeat.detail
    assert later.exit_code == 1
    assert next(c for c in later.lines if c.name == "oss rule").status == "fail"  # the cause, one line up


def test_a_missing_ram_permission_is_detected(deployed_cloud: Deployed) -> None:
    cloud = deployed_cloud.cloud
    every = sorted({action for action, _ in grants(needed_operations())} | {
        OPERATIONS[op].action for op in doctor.OWN_OPERATIONS})
    cloud.iam.restrict(ACCOUNT, "ops-alice", [a for a in every if a != "oss:GetBucketEncryption"])
    code, document = doctor_json(deployed_cloud, deployed_cloud.endpoints_as(USER_KEY))
    assert document["identity"]["IdentityType"] == "RAMUser"
    assert document["identity"]["Arn"] == f"acs:ram::{ACCOUNT}:user/ops-alice"
    check = line(document, "ram", "oss:GetBucketEncryption")
    assert code == 1 and check["status"] == "fail" and "denied" in check["detail"]
    assert "deploy/ram-policy.json" in check["fix"]
    assert line(document, "ram", "oss:GetBucketPolicy")["status"] == "pass"
    assert statuses(document, "fail") == {("ram", "oss:GetBucketEncryption")}
    # without the doctor's own actions its checks cannot tell, and say what to grant
    cloud.iam.restrict(ACCOUNT, "ops-alice", [a for a in every if not a.startswith("eventbridge:")])
    _, document = doctor_json(deployed_cloud, deployed_cloud.endpoints_as(USER_KEY))
    check = line(document, "eventbridge", "oss rule")
    assert check["status"] == "unknown" and "Forbidden.RAM" in check["detail"]
    assert "deploy/ram-policy-doctor.json" in check["fix"]


def test_bad_credentials_fail_the_identity_line(deployed_cloud: Deployed) -> None:
    code, document = doctor_json(deployed_cloud, deployed_cloud.endpoints_as(("LCNOSUCHKEY000000001", "x" * 30)))
    assert code == 1 and line(document, "credentials", "identity")["status"] == "fail"
    assert document["identity"] is None
    assert line(document, "state-bucket", STATE_BUCKET)["status"] == "unknown"  # every other check still ran
