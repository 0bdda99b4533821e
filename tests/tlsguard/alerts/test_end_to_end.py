"""Alerts end to end: real runs (``tlsguard apply``, the sweep and on_change functions deployed from s.yaml) deliver
their digest through all six channel types to localcloud's sinks: the DingTalk, WeCom, Lark and Slack robots
(signatures, sizes and rates checked the way each service does, ``docs/emulated/chat.md``), the SMTP sink (STARTTLS,
AUTH, ``docs/emulated/smtp.md``) and a loopback webhook receiver that verifies tlsguard's signature.

* Routing: each channel gets exactly the items its routes select (severity, check id, target kind, target-name
  glob), the same from the CLI and from the functions; an item no route selects goes nowhere, and the counts reach
  every channel that gets a message.
* A burst of 500 drifted targets in one fanned-out sweep stays within every service's limits (no sink refused a
  request, no channel was throttled) and loses nothing a person must see: every channel lists the worst items routed
  to it and says how many more are in the run's report, which lists every one of them.
* No secret and no full robot URL shows in a log line, the report, the CLI output, an exception text or a delivery
  result, including when a service refuses (wrong secret, wrong key, wrong password) and when nothing answers.
* A failed delivery never blocks a remediation: it is named in the report, the working channels hear of it, what
  the channel should have carried waits in the outbox and reaches it once it is back, exactly once; a run that no
  channel heard fails after its work, its retries only drain the outbox (never sweep or remediate again), and the
  failed path (the ``tlsguard-failed`` on-failure destination) alerts the channels that work and fails loudly when
  it cannot deliver.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import socket
import textwrap
import time
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from tlsguard.alerts.channels import _http
from tlsguard.alerts.channels import email as email_channel
from tlsguard.alerts.path import MAX_ITEMS_PER_SECTION
from tlsguard.cli import cli
from tlsguard.log import JsonFormatter
from tlsguard.policy.model import RawHttpsConfig
from tlsguard.ports import BucketRef
from tlsguard.retry import RetryPolicy

from localcloud.cloud import write_endpoints
from tests.functions.conftest import (
    ALERT_SECRET,
    CDN_COMPLIANT_CONFIGS,
    POLICY,
    STATE_BUCKET,
    USER_KEY,
    AlertSink,
    cdn_domain,
    compliant_bucket,
    deploy_functions,
    drifted_bucket,
    invocations,
    outsider,
    result_of,
    settle,
)
from tests.tlsguard.alerts._chat_support import fresh_limiters  # noqa: F401  (autouse)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from localcloud.cloud import LocalCloud
    from localcloud.sdeploy import Deployment

SERVICES = ("dingtalk", "wecom", "lark", "slack")
#: What each robot's URL carries (and the signing secrets): none of these may ever show outside the request.
TOKENS = {"dingtalk": "9c1e4b7a2f3d4e5f60718293a4b5c6d7e8f9012345678901",
          "wecom": "5e8d2c1b-7a6f-4e3d-9c2b-1a0f9e8d7c6b", "lark": "8b7a6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d",
          "slack": "T0E2E0001/B0E2E0001/e2eSlackTailS3cr3t77"}
SECRETS = {"dingtalk": "SECe2e-dingtalk-signing-secret-0001", "lark": "e2e-lark-signing-secret-0001"}
SMTP_USER = "alerts@mail.example.com"
SMTP_PASSWORD = "e2e-Smtp-Passw0rd-9d41c7"
#: Channel name → type.
CHANNELS = {"sec-dingtalk": "dingtalk", "bucket-wecom": "wecom", "certs-lark": "lark", "tls-slack": "slack",
            "ops-mail": "email", "audit-hook": "webhook"}
ROUTES = """\
    - match: {severity: [critical, high]}
      channels: [sec-dingtalk]
    - match: {kind: [oss-bucket], target: ["watch-*"]}
      channels: [bucket-wecom]
    - match: {kind: [oss-cname, cdn-domain]}
      channels: [certs-lark]
    - match: {check: [oss.tls_versions, cdn.tls_versions], severity: [high]}
      channels: [tls-slack]
    - match: {target: ["prod-*"]}
      channels: [ops-mail]
    - match: {severity: [medium], check: [oss.default_encryption]}
      channels: [audit-hook]
"""
RULES = """\
rules:
  - name: watched-only
    match: {globs: ["watch-*", "misc-*"]}
    mode: alert
"""

#: The drifted targets of the routing fleet: (kind, what the run does, severity, check) — and where each goes.
FLEET = {
    "prod-web": ("oss-bucket", "remediated", "HIGH", "oss.tls_versions"),
    "watch-logs": ("oss-bucket", "needs_attention", "HIGH", "oss.tls_versions"),
    "watch-media": ("oss-bucket", "needs_attention", "MEDIUM", "oss.default_encryption"),
    "misc-archive": ("oss-bucket", "needs_attention", "MEDIUM", "oss.tls_versions"),  # no route selects it
    "shop.example.com": ("oss-cname", "needs_attention", "HIGH", "cert.expiry"),
    "edge.cdn.example": ("cdn-domain", "remediated", "HIGH", "cdn.tls_versions"),
}
EXPECTED = {
    "sec-dingtalk": {"prod-web", "watch-logs", "shop.example.com", "edge.cdn.example"},
    "bucket-wecom": {"watch-logs", "watch-media"},
    "certs-lark": {"shop.example.com", "edge.cdn.example"},
    "tls-slack": {"prod-web", "watch-logs", "edge.cdn.example"},
    "ops-mail": {"prod-web"},
    "audit-hook": {"watch-media"},
}
TLS10 = RawHttpsConfig(tls_enabled=True, tls_versions=("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"))
TLS12_ONLY = RawHttpsConfig(tls_enabled=True, tls_versions=("TLSv1.2",))


# -- the sinks and the channels pointing at them ------------------------------------------------------------------
@pytest.fixture
def fast_async(cloud: LocalCloud) -> Iterator[None]:
    saved = (cloud.fc.async_retry_base_seconds, cloud.fc.async_retry_max_seconds)
    cloud.fc.async_retry_base_seconds, cloud.fc.async_retry_max_seconds = 0.01, 0.05
    yield
    cloud.fc.async_retry_base_seconds, cloud.fc.async_retry_max_seconds = saved


@pytest.fixture
def no_timers(cloud: LocalCloud) -> Iterator[None]:
    saved = cloud.fc.timers_enabled
    cloud.fc.timers_enabled = False
    yield
    cloud.fc.timers_enabled = saved


@pytest.fixture(autouse=True)
def fresh_mail_limiters() -> Iterator[None]:
    """The email channel's per-process rate limiter starts full (earlier tests of the session posted too)."""
    email_channel._limiters.clear()
    yield
    email_channel._limiters.clear()


def robot_url(cloud: LocalCloud, service: str, token: str = "") -> str:
    base, token = cloud.endpoints["chat"][service], token or TOKENS[service]
    return {"dingtalk": f"{base}?access_token={token}", "wecom": f"{base}?key={token}"}.get(service,
                                                                                          f"{base}/{token}")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class Sinks:
    """Every channel type's receiver, and the environment that points the policy's channels at them."""

    cloud: LocalCloud
    hook: AlertSink
    env: dict[str, str] = field(default_factory=dict)
    smtp_port: int = 0

    def secrets(self) -> list[str]:
        """Every value that must never leave a request: tokens, signing secrets, the password, whole URLs."""
        values = [*TOKENS.values(), TOKENS["slack"].rsplit("/", 1)[-1], *SECRETS.values(), SMTP_PASSWORD,
                  ALERT_SECRET, self.hook.url]
        values += [value for name, value in self.env.items() if name.endswith(("_URL", "_SECRET", "_PASSWORD"))]
        return sorted(set(values), key=len, reverse=True)

    def policy(self, tmp_path: Path, *, routes: str = ROUTES, language: str = "en", mode: str = "enforce",
               extra: str = "") -> Path:
        """POLICY of the function tests, the watched-only rule, and an ``alerts:`` block naming every channel."""
        smtp = self.cloud.endpoints["smtp"]
        channels = textwrap.dedent(f"""\
            - {{name: sec-dingtalk, type: dingtalk, url_env: TLSGUARD_DINGTALK_URL,
               secret_env: TLSGUARD_DINGTALK_SECRET}}
            - {{name: bucket-wecom, type: wecom, url_env: TLSGUARD_WECOM_URL}}
            - {{name: certs-lark, type: lark, url_env: TLSGUARD_LARK_URL, secret_env: TLSGUARD_LARK_SECRET}}
            - {{name: tls-slack, type: slack, url_env: TLSGUARD_SLACK_URL}}
            - name: ops-mail
              type: email
              smtp_host: "{smtp['host']}"
              smtp_port: {self.smtp_port or smtp['port']}
              from: {SMTP_USER}
              to: [ops@example.com]
              secret_env: TLSGUARD_SMTP_PASSWORD
              ca_bundle: "{self.cloud.endpoints['ca_bundle']}"
              timeout_seconds: 5
            - {{name: audit-hook, type: webhook, url_env: TLSGUARD_AUDIT_HOOK_URL,
               secret_env: TLSGUARD_AUDIT_HOOK_SECRET}}
            """)
        text = POLICY.replace("mode: enforce", f"mode: {mode}") + RULES + extra + "alerts:\n" + \
            f"  language: {language}\n  channels:\n" + textwrap.indent(channels, "    ") + "  routes:\n" + routes
        path = tmp_path / "tlsguard.yaml"
        path.write_text(text)
        return path


@pytest.fixture
def sinks(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sinks]:
    cloud.seed({"chat_robots": [{"service": s, "name": f"{s}-robot", "token": TOKENS[s],
                                 **({"secret": SECRETS[s]} if s in SECRETS else {})} for s in SERVICES],
                "smtp_users": [{"username": SMTP_USER, "password": SMTP_PASSWORD}]})
    hook = AlertSink()
    sinks = Sinks(cloud, hook)
    sinks.env = {"TLSGUARD_DINGTALK_URL": robot_url(cloud, "dingtalk"), "TLSGUARD_DINGTALK_SECRET": SECRETS["dingtalk"],
                 "TLSGUARD_WECOM_URL": robot_url(cloud, "wecom"), "TLSGUARD_LARK_URL": robot_url(cloud, "lark"),
                 "TLSGUARD_LARK_SECRET": SECRETS["lark"], "TLSGUARD_SLACK_URL": robot_url(cloud, "slack"),
                 "TLSGUARD_SMTP_PASSWORD": SMTP_PASSWORD, "TLSGUARD_AUDIT_HOOK_URL": hook.url,
                 "TLSGUARD_AUDIT_HOOK_SECRET": ALERT_SECRET}
    for name, value in sinks.env.items():
        monkeypatch.setenv(name, value)
    yield sinks
    hook.close()


def outbox_keys(cloud: LocalCloud) -> list[str]:
    """The alert outbox in the state bucket (``tlsguard/alerts/outbox/<channel>/...``), listed through the SDK."""
    return sorted(outsider(cloud).list_objects(STATE_BUCKET, "tlsguard/alerts/outbox/"))


def control(cloud: LocalCloud, path: str) -> Any:
    with urllib.request.urlopen(f"{cloud.endpoints['control']}{path}", timeout=10) as response:
        return json.loads(response.read())


def shown(service: str, body: dict[str, Any]) -> str:
    """What a person sees of one accepted chat message."""
    if service == "dingtalk":
        return f"{body['markdown']['title']}\n{body['markdown']['text']}"
    if service == "wecom":
        return str(body[body["msgtype"]]["content"])
    if service == "lark":
        card = body["card"]
        return card["header"]["title"]["content"] + "\n" + "\n".join(e["content"] for e in card["elements"])
    return "\n".join(b["text"]["text"] for b in body["blocks"])


def received(sinks: Sinks) -> dict[str, list[str]]:
    """Channel name → the text of every message its sink accepted (through the control APIs)."""
    texts: dict[str, list[str]] = {}
    for name, service in CHANNELS.items():
        if service in SERVICES:
            texts[name] = [shown(service, m["body"]) for m in control(sinks.cloud, f"/chat/messages?service={service}")]
    texts["ops-mail"] = [f"{m['subject']}\n{m['text']}" for m in control(sinks.cloud, "/smtp/messages")]
    texts["audit-hook"] = [json.dumps(d, ensure_ascii=False) for d in sinks.hook.digests()]
    return texts


def names_in(texts: list[str], names: Any = FLEET) -> set[str]:
    return {name for name in names if any(name in text for text in texts)}


def refused(cloud: LocalCloud) -> dict[str, int]:
    """How many requests each robot refused (signature, size, rate...), from ``GET /chat/robots``."""
    return {f"{r['service']}:{r['name']}": int(r["refused"]) for r in control(cloud, "/chat/robots")}


class LogLines(logging.Handler):
    """tlsguard's log lines, formatted exactly as they leave the process (JSON, redacted)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    root = logging.getLogger("tlsguard")
    handler, level = LogLines(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def tlsguard(*args: str) -> Any:
    """The ``tlsguard`` command as a person runs it."""
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output, result.output
    return result


def timer_event(payload: str = "") -> bytes:
    return json.dumps({"triggerTime": "2026-11-23T03:00:00Z", "triggerName": "hourly", "payload": payload}).encode()


def cdn_as_alice(cloud: LocalCloud) -> Any:
    from tlsguard.adapters.cdn import AliyunCdn
    from tlsguard.certs._rpc import RpcConnection

    return AliyunCdn(RpcConnection(region=cloud.region, access_key_id=USER_KEY[0], access_key_secret=USER_KEY[1],
                                   domain=cloud.endpoints["cdn"], protocol="http"))


# -- the routing fleet ----------------------------------------------------------------------------------------------
def seed_drifted_fleet(cloud: LocalCloud) -> None:
    """FLEET as the seed puts it: drifted buckets (TLS 1.0 on; SM4 where AES256 is declared; TLS 1.2 only), a custom
    domain whose certificate expires in 5 days with no renewal in CAS, and a CDN domain with TLS 1.0 on."""
    watch_media = compliant_bucket("watch-media")
    watch_media["encryption"] = {"algorithm": "SM4"}
    misc = compliant_bucket("misc-archive")
    misc["https_config"] = {"tls": {"enable": True, "versions": ["TLSv1.2"]}}
    site = compliant_bucket("shop-site")
    site["cnames"] = [{"domain": "shop.example.com", "certificate": "shop-2026"}]
    cloud.seed({
        "certificates": [{"name": "shop-2026", "kind": "expiring", "domains": ["shop.example.com"], "days": 5},
                         {"name": "edge-cert", "kind": "valid", "domains": ["edge.cdn.example"]}],
        "buckets": [{"name": STATE_BUCKET, "region": "cn-hangzhou"}, drifted_bucket("prod-web"),
                    drifted_bucket("watch-logs"), watch_media, misc, site],
        "cdn_domains": [cdn_domain("edge.cdn.example", "edge-cert", https_tls_version={
            **CDN_COMPLIANT_CONFIGS["https_tls_version"], "tls10": "on", "tls11": "on"})],
    })


def seed_compliant_fleet(cloud: LocalCloud) -> None:
    """The same buckets and CDN domain, every one compliant (on_change: ops-alice drifts them)."""
    cloud.seed({
        "certificates": [{"name": "edge-cert", "kind": "valid", "domains": ["edge.cdn.example"]}],
        "buckets": [{"name": STATE_BUCKET, "region": "cn-hangzhou"},
                    *(compliant_bucket(name) for name in ("prod-web", "watch-logs", "watch-media", "misc-archive"))],
        "cdn_domains": [cdn_domain("edge.cdn.example", "edge-cert")],
    })


def drift_as_alice(cloud: LocalCloud) -> None:
    """ops-alice's writes (official SDKs): each one is an ActionTrail event for on_change."""
    from tlsguard.policy.model import EncryptionAlgorithm, EncryptionPolicy

    oss = outsider(cloud)
    oss.put_https_config(BucketRef("prod-web", "cn-hangzhou"), TLS10)
    oss.put_https_config(BucketRef("watch-logs", "cn-hangzhou"), TLS10)
    oss.put_encryption(BucketRef("watch-media", "cn-hangzhou"), EncryptionPolicy(EncryptionAlgorithm.SM4))
    oss.put_https_config(BucketRef("misc-archive", "cn-hangzhou"), TLS12_ONLY)
    cdn_as_alice(cloud).batch_set_config("edge.cdn.example", {"https_tls_version": {
        **CDN_COMPLIANT_CONFIGS["https_tls_version"], "tls10": "on", "tls11": "on"}})


def run_cli(sinks: Sinks, policy: Path, tmp_path: Path) -> tuple[dict[str, Any], Any]:
    endpoints = tmp_path / "endpoints.json"
    write_endpoints(endpoints, sinks.cloud.endpoints)
    result = tlsguard("apply", "--policy", str(policy), "--localcloud", str(endpoints), "--json")
    assert result.stdout.startswith("{"), result.output
    return json.loads(result.stdout), result


def run_sweep(sinks: Sinks, policy: Path, tmp_path: Path) -> tuple[dict[str, Any], Deployment]:
    deployment = deploy_functions(sinks.cloud, tmp_path, policy, environment=sinks.env)
    body = result_of(sinks.cloud.fc.invoke("tlsguard-sweep", timer_event()))
    settle(sinks.cloud)  # tlsguard's own writes come back as events: compared, never alerted
    return body, deployment


def assert_routed(sinks: Sinks, expected: dict[str, set[str]], *, targets: int) -> dict[str, list[str]]:
    """Each channel got exactly its routes' targets; every message carries the run's counts (a run of ``targets``)."""
    texts = received(sinks)
    for name, names in expected.items():
        assert names_in(texts[name]) == names, (name, texts[name])
        assert texts[name], name
        for text in texts[name]:
            if name == "audit-hook":
                assert json.loads(text)["counts"]["targets"] == targets, text
            else:
                assert f"tlsguard: {targets} target" in text, (name, text)  # "1 target", "7 targets"
    assert not names_in([t for name in texts for t in texts[name]], ["misc-archive"])  # no route: nowhere
    assert sinks.hook.bad_signatures == 0
    assert set(refused(sinks.cloud).values()) == {0}
    return texts


@pytest.mark.parametrize("entry", ["cli", "sweep"])
def test_each_channel_gets_exactly_what_its_routes_select(cloud: LocalCloud, sinks: Sinks, tmp_path: Path,
                                                           fast_async: None, no_timers: None, entry: str) -> None:
    seed_drifted_fleet(cloud)
    policy = sinks.policy(tmp_path)
    deployment = None
    if entry == "cli":
        report, _ = run_cli(sinks, policy, tmp_path)
    else:
        report, deployment = run_sweep(sinks, policy, tmp_path)
    try:
        outcomes = {t["target"]["name"]: t["outcome"] for t in report["targets"]}
        assert {n: o for n, o in outcomes.items() if n in FLEET} == {
            "prod-web": "remediated", "watch-logs": "drifted", "watch-media": "drifted", "misc-archive": "drifted",
            "shop.example.com": outcomes["shop.example.com"], "edge.cdn.example": "remediated"}
        assert outcomes["shop.example.com"] in ("drifted", "refused", "failed")  # nothing in CAS can renew it
        texts = assert_routed(sinks, EXPECTED, targets=7)
        # The delivery results of the run, in its report: every channel delivered what was routed to it.
        channels = {c["name"]: c for c in report["alerts"]["channels"]}
        assert set(channels) == set(CHANNELS)
        assert all(c["sent"] and c["error"] is None and c["retries"] == 0 for c in channels.values()), channels
        assert {n: channels[n]["items"] for n in ("bucket-wecom", "tls-slack", "ops-mail", "audit-hook")} == {
            "bucket-wecom": 2, "tls-slack": 3, "ops-mail": 1, "audit-hook": 1}
        # The webhook carries the routed items themselves, sections and checks as the alert path filed them.
        [hooked] = sinks.hook.digests()
        assert hooked["counts"]["targets"] == 7 and hooked["remediated"] == []
        assert [(i["target"]["name"], i["check"], i["severity"]) for i in hooked["needs_attention"]] == [
            ("watch-media", "oss.default_encryption", "MEDIUM")]
        # What a person acts on: the remediated bucket's undo command reaches the mail routed to it.
        prod = next(t for t in report["targets"] if t["target"]["name"] == "prod-web")
        assert f"tlsguard undo {prod['journal_id']}" in "\n".join(texts["ops-mail"])
    finally:
        if deployment is not None:
            deployment.close()
            cloud.fc.wait_idle(10)


def test_on_change_routes_each_events_digest_the_same_way(cloud: LocalCloud, sinks: Sinks, tmp_path: Path,
                                                          fast_async: None, no_timers: None) -> None:
    seed_compliant_fleet(cloud)
    deployment = deploy_functions(cloud, tmp_path, sinks.policy(tmp_path), environment=sinks.env)
    try:
        drift_as_alice(cloud)
        settle(cloud, timeout=60)
        handled = [h for r in invocations(cloud, "tlsguard-on-change") for h in result_of(r)["handled"]
                   if not h["trigger"]["own"]]
        assert {h["target"]["name"]: h["outcome"] for h in handled} == {
            "prod-web": "remediated", "watch-logs": "drifted", "watch-media": "drifted", "misc-archive": "drifted",
            "edge.cdn.example": "remediated"}
        expected = {name: names - {"shop.example.com"} for name, names in EXPECTED.items()}
        texts = assert_routed(sinks, expected, targets=1)
        # Who changed it: ActionTrail's actor reaches the person.
        assert all("ram-user:ops-alice" in text for text in texts["bucket-wecom"])
    finally:
        deployment.close()
        cloud.fc.wait_idle(10)


# -- a burst of 500 findings in one sweep ----------------------------------------------------------------------------
BURST_BUCKETS = [f"burst-{i:04d}" for i in range(460)]
BURST_DOMAINS = [f"c{i:02d}.burst.example" for i in range(20)]
BURST_CDN = [f"e{i:02d}.cdn.burst.example" for i in range(20)]
BURST = {"oss-bucket": BURST_BUCKETS, "oss-cname": BURST_DOMAINS, "cdn-domain": BURST_CDN}
BURST_ROUTES = """\
    - match: {severity: [critical, high]}
      channels: [sec-dingtalk]
    - match: {kind: [oss-bucket]}
      channels: [bucket-wecom]
    - match: {kind: [oss-cname, cdn-domain]}
      channels: [certs-lark]
    - channels: [tls-slack, ops-mail, audit-hook]
"""
#: What each channel's routes select of the burst (kinds of target).
BURST_EXPECTED = {"sec-dingtalk": ("oss-bucket", "oss-cname", "cdn-domain"), "bucket-wecom": ("oss-bucket",),
                  "certs-lark": ("oss-cname", "cdn-domain"), "tls-slack": ("oss-bucket", "oss-cname", "cdn-domain"),
                  "ops-mail": ("oss-bucket", "oss-cname", "cdn-domain"),
                  "audit-hook": ("oss-bucket", "oss-cname", "cdn-domain")}
#: The SMTP sink's size limit for the burst (the channel reads it from EHLO SIZE and splits below it).
BURST_MAIL_MAX_BYTES = 64 * 1024
OMITTED = re.compile(r"(\d+) more items are in the run's report")


def seed_burst(cloud: LocalCloud) -> None:
    """500 drifted targets in one seed document: 460 buckets with TLS 1.0 on, 20 custom domains whose (wildcard)
    certificate expires in 5 days with nothing in CAS to renew it, 20 CDN domains with TLS 1.0 on."""
    host = compliant_bucket("burst-host")
    host["cnames"] = [{"domain": domain, "certificate": "burst-expiring"} for domain in BURST_DOMAINS]
    cloud.seed({
        "certificates": [{"name": "burst-expiring", "kind": "expiring", "domains": ["*.burst.example"], "days": 5},
                         {"name": "burst-edge", "kind": "valid", "domains": ["*.cdn.burst.example"]}],
        "buckets": [{"name": STATE_BUCKET, "region": "cn-hangzhou"}, host,
                    *(drifted_bucket(name) for name in BURST_BUCKETS)],
        "cdn_domains": [cdn_domain(name, "burst-edge", https_tls_version={
            **CDN_COMPLIANT_CONFIGS["https_tls_version"], "tls10": "on", "tls11": "on"}) for name in BURST_CDN],
    })


def test_a_burst_of_500_findings_in_one_sweep_stays_within_every_limit_and_loses_nothing(
        cloud: LocalCloud, sinks: Sinks, tmp_path: Path, fast_async: None, no_timers: None) -> None:
    seed_burst(cloud)
    cloud.smtp.max_message_size = BURST_MAIL_MAX_BYTES
    for rule in cloud.events.rules():  # only the sweep judges (no event follows a seed; keep it that way)
        cloud.events.set_enabled(rule.name, False)
    deployment = deploy_functions(cloud, tmp_path, sinks.policy(tmp_path, routes=BURST_ROUTES, mode="alert"),
                                  environment=sinks.env)
    try:
        started = time.monotonic()
        sweep = result_of(cloud.fc.invoke("tlsguard-sweep", timer_event()))
        assert sweep["fanout"] is True and sweep["targets"] == 501  # burst-host is compliant
        settle(cloud, timeout=240)
        elapsed = time.monotonic() - started
        checks = [result_of(record) for record in invocations(cloud, "tlsguard-check")]
        assert len(checks) == sweep["batches"]
        # The run's report (every batch's part of it) lists every target that needs a person.
        reported = {t["target"]["name"]: t for c in checks for t in c["targets"]}
        every = {name for names in BURST.values() for name in names}
        assert every <= set(reported) and all(reported[n]["outcome"] != "compliant" for n in every)
        # One digest for the whole sweep: sent by whichever batch completed the set.
        [sender] = [c for c in checks if c["alerts"]["channels"]]
        channels = {c["name"]: c for c in sender["alerts"]["channels"]}
        assert set(channels) == set(CHANNELS)
        assert all(c["sent"] and c["error"] is None and c["retries"] == 0 for c in channels.values()), channels
        # Within every limit: no robot refused a request (size, rate, signature), no mail went over the size limit.
        assert set(refused(cloud).values()) == {0}, refused(cloud)
        mails = control(cloud, "/smtp/messages")
        assert mails and all(m["size"] <= BURST_MAIL_MAX_BYTES for m in mails)
        assert sinks.hook.bad_signatures == 0 and len(sinks.hook.digests()) == 1
        # Nothing a person must see is lost: per channel, every target routed to it is listed in one of its
        # messages, or counted in "N more items are in the run's report" (the report lists them all, above).
        texts = received(sinks)
        for name, kinds in BURST_EXPECTED.items():
            routed = {n for kind in kinds for n in BURST[kind]}
            listed = names_in(texts[name], every)
            assert listed <= routed, (name, listed - routed)
            if name == "audit-hook":
                [digest] = sinks.hook.digests()
                omitted = int(digest["omitted"])
            else:
                counts = [int(n) for text in texts[name] for n in OMITTED.findall(text)]
                omitted = counts[-1] if counts else 0
            # One item per target here: the worst 50 of what is routed are listed, the count says the rest.
            assert len(listed) == min(len(routed), MAX_ITEMS_PER_SECTION), (name, len(listed), len(routed))
            assert omitted == len(routed) - len(listed), (name, omitted, len(routed), len(listed))
            assert channels[name]["items"] == len(listed), channels[name]
        # The certificate channel's 40 targets fit its digest: every one of them is named.
        assert names_in(texts["certs-lark"], every) == set(BURST_DOMAINS) | set(BURST_CDN)
        print(f"burst: {sweep['batches']} batches, sweep to last delivery {elapsed:.1f} s, messages "
              + ", ".join(f"{n}={channels[n]['messages']}" for n in CHANNELS))
    finally:
        deployment.close()
        cloud.fc.wait_idle(10)


# -- no secret and no full robot URL, anywhere -------------------------------------------------------------------
FAST_CHAT_RETRY = RetryPolicy(attempts=3, initial_seconds=0.05, max_seconds=0.1, jitter_seconds=0.0)
WRONG = {"dingtalk_secret": "SECwrong-dingtalk-secret-e2e-4471", "wecom_key": "0badc0de-1111-4222-8333-944455556666",
         "lark_secret": "wrong-lark-secret-e2e-5582", "slack_tail": "T0E2E0001/B0E2E0001/wrongSlackTail0e2e",
         "smtp_password": "wrong-Smtp-Passw0rd-e2e-6693", "hook_token": "hookTok3nInTheQuery0e2e7704"}
#: What each service answers a refused message with (docs/emulated/chat.md, smtp.md); for "unreachable", the
#: transport error.
REFUSALS = {"sec-dingtalk": "310000", "bucket-wecom": "93000", "certs-lark": "19021", "tls-slack": "invalid_token",
            "ops-mail": "535", "audit-hook": "connection refused"}


@pytest.fixture
def fast_chat_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chat channels built inside a run back off in milliseconds (the same retries, without seconds of waiting)."""
    original = _http.ChatChannel.__init__

    def init(self: _http.ChatChannel, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("retry", FAST_CHAT_RETRY)
        original(self, *args, **kwargs)

    monkeypatch.setattr(_http.ChatChannel, "__init__", init)


def misconfigure(sinks: Sinks, monkeypatch: pytest.MonkeyPatch, how: str) -> list[str]:
    """Point every channel at a refusal (``refused``: wrong secret, key, tail or password) or at a closed port
    (``unreachable``); the webhook is unreachable either way, with a token in its URL. Returns the new values."""
    port = closed_port()
    hook = f"http://127.0.0.1:{port}/alerts?token={WRONG['hook_token']}"
    if how == "refused":
        changes = {"TLSGUARD_DINGTALK_SECRET": WRONG["dingtalk_secret"], "TLSGUARD_LARK_SECRET": WRONG["lark_secret"],
                   "TLSGUARD_WECOM_URL": robot_url(sinks.cloud, "wecom", WRONG["wecom_key"]),
                   "TLSGUARD_SLACK_URL": robot_url(sinks.cloud, "slack", WRONG["slack_tail"]),
                   "TLSGUARD_SMTP_PASSWORD": WRONG["smtp_password"], "TLSGUARD_AUDIT_HOOK_URL": hook}
    else:
        changes = {name: re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", value)
                   for name, value in sinks.env.items() if name.endswith("_URL")}
        changes["TLSGUARD_AUDIT_HOOK_URL"] = hook
        sinks.smtp_port = port
    sinks.env.update(changes)
    for name, value in changes.items():
        monkeypatch.setenv(name, value)
    return [*changes.values(), *WRONG.values(), WRONG["slack_tail"].rsplit("/", 1)[-1]]


def leaks(texts: dict[str, str], secrets: list[str]) -> dict[str, list[str]]:
    """Where each secret shows: {place: [secret, ...]} (empty when nothing leaked)."""
    found = {place: [s for s in secrets if s in text] for place, text in texts.items()}
    return {place: values for place, values in found.items() if values}


@pytest.mark.parametrize("how", ["delivered", "refused", "unreachable"])
def test_no_secret_or_robot_url_in_logs_report_output_errors_or_results(
        cloud: LocalCloud, sinks: Sinks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_lines: LogLines,
        fast_chat_retries: None, how: str) -> None:
    seed_drifted_fleet(cloud)
    secrets = sinks.secrets()
    if how != "delivered":
        secrets = sorted({*secrets, *misconfigure(sinks, monkeypatch, how), *sinks.secrets()}, key=len, reverse=True)
    report, result = run_cli(sinks, sinks.policy(tmp_path), tmp_path)
    report_file = tmp_path / "report.json"
    report_file.write_text(result.stdout)
    channels = {c["name"]: c for c in report["alerts"]["channels"]}
    assert set(channels) == set(CHANNELS)
    if how == "delivered":
        assert all(c["sent"] for c in channels.values()), channels
    else:
        # Every delivery failed, each naming what the service answered; the remediation was made regardless.
        assert not any(c["sent"] for c in channels.values()) and report["alerts"]["sent"] is False
        for name, code in REFUSALS.items():
            expected = code if how == "refused" and name != "audit-hook" else "connection refused"
            assert expected in (channels[name]["error"] or "").lower(), (name, channels[name]["error"])
        assert control(cloud, "/chat/messages") == [] and control(cloud, "/smtp/messages") == []
        assert all(f"{n}:" in report["alerts"]["error"] for n in CHANNELS)
        assert any('"digest not delivered"' in line for line in log_lines.lines)
    assert {t["target"]["name"]: t["outcome"] for t in report["targets"]}["prod-web"] == "remediated"
    assert log_lines.lines  # the run did log (so an empty capture cannot pass for a clean one)
    places = {"log lines": "\n".join(log_lines.lines), "report file": report_file.read_text(),
              "CLI stdout": result.stdout, "CLI stderr": result.stderr,
              "delivery results": json.dumps(report["alerts"], ensure_ascii=False)}
    assert leaks(places, secrets) == {}


def test_a_channel_misconfigured_in_the_environment_is_named_without_its_value(
        cloud: LocalCloud, sinks: Sinks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_lines: LogLines) -> None:
    """A robot URL that is not https:// (nor loopback http://) stops the run before anything is written: the error
    names the channel and the variable, never the URL or its key; a variable left unset is named the same way."""
    seed_drifted_fleet(cloud)
    policy = sinks.policy(tmp_path)
    leaked_url = f"http://hooks.example.com/cgi-bin/webhook/send?key={WRONG['wecom_key']}"
    monkeypatch.setenv("TLSGUARD_WECOM_URL", leaked_url)
    report, result = None, run_cli_raw(sinks, policy, tmp_path)
    assert result.exit_code == 1 and report is None
    assert "bucket-wecom" in result.stderr and "TLSGUARD_WECOM_URL" in result.stderr
    monkeypatch.delenv("TLSGUARD_WECOM_URL")
    unset = run_cli_raw(sinks, policy, tmp_path)
    assert unset.exit_code == 1 and "TLSGUARD_WECOM_URL" in unset.stderr and "not set" in unset.stderr
    places = {"CLI output": result.output + unset.output, "log lines": "\n".join(log_lines.lines)}
    assert leaks(places, [leaked_url, WRONG["wecom_key"], *sinks.secrets()]) == {}
    assert outsider(cloud).get_https_config(BucketRef("prod-web", "cn-hangzhou")).tls_versions == TLS10.tls_versions


def run_cli_raw(sinks: Sinks, policy: Path, tmp_path: Path) -> Any:
    endpoints = tmp_path / "endpoints.json"
    write_endpoints(endpoints, sinks.cloud.endpoints)
    return tlsguard("apply", "--policy", str(policy), "--localcloud", str(endpoints), "--json")


# -- a failed delivery: never blocks a remediation, named in the report, heard by the others, the failed path ------
def test_a_failed_channel_never_blocks_a_remediation_and_reaches_the_failed_path(
        cloud: LocalCloud, sinks: Sinks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_async: None,
        no_timers: None, log_lines: LogLines) -> None:
    seed_drifted_fleet(cloud)
    for rule in cloud.events.rules():  # only the runs below judge
        cloud.events.set_enabled(rule.name, False)
    secrets = sorted({*sinks.secrets(), WRONG["dingtalk_secret"]}, key=len, reverse=True)
    broken = {**sinks.env, "TLSGUARD_DINGTALK_SECRET": WRONG["dingtalk_secret"]}

    def redeploy(phase: str, environment: dict[str, str]) -> Deployment:
        """A deployment with its own policy file: localcloud runs every function in this one process, where a warm
        instance's wiring (channels built from the environment) is cached per policy; FC starts new instances."""
        (tmp_path / phase).mkdir()
        return deploy_functions(cloud, tmp_path, sinks.policy(tmp_path / phase), environment=environment)

    deployment = redeploy("broken", broken)
    try:
        record = cloud.fc.invoke("tlsguard-sweep", timer_event())
        assert record["status"] == "succeeded"  # the sweep itself does not fail over an alert
        sweep = result_of(record)
        # The remediation was made (read back through the SDK) although one channel refused the digest.
        assert {t["target"]["name"]: t["outcome"] for t in sweep["targets"]}["prod-web"] == "remediated"
        assert set(outsider(cloud).get_https_config(BucketRef("prod-web", "cn-hangzhou")).tls_versions) == {
            "TLSv1.2", "TLSv1.3"}
        # Named in the report: the channel, its error (DingTalk's code), no secret.
        delivery = sweep["alerts"]
        failed = [c for c in delivery["channels"] if not c["sent"]]
        assert [(c["name"], "310000" in c["error"]) for c in failed] == [("sec-dingtalk", True)]
        assert delivery["sent"] is True and delivery["error"].startswith("sec-dingtalk: ")
        # The channels that work hear that it did not (the delivery_failed notice, after their digest).
        texts = received(sinks)
        for name in CHANNELS:
            if name == "sec-dingtalk":
                assert texts[name] == []
                continue
            notice = [t for t in texts[name] if "could not be delivered to sec-dingtalk" in t]
            assert len(notice) == 1 and "310000" in notice[0], (name, texts[name])
        [hook_notice] = [d for d in sinks.hook.digests() if d["notices"]]
        assert hook_notice["notices"][0]["kind"] == "delivery_failed"
        assert hook_notice["notices"][0]["channel"] == "sec-dingtalk"

        # What the refused channel should have carried waits in the outbox (a partial failure: the sweep does not
        # fail, a person heard of the run elsewhere). Fixed, the next sweep delivers it there first, once.
        assert delivery["outbox"] == {"saved": ["sec-dingtalk"], "redelivered": [], "dropped": 0}
        assert [k.split("/")[-2] for k in outbox_keys(cloud)] == ["sec-dingtalk"]
        deployment.close()
        cloud.fc.wait_idle(10)
        deployment = redeploy("fixed", sinks.env)
        again = result_of(cloud.fc.invoke("tlsguard-sweep", timer_event()))
        assert all(c["sent"] for c in again["alerts"]["channels"]), again["alerts"]
        settle(cloud)  # whichever run flushed first (the sweep, or on_change for its heartbeat) delivered it
        assert outbox_keys(cloud) == []
        [delayed] = received(sinks)["sec-dingtalk"]  # the sweep's own digest has nothing new for it
        assert "Delayed: 1 digest for sec-dingtalk" in delayed and "310000" in delayed
        assert names_in([delayed]) == EXPECTED["sec-dingtalk"]  # everything routed there, remediations included

        # The failed path: an invocation that exhausts its retries reaches tlsguard-failed (its on-failure
        # destination), which alerts every channel; the refused channel makes tlsguard-failed itself fail, loudly.
        deployment.close()
        cloud.fc.wait_idle(10)
        deployment = redeploy("broken-again", broken)
        spec = cloud.fc.function("tlsguard-check")
        cloud.fc.register(dataclasses.replace(spec, environment={**spec.environment,
                                                                 "TLSGUARD_POLICY": "/nonexistent/tlsguard.yaml"}))
        batch = cloud.fc.invoke("tlsguard-check", b'{"buckets": ["prod-web"]}', invocation_type="Async")
        settle(cloud, timeout=60)
        final = cloud.fc.invocation(batch["id"])
        assert final is not None and final.status == "failed" and final.attempts == 4
        [destination] = [cloud.fc.invocation(r["id"]) for r in invocations(cloud, "tlsguard-failed")]
        assert destination is not None and destination.status == "failed"
        assert destination.error is not None and destination.error["errorType"] == "RetryableFailure"
        message = destination.error["errorMessage"]
        assert "alert not delivered: sec-dingtalk" in message and "310000" in message
        assert message.endswith("; saved in the outbox for sec-dingtalk")  # the next run delivers it there
        assert [k.split("/")[-2] for k in outbox_keys(cloud)] == ["sec-dingtalk"]
        texts = received(sinks)
        for name in CHANNELS:
            if name == "sec-dingtalk":
                continue
            heard = "\n".join(texts[name])
            assert "tlsguard-check failed after 4 attempts" in heard, (name, texts[name])
            assert heard.count("could not be delivered to sec-dingtalk") == 2, name  # the sweep's, the failed's
        records = json.dumps([r for r in cloud.fc.invocations()], default=str, ensure_ascii=False)
        places = {"log lines": "\n".join(log_lines.lines), "invocation records": records,
                  "destination error": json.dumps(destination.error, ensure_ascii=False)}
        assert leaks(places, secrets) == {}
    finally:
        deployment.close()
        cloud.fc.wait_idle(10)



# -- nobody heard: the outbox, the failed invocation, its retry that only drains, tlsguard-failed -------------------
#: Every bucket item goes to the DingTalk robot alone: when it is down, nobody hears of the run.
DINGTALK_ONLY = """\
    - match: {kind: [oss-bucket]}
      channels: [sec-dingtalk]
"""


def dingtalk_down(cloud: LocalCloud, requests: int | None = None) -> int:
    """The DingTalk robot answers 503 (errcode -1, "system busy": retried by the channel, then a failed delivery),
    to every request or to the next ``requests``; returns the fault rule's id."""
    rule: int = cloud.faults.add_dict({"kind": "error", "service": "dingtalk", "resource": "dingtalk-robot",
                                       "status": 503, "code": "ServiceUnavailable", "remaining": requests}).id
    return rule


def state_json(cloud: LocalCloud, key: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(outsider(cloud).get_object(STATE_BUCKET, key) or b"{}")
    return document


def test_a_channel_down_during_on_change_fails_the_invocation_into_the_failed_path_and_delivers_once_back(
        cloud: LocalCloud, sinks: Sinks, tmp_path: Path, fast_async: None, no_timers: None,
        fast_chat_retries: None) -> None:
    seed_compliant_fleet(cloud)
    deployment = deploy_functions(cloud, tmp_path, sinks.policy(tmp_path, routes=DINGTALK_ONLY), environment=sinks.env)
    try:
        fault = dingtalk_down(cloud)
        outsider(cloud).put_https_config(BucketRef("prod-web", "cn-hangzhou"), TLS10)  # ops-alice drifts it
        settle(cloud, timeout=60)

        # The remediation was made and journaled once, whatever became of the alert.
        assert set(outsider(cloud).get_https_config(BucketRef("prod-web", "cn-hangzhou")).tls_versions) == {
            "TLSv1.2", "TLSv1.3"}
        journaled = [k for k in outsider(cloud).list_objects(STATE_BUCKET, "tlsguard/journal/oss-bucket/prod-web/")
                     if k.endswith(".intent.json")]
        assert len(journaled) == 1
        # The invocation that handled ops-alice's event failed after its work, so FC retried it (each retry only
        # re-delivered the outbox, never the work) and handed it to tlsguard-failed.
        [alice] = [cloud.fc.invocation(r["id"]) for r in invocations(cloud, "tlsguard-on-change")
                   if r["status"] == "failed"]
        assert alice is not None and alice.attempts == 4 and alice.destination is not None
        message = alice.error["errorMessage"] if alice.error else ""
        assert "alert still not delivered to sec-dingtalk" in message and "was not repeated" in message, message
        # Its report names the channel and what it did (FC keeps only the exception: the report is in the bucket).
        found = re.search(r"the run.s report: (\S+\.json)", message)
        assert found is not None, message
        report = state_json(cloud, found[1])
        [handled] = report["handled"]
        assert (handled["target"]["name"], handled["outcome"]) == ("prod-web", "remediated")
        assert journaled[0].endswith(f"{handled['journal_id']}.intent.json")
        [channel] = report["alerts"]["channels"]
        assert (channel["name"], channel["sent"]) == ("sec-dingtalk", False) and "HTTP 503" in channel["error"]
        assert report["alerts"]["outbox"]["saved"] == ["sec-dingtalk"]
        # tlsguard-failed ran: every channel that works heard that on_change failed, and why.
        [failed] = [cloud.fc.invocation(r["id"]) for r in invocations(cloud, "tlsguard-failed")]
        assert failed is not None and failed.source == "destination:tlsguard-on-change"
        assert failed.status == "failed" and failed.error is not None  # DingTalk is still down: loudly
        assert "saved in the outbox for sec-dingtalk" in failed.error["errorMessage"]
        texts = received(sinks)
        for name in CHANNELS:
            if name != "sec-dingtalk":
                assert any("tlsguard-on-change failed after 4 attempts" in t and "sec-dingtalk" in t
                           for t in texts[name]), (name, texts[name])
        assert texts["sec-dingtalk"] == []
        assert [k.split("/")[-2] for k in outbox_keys(cloud)] == ["sec-dingtalk", "sec-dingtalk"]  # run + failed
        assert list(outsider(cloud).list_objects(STATE_BUCKET, "tlsguard/alerts/retry/")) == []  # FC retries no more

        # DingTalk is back: the next run (here a CLI apply) delivers what waited, once, in one message.
        cloud.faults.remove(fault)
        first, _ = run_cli(sinks, sinks.policy(tmp_path, routes=DINGTALK_ONLY), tmp_path)
        assert first["alerts"]["outbox"]["redelivered"] == [
            {"name": "sec-dingtalk", "entries": 2, "sent": True, "error": None}]
        [delayed] = received(sinks)["sec-dingtalk"]
        assert "Delayed: 2 digests for sec-dingtalk" in delayed and handled["journal_id"] in delayed
        assert "tlsguard-on-change failed after 4 attempts" in delayed
        assert outbox_keys(cloud) == []
        run_cli(sinks, sinks.policy(tmp_path, routes=DINGTALK_ONLY), tmp_path)
        assert len([t for t in received(sinks)["sec-dingtalk"] if handled["journal_id"] in t]) == 1  # exactly once
    finally:
        deployment.close()
        cloud.fc.wait_idle(10)


def test_a_retried_sweep_invocation_does_not_sweep_again_and_only_delivers_the_outbox(
        cloud: LocalCloud, sinks: Sinks, tmp_path: Path, fast_async: None, no_timers: None,
        fast_chat_retries: None) -> None:
    seed_drifted_fleet(cloud)
    deployment = deploy_functions(cloud, tmp_path, sinks.policy(tmp_path, routes=DINGTALK_ONLY), environment=sinks.env)
    for rule in cloud.events.rules():  # only the sweep runs (its own writes' events would drain the outbox too)
        cloud.events.set_enabled(rule.name, False)
    try:
        dingtalk_down(cloud, requests=FAST_CHAT_RETRY.attempts)  # every try of the first attempt, no more
        before = control(cloud, "/stats")
        record = cloud.fc.invoke("tlsguard-sweep", timer_event(), invocation_type="Async")
        settle(cloud, timeout=60)
        sweep = cloud.fc.invocation(record["id"])
        assert sweep is not None and sweep.status == "succeeded" and sweep.attempts == 2
        retried = json.loads(sweep.result or b"{}")
        assert retried["retry"] == "outbox delivered"
        assert retried["alerts"]["outbox"]["redelivered"] == [
            {"name": "sec-dingtalk", "entries": 1, "sent": True, "error": None}]
        # The second attempt did not sweep: it read each bucket's encryption and listed the CDN domains as often as
        # one sweep does (measured below with another sweep), and each drifted target was remediated once.
        per_sweep = ("oss:GetBucketEncryption", "cdn:DescribeUserDomains")
        after = control(cloud, "/stats")
        invocation = [after.get(op, 0) - before.get(op, 0) for op in per_sweep]
        result_of(cloud.fc.invoke("tlsguard-sweep", timer_event().replace(b"03:00:00", b"04:00:00")))
        latest = control(cloud, "/stats")
        one_sweep = [latest.get(op, 0) - after.get(op, 0) for op in per_sweep]
        assert invocation == one_sweep and all(one_sweep), (invocation, one_sweep)
        journaled = [k for k in outsider(cloud).list_objects(STATE_BUCKET, "tlsguard/journal/oss-bucket/prod-web/")
                     if k.endswith(".intent.json")]
        assert len(journaled) == 1
        # The first attempt's report names the channel; the digest reached DingTalk once, delayed.
        report = state_json(cloud, retried["report"])
        assert [(c["name"], c["sent"]) for c in report["alerts"]["channels"]] == [("sec-dingtalk", False)]
        assert {t["target"]["name"]: t["outcome"] for t in report["targets"]}["prod-web"] == "remediated"
        [delayed] = received(sinks)["sec-dingtalk"]
        assert "Delayed: 1 digest for sec-dingtalk" in delayed
        assert names_in([delayed]) == {"prod-web", "watch-logs", "watch-media", "misc-archive"}
        assert outbox_keys(cloud) == [] and invocations(cloud, "tlsguard-failed") == []
        assert list(outsider(cloud).list_objects(STATE_BUCKET, "tlsguard/alerts/retry/")) == []
    finally:
        deployment.close()
        cloud.fc.wait_idle(10)


def test_a_fanned_out_sweeps_unheard_digest_fails_only_its_sender_and_no_batch_is_skipped(
        cloud: LocalCloud, sinks: Sinks, tmp_path: Path, fast_async: None, no_timers: None,
        fast_chat_retries: None) -> None:
    """The batches of one sweep share its correlation: the record that lets a retry skip its work names the batch,
    so only the invocation that sent the combined digest (a batch, or the sweep) fails, and every batch checks."""
    seed_drifted_fleet(cloud)
    deployment = deploy_functions(cloud, tmp_path, sinks.policy(tmp_path, routes=DINGTALK_ONLY), environment=sinks.env)
    for rule in cloud.events.rules():
        cloud.events.set_enabled(rule.name, False)
    try:
        dingtalk_down(cloud)
        sweep = result_of(cloud.fc.invoke("tlsguard-sweep", timer_event('{"threshold": 2, "batch_size": 2}')))
        assert sweep["fanout"] is True and sweep["batches"] == 4
        settle(cloud, timeout=60)
        records = [cloud.fc.invocation(r["id"]) for r in invocations(cloud, "tlsguard-check")]
        assert len(records) == 4 and all(r is not None for r in records)
        failed = [r for r in records if r is not None and r.status == "failed"]
        [sender] = failed  # the one batch that completed the set sent the digest; the others succeeded
        assert sender.attempts == 4 and sender.error is not None
        assert "alert still not delivered to sec-dingtalk" in sender.error["errorMessage"]
        checked = [t["target"]["name"] for r in records if r is not None and r.status == "succeeded"
                   for t in json.loads(r.result or b"{}")["targets"]]
        found = re.search(r"report: (\S+\.json)", sender.error["errorMessage"])
        assert found is not None
        report = state_json(cloud, found[1])
        checked += [t["target"]["name"] for t in report["targets"]]
        assert {"prod-web", "watch-logs", "watch-media", "misc-archive"} <= set(checked)
        journaled = [k for k in outsider(cloud).list_objects(STATE_BUCKET, "tlsguard/journal/oss-bucket/prod-web/")
                     if k.endswith(".intent.json")]
        assert len(journaled) == 1
        [destination] = [cloud.fc.invocation(r["id"]) for r in invocations(cloud, "tlsguard-failed")]
        assert destination is not None and destination.source == "destination:tlsguard-check"
    finally:
        deployment.close()
        cloud.fc.wait_idle(10)


# -- deploy wiring: s.yaml passes each channel its variables, from the deploying shell -------------------------------
def test_s_yaml_generated_for_the_policy_hands_every_function_its_channel_variables(
        cloud: LocalCloud, sinks: Sinks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_async: None,
        no_timers: None) -> None:
    """``deploy/generate.py --policy`` writes every variable the policy's channels read into every function's
    environmentVariables as ``${env('NAME')}``; ``s deploy`` (localcloud's sdeploy) takes the values from the shell.
    Nothing else gives the functions those values here: they are removed from this process's environment."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from localcloud.sdeploy import deploy

    root = Path(__file__).resolve().parents[3]
    tree = tmp_path / "repo"
    shutil.copytree(root / "shared", tree / "shared", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("deploy/generate.py", "s.yaml", "docs/checks.md", "schemas/policy.schema.json"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, tree / name)
    for name in (root / "deploy").glob("ram-policy*.json"):
        shutil.copy2(name, tree / "deploy" / name.name)
    seed_drifted_fleet(cloud)
    policy = sinks.policy(tmp_path)
    shell = {"TLSGUARD_INBOUND_SECRET": "e2e-inbound-secret", **sinks.env}
    for name in sinks.env:
        monkeypatch.delenv(name)
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TLSGUARD_LOCALCLOUD")}

    def generate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(tree / "deploy" / "generate.py"), *args], cwd=tree, env=environ,
                              capture_output=True, text=True, timeout=120, check=False)

    stale = generate("--check", "--policy", str(policy))
    assert stale.returncode == 1 and "s.yaml is stale" in stale.stderr and "--policy" in stale.stderr
    assert generate("--policy", str(policy)).returncode == 0
    assert generate("--check", "--policy", str(policy)).returncode == 0
    text = (tree / "s.yaml").read_text()
    for name in sinks.env:
        assert text.count(f"{name}: ${{env('{name}')}}") == 6, name  # every function sends its run's digest
    assert leaks({"s.yaml": text}, sinks.secrets()) == {}  # names only, never a value
    endpoints = tmp_path / "endpoints.json"
    write_endpoints(endpoints, cloud.endpoints)
    deployment = deploy(cloud, syaml=tree / "s.yaml", endpoints_file=endpoints, policy=policy, environ=shell,
                        variables={"runtime": "python3.12"})
    try:
        body = result_of(cloud.fc.invoke("tlsguard-sweep", timer_event()))
        channels = {c["name"]: c for c in body["alerts"]["channels"]}
        assert set(channels) == set(CHANNELS) and all(c["sent"] for c in channels.values()), channels
        assert names_in(received(sinks)["sec-dingtalk"]) == EXPECTED["sec-dingtalk"]
    finally:
        deployment.close()
        cloud.fc.wait_idle(10)
