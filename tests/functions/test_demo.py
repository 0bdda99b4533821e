"""``make demo`` end to end (what ``python -m localcloud.demo`` prints, and that it exits 0 having stopped cleanly).

The demo runs once per module; each test reads its output and the JSON report it writes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[str, dict[str, Any]]]:
    """The demo's output and its JSON report (removed afterwards)."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'shared'}{os.pathsep}{ROOT}"}
    for variable in [v for v in env if v.startswith("TLSGUARD_")]:  # the demo passes its own, as a user would
        del env[variable]
    done = subprocess.run([sys.executable, "-m", "localcloud.demo"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=110, check=False)
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-2000:]
    found = re.findall(r"report: (\S+\.json)", out)
    assert found, out[-4000:]
    report = Path(found[-1])
    yield out, json.loads(report.read_text())
    report.unlink()


@pytest.mark.slow
def test_demo_runs_the_whole_tour(demo: tuple[str, dict[str, Any]]) -> None:
    out, document = demo
    assert "acme-prod-assets" in out and "TLS management enabled=True" in out
    assert re.search(r"TLS 1\.1 handshake to acme-staging-web\S+: ACCEPTED", out)
    assert re.search(r"TLS 1\.1 handshake to acme-staging-web\S+: REFUSED", out)
    assert re.search(r"sweep listed \d+ targets and queued \d+ batches to tlsguard-check", out)
    # every kind of target goes through the one lifecycle in the same sweep
    assert re.search(r"cdn-domain\s+dl\.acme-shop\.example\s+REMEDIATED", out)
    assert re.search(r"oss-cname\s+img\.acme-shop\.example\s+REMEDIATED", out)
    assert re.search(r"oss-cname\s+legacy\.acme-shop\.example\s+DRIFTED .*no certificate in CAS can be bound", out)
    # one digest for the whole fanned-out sweep, not one message per target
    assert re.search(r"ONE digest from \d+ batches \(signature verified\)", out)
    assert "needs a person: oss-cname legacy.acme-shop.example: cert.chain" in out
    # pending -> effective, proven by handshakes
    assert re.search(r"\d+ endpoints probed: \d+ effective", out) and "not_effective" not in out
    assert "img.acme-shop.example now serves CN=*.acme-shop.example" in out
    # the event path: rolled back, journaled before the write, one digest
    assert '"eventName": "PutBucketHttpsConfig"' in out and "tlsguard-on-change: REMEDIATED" in out
    assert 'PutBucketHttpsConfig: TLS versions ["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"] -> ["TLSv1.2", "TLSv1.3"]' \
        in out
    assert "intent filed" in out and "before the write" in out
    # undo of a certificate binding
    assert re.search(r"\$ tlsguard undo oss-cname/img\.acme-shop\.example/\S+", out)
    assert "img.acme-shop.example serves CN=img.acme-shop.example" in out and "again" in out
    assert re.search(r"2 entries; 0 incomplete", out)
    assert "localcloud stopped" in out and "demo failed" not in out
    assert document["event"]["result"]["outcome"] == "remediated" and document["failed_invocations"] == []
    assert document["undo"]["exit_code"] == 0
    digests = document["alerts"]
    assert digests and all(message["kind"] == "digest" for message in digests)
    # one message per run: the sweep, the verification pass, the event, the undo
    assert len(digests) == 4, [m["run"] for m in digests]
    assert document["live"]["verdicts"] == {"effective": len(document["live"]["verifications"])}


def _dingtalk_text(message: dict[str, Any]) -> str:
    return str(message["body"]["markdown"]["text"])


def _lark_text(message: dict[str, Any]) -> str:
    return "\n".join(str(e.get("content") or "") for e in message["body"]["card"]["elements"])


@pytest.mark.slow
def test_demo_alerts_reach_dingtalk_and_lark_signed_and_routed(demo: tuple[str, dict[str, Any]]) -> None:
    out, document = demo
    chat = document["chat"]
    # GIVEN the robots seeded from chat_robots, their URLs and secrets passed as environment variables
    robots = {r["name"]: r for r in chat["robots"]}
    assert {r["service"] for r in robots.values()} >= {"dingtalk", "lark"}
    # THEN the sinks checked every signature and refused nothing
    assert all(r["refused"] == 0 for r in robots.values()), robots
    assert "the sinks verified every signature and refused nothing" in out
    dingtalk = [m for m in chat["messages"] if m["service"] == "dingtalk"]
    lark = [m for m in chat["messages"] if m["service"] == "lark"]
    assert robots["acme-oncall"]["accepted"] == len(dingtalk) and robots["acme-certs"]["accepted"] == len(lark)

    # the DingTalk robot recorded exactly ONE digest for the whole fanned-out hourly sweep, with its counts
    sweep = [m for m in dingtalk if "run: check sweep:hourly:" in _dingtalk_text(m)]
    assert len(sweep) == 1, [m["body"]["markdown"]["title"] for m in dingtalk]
    assert sweep[0]["msgtype"] == "markdown" and sweep[0]["seq"] in document["sweep"]["chat"]
    title = sweep[0]["body"]["markdown"]["title"]
    counts = document["sweep"]["counts"]
    assert title.startswith(f"tlsguard: {document['sweep']['summary']['targets']} targets, ")
    for outcome in ("drifted", "remediated", "compliant"):
        assert f"{counts[outcome]} {outcome}" in title, (title, counts)
    text = _dingtalk_text(sweep[0])
    # routed on severity critical/high: what needs a person, with the undo command for what was put back
    assert "Needs a person" in text and "legacy.acme-shop.example: cert.chain" in text
    assert "acme-sandbox-scratch: oss.tls_versions" in text
    assert "oss.cipher_suites: drifted" not in text  # the sandbox bucket's MEDIUM finding is not routed there
    assert re.search(r"undo: tlsguard undo oss-bucket/acme-prod-logs/\S+\)", text)
    # the run that found only MEDIUM/INFO items (the verification pass) sent DingTalk nothing
    assert not any("pending-verifications" in _dingtalk_text(m) for m in dingtalk)
    # and the terminal shows the same message as the group sees it
    assert re.search(r"DingTalk robot acme-oncall .* accepted 1 markdown message", out)
    assert re.search(r"\| tlsguard: \d+ targets, ", out) and "| Needs a person" in out

    # the Lark bot recorded an interactive card for the certificate alert, and only certificate targets
    cards = [m for m in lark if m["msgtype"] == "interactive" and "legacy.acme-shop.example: cert.chain: incomplete"
             in _lark_text(m)]
    assert len(cards) == 1 and cards[0]["seq"] in document["sweep"]["chat"]
    card = cards[0]["body"]["card"]
    assert card["header"]["template"] == "orange"  # the worst that needs a person is HIGH
    assert card["header"]["title"]["content"] == title
    assert "acme-sandbox-scratch" not in _lark_text(cards[0]) and "docs.acme-shop.example" in _lark_text(cards[0])
    assert re.search(r"Lark bot acme-certs .* accepted 1 card", out) and "[interactive card, orange header]" in out
    # no signature, robot token or secret in the report or the output
    assert "sign" not in cards[0]["body"] and "access_token=" not in json.dumps(document)
    seeded = yaml.safe_load((ROOT / "localcloud" / "seeds" / "example.yaml").read_text())["chat_robots"]
    for robot in seeded:
        for value in (robot["token"], robot["secret"]):
            assert value not in json.dumps(document) and value not in out
