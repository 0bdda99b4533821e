"""``make demo`` end to end (what ``python -m localcloud.demo`` prints, and that it exits 0 having stopped cleanly)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_runs_the_whole_tour() -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'shared'}{os.pathsep}{ROOT}"}
    done = subprocess.run([sys.executable, "-m", "localcloud.demo"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=110, check=False)
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-2000:]
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
    report = Path(re.findall(r"report: (\S+\.json)", out)[-1])
    document = json.loads(report.read_text())
    assert document["event"]["result"]["outcome"] == "remediated" and document["failed_invocations"] == []
    assert document["undo"]["exit_code"] == 0
    digests = document["alerts"]
    assert digests and all(message["kind"] == "digest" for message in digests)
    # one message per run: the sweep, the verification pass, the event, the undo
    assert len(digests) == 4, [m["run"] for m in digests]
    assert document["live"]["verdicts"] == {"effective": len(document["live"]["verifications"])}
    report.unlink()
