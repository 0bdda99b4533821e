"""``make demo``: localcloud with the example fleet, tlsguard's function set deployed from s.yaml, and a tour.

1. ListBuckets and one bucket's https config through the official SDK; a TLS 1.1 handshake is still accepted.
2. The hourly sweep (fired through localcloud's control API) checks every bucket, custom domain and CDN domain,
   fanned out in batches to ``tlsguard-check`` with FC 3.0 InvokeFunction: drifted buckets and CDN domains are put
   back, an expiring certificate is rebound from CAS, one nothing in CAS can fix needs a person. The whole sweep
   sends ONE digest per channel, routed by the demo's ``alerts:``: the critical and high items to a signed DingTalk
   robot (one Markdown message), the custom domains and CDN domains to a signed Lark bot (an interactive card),
   everything to the signed webhook (a local sink). The robots are localcloud's chat sinks, seeded by
   ``chat_robots``; their URLs and secrets reach tlsguard as environment variables. Both chat messages are shown
   as the groups see them, and the sinks' verdicts (every signature checked, nothing refused) in the summary.
3. Every write that changes what an endpoint negotiates or serves is "pending" until the propagation window has
   passed; the five-minute verification timer then probes the endpoints: "effective" — the same TLS 1.1 handshake
   is now refused, and the custom domain serves the renewed certificate.
4. As an outsider (RAM user ops-alice), TLS 1.0 is enabled on a production bucket: the ActionTrail event, the
   rollback by ``tlsguard-on-change`` within milliseconds, the journal entry (intent before the write, outcome
   after) and its digest.
5. ``tlsguard undo`` of the certificate binding puts the previous certificate back (compare before write).
6. A summary, the path of the JSON report, and localcloud stopped cleanly.

Functions run inside localcloud's FC emulation (in this process), exactly the handlers ``make package`` ships.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "shared") not in sys.path:
    sys.path.insert(0, str(ROOT / "shared"))

DEMO_BUCKET = "acme-staging-web"
PROD_BUCKET = "acme-prod-assets"
RENEWED_DOMAIN = "img.acme-shop.example"
OUTSIDER = ("LCDEMOALICEKEY000001", "lc-demo-alice-secret-do-not-use-001")
ALERT_SECRET = "demo-alert-secret-not-a-real-one"
POLICY = ROOT / "examples" / "tlsguard.yaml"
REPORTS = ROOT / "reports"
#: localcloud's edges take this long to apply a change; the demo policy's window is a little longer.
PROPAGATION_SECONDS = 1.0
WINDOW_MINUTES = 0.03
#: The chat robots of the example seed (``chat_robots`` in localcloud/seeds/example.yaml).
DINGTALK_ROBOT = "acme-oncall"
LARK_ROBOT = "acme-certs"
#: The demo's alert channels, added to the example policy: the on-call DingTalk group gets what is critical or
#: high, the certificate owners' Lark group every custom domain and CDN domain, the signed webhook (an audit log)
#: everything. Robot URLs and secrets only through the environment variables named here.
DEMO_ALERTS = """
alerts:
  language: en                # or zh-CN
  channels:
    - name: oncall-dingtalk
      type: dingtalk
      url_env: TLSGUARD_DINGTALK_URL
      secret_env: TLSGUARD_DINGTALK_SECRET
    - name: certs-lark
      type: lark
      url_env: TLSGUARD_LARK_URL
      secret_env: TLSGUARD_LARK_SECRET
    - name: audit-hook
      type: webhook
      url_env: TLSGUARD_WEBHOOK_URL
      secret_env: TLSGUARD_WEBHOOK_SECRET
  routes:
    - match: {severity: [critical, high]}
      channels: [oncall-dingtalk]
    - match: {kind: [oss-cname, cdn-domain]}
      channels: [certs-lark]
    - channels: [audit-hook]
"""


def say(text: str = "") -> None:
    print(text, flush=True)


def heading(text: str) -> None:
    say()
    say(f"== {text} " + "=" * max(0, 74 - len(text)))


class AlertSink:
    """A local webhook receiver standing in for the on-call channel; it checks tlsguard's HMAC signature."""

    def __init__(self) -> None:
        from tlsguard.notify.webhook import verify

        self.messages: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                verified = verify(ALERT_SECRET, self.headers.get("X-Tlsguard-Timestamp", ""), body,
                                  self.headers.get("X-Tlsguard-Signature", ""))
                with sink.lock:
                    sink.messages.append({"verified": verified, "message": json.loads(body)})
                self.send_response(200 if verified else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tlsguard-alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="demo-alert-sink", daemon=True)
        self.thread.start()

    def since(self, index: int, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) > index:
                    break
            time.sleep(0.05)
        time.sleep(0.3)  # anything else on its way
        with self.lock:
            return self.messages[index:]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ChatRobots:
    """What localcloud's chat sinks accepted and refused, read through its control API (``GET /chat/...``)."""

    def __init__(self, endpoints: dict[str, Any]) -> None:
        self.endpoints = endpoints

    def robots(self) -> list[dict[str, Any]]:
        robots: list[dict[str, Any]] = control(self.endpoints, "/chat/robots")
        return robots

    def robot(self, name: str) -> dict[str, Any]:
        return next(r for r in self.robots() if r["name"] == name)

    def messages(self, robot: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = control(self.endpoints, f"/chat/messages?robot={robot}")
        return messages

    def since(self, robot: str, index: int, timeout: float) -> list[dict[str, Any]]:
        """Messages ``robot`` accepted after the first ``index`` (waits up to ``timeout`` for the first)."""
        wait_for(lambda: len(self.messages(robot)) > index, timeout, step=0.1)
        return self.messages(robot)[index:]

    def refused(self) -> dict[str, int]:
        return {r["name"]: int(r["refused"]) for r in self.robots()}

    def marks(self) -> dict[str, int]:
        """How many messages each of the demo's robots has accepted so far."""
        return {robot: len(self.messages(robot)) for robot in (DINGTALK_ROBOT, LARK_ROBOT)}

    def recorded(self) -> dict[str, Any]:
        """For the report: each robot's accepted and refused counts, and every accepted message (its signature left
        out; no robot URL either: it carries the robot's token)."""
        robots = [{"service": r["service"], "name": r["name"], "accepted": len(self.messages(r["name"])),
                   "refused": int(r["refused"])} for r in self.robots()]
        messages = [{**{k: m[k] for k in ("seq", "service", "robot", "msgtype", "time")},
                     "body": {k: v for k, v in m["body"].items() if k not in ("sign", "timestamp")}}
                    for robot in (DINGTALK_ROBOT, LARK_ROBOT) for m in self.messages(robot)]
        return {"robots": robots, "messages": sorted(messages, key=lambda m: int(m["seq"]))}


#: A Markdown link; a chat app shows only its label.
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def as_seen(markdown: str) -> list[str]:
    """The non-empty lines of a chat message's Markdown as the app shows them: no markup, links as their label."""
    lines = []
    for line in markdown.splitlines():
        line = _LINK.sub(r"\1", line).replace("**", "").lstrip("#").strip()
        if line:
            lines.append(line)
    return lines


def show_message(lines: list[str], *, others_kept: int = 1, width: int = 112) -> None:
    """A chat message in a frame, wrapped; the sections that need a person in full, the others' first items."""
    import textwrap

    from tlsguard.alerts.render import LANGUAGES, text

    person = {text(language, section) for language in LANGUAGES for section in ("needs_attention", "reminder")}
    shown: list[str] = []
    section, kept, hidden = "", 0, 0

    def more() -> None:
        if hidden:
            shown.append(f"  ... and {hidden} more like these")

    for line in lines:
        if not line.startswith("- "):  # the title, a section heading, the run line
            more()
            section, kept, hidden = line, 0, 0
            shown.append(line)
            continue
        if section not in person and kept >= others_kept:
            hidden += 1
            continue
        kept += 1
        # an undo command stays on one line (copied as it is)
        joined = line.replace("tlsguard undo ", "tlsguard\0undo\0")
        shown.extend(w.replace("\0", " ") for w in textwrap.wrap(joined, width, subsequent_indent="    ",
                                                                   break_on_hyphens=False))
    more()
    for line in shown:
        say(f"    | {line}")


def show_chat(chat: ChatRobots, marks: dict[str, int], *, full: bool, timeout: float = 5.0) -> list[int]:
    """What the DingTalk robot and the Lark bot accepted since ``marks``: each message as the group sees it
    (``full``) or one line each. Returns the messages' sequence numbers."""
    # The bodies as sent: DingTalk {"msgtype": "markdown", "markdown": {"title", "text"}}
    # (https://open.dingtalk.com/document/robots/custom-robot-access, not in the docs corpus: see
    # tlsguard/alerts/channels/dingtalk.py); Lark {"msg_type": "interactive", "card": {"header": {"title",
    # "template"}, "elements"}} (https://open.feishu.cn/document/feishu-cards/quick-start/send-message-cards-with-custom-bot.md).
    wait = timeout if full else 0.0  # otherwise the webhook's digest, sent after them, has already arrived
    dingtalk = chat.since(DINGTALK_ROBOT, marks[DINGTALK_ROBOT], wait)
    lark = chat.since(LARK_ROBOT, marks[LARK_ROBOT], wait)
    if full:
        say(f"  DingTalk robot {DINGTALK_ROBOT} (on-call group; route: critical and high) accepted {len(dingtalk)} "
            f"markdown message(s), signed (timestamp and sign in the URL, checked by the sink):")
    elif not dingtalk:
        say(f"  DingTalk {DINGTALK_ROBOT}: nothing (no critical or high item in this run)")
    for message in dingtalk:
        markdown = message["body"]["markdown"]
        if full:
            show_message(as_seen(markdown["text"]))
        else:
            say(f"  DingTalk {DINGTALK_ROBOT}: {message['msgtype']} \"{markdown['title']}\"")
    if full:
        say(f"  Lark bot {LARK_ROBOT} (certificate owners; route: custom domains and CDN domains) accepted "
            f"{len(lark)} card(s), signed (timestamp and sign in the body, checked by the sink):")
    elif not lark:
        say(f"  Lark {LARK_ROBOT}: nothing (no custom domain or CDN domain in this run)")
    for message in lark:
        card = message["body"].get("card") or {}
        header = card.get("header") or {}
        title, colour = str((header.get("title") or {}).get("content") or ""), header.get("template")
        if full:
            content = "\n".join(str(e.get("content") or "") for e in card.get("elements") or [])
            show_message([f"{title}   [{message['msgtype']} card, {colour} header]", *as_seen(content)])
        else:
            say(f"  Lark {LARK_ROBOT}: {message['msgtype']} card \"{title}\" ({colour} header)")
    return [int(m["seq"]) for m in (*dingtalk, *lark)]


def oss_client(endpoints: dict[str, Any]) -> Any:
    import alibabacloud_oss_v2 as oss

    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(endpoints["access_key_id"],
                                                                         endpoints["access_key_secret"])
    cfg.region = endpoints["region"]
    cfg.endpoint = endpoints["oss"]
    return oss.Client(cfg)


def outsider_adapter(endpoints: dict[str, Any]) -> Any:
    """ops-alice through tlsguard's own OSS adapter (HTTPS through the TLS plane, like every real client)."""
    import dataclasses

    from tlsguard.adapters.oss import AliyunOss, connection_from_endpoint_data
    from tlsguard.retry import RetryPolicy

    connection = dataclasses.replace(connection_from_endpoint_data(endpoints), access_key_id=OUTSIDER[0],
                                     access_key_secret=OUTSIDER[1])
    return AliyunOss(connection, retry=RetryPolicy(attempts=1))


def handshake(endpoints: dict[str, Any], host: str, version: ssl.TLSVersion) -> str:
    """Try a handshake pinned to one TLS version with SNI ``host``; say what happened."""
    import warnings

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with warnings.catch_warnings():  # pinning TLS 1.0/1.1 is the point here
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.load_verify_locations(endpoints["ca_bundle"])
    try:
        with socket.create_connection(("127.0.0.1", endpoints["tls_port"]), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            cipher = tls.cipher()
            return f"ACCEPTED ({tls.version()}, {cipher[0] if cipher else '?'})"
    except (ssl.SSLError, OSError) as exc:
        return f"REFUSED ({exc.__class__.__name__}: {getattr(exc, 'reason', None) or exc})"


def served_certificate(endpoints: dict[str, Any], host: str) -> str:
    """Subject and expiry of the certificate the TLS edge serves for ``host`` right now."""
    from cryptography import x509

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", endpoints["tls_port"]), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
    if der is None:
        return "no certificate"
    cert = x509.load_der_x509_certificate(der)
    return f"{cert.subject.rfc4514_string()} valid until {cert.not_valid_after_utc:%Y-%m-%d}"


def control(endpoints: dict[str, Any], path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(endpoints["control"] + path, data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_for(predicate: Any, timeout: float, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def fire(cloud: Any, endpoints: dict[str, Any], function: str, trigger: str) -> dict[str, Any]:
    fired = control(endpoints, "/timers/fire", {"function": function, "trigger": trigger})
    record = wait_for(lambda: (cloud.fc.invocation(fired["id"]).status in ("succeeded", "failed")
                               and cloud.fc.invocation(fired["id"])), 90)
    if not record or record.status != "succeeded":
        raise RuntimeError(f"{function}/{trigger} did not succeed: {record.error if record else 'timeout'}")
    result: dict[str, Any] = json.loads(record.result or b"{}")
    return result


def show_digest(item: dict[str, Any]) -> None:
    message = item["message"]
    counts = message.get("counts") or {}
    shown = ", ".join(f"{n} {k}" for k, n in counts.items() if n and k != "targets")
    batches = message.get("batches")
    parts = f" from {batches['reported']} batches" if batches else ""
    verified = message.get("verifications") or []
    what = f"{counts.get('targets', 0)} targets: {shown}" if counts.get("targets") else \
        f"{len(verified)} live verifications"
    say(f"  ONE digest{parts} (signature {'verified' if item['verified'] else 'BAD'}): {what}")
    for entry in message.get("needs_attention") or []:
        say(f"    needs a person: {entry['target']['kind']} {entry['target']['name']}: {entry['check']} "
            f"[{entry['severity']}] {entry['message'][:110]}")
    remediated = message.get("remediated") or []
    if remediated:
        say(f"    remediated: {len(remediated)} targets, each with its journal id and undo command, e.g.")
        say(f"      {remediated[0]['id']}: {remediated[0]['undo']}")
    for entry in verified:
        if not entry["target"]["name"].startswith("fleet-"):
            say(f"    live: {entry['target']['name']}: {entry['live_verification']}: {entry['detail'][:90]}")


def tour_start(endpoints: dict[str, Any]) -> None:
    import alibabacloud_oss_v2 as oss

    client = oss_client(endpoints)
    heading("1. ListBuckets and GetBucketHttpsConfig (alibabacloud-oss-v2, V4-signed, against localcloud)")
    count = 0
    for page in client.list_buckets_paginator().iter_page(oss.ListBucketsRequest()):
        for bucket in page.buckets or []:
            count += 1
            if not bucket.name.startswith("fleet-"):
                say(f"  {bucket.name:24} {bucket.location:18} {bucket.storage_class}")
    say(f"  ... and {count - 7} generated fleet-* buckets ({count} in all)")
    config = client.get_bucket_https_config(oss.GetBucketHttpsConfigRequest(bucket=DEMO_BUCKET)).https_configuration
    host = f"{DEMO_BUCKET}.oss-{endpoints['region']}.aliyuncs.com"
    say(f"  {DEMO_BUCKET}: TLS management enabled={config.tls.enable} versions={config.tls.tls_versions}")
    say(f"  TLS 1.1 handshake to {host}: {handshake(endpoints, host, ssl.TLSVersion.TLSv1_1)}")
    say(f"  {RENEWED_DOMAIN} serves {served_certificate(endpoints, RENEWED_DOMAIN)}")


def run_sweep(cloud: Any, endpoints: dict[str, Any], sink: AlertSink, chat: ChatRobots) -> dict[str, Any]:
    from tqdm import tqdm

    heading("2. The hourly sweep: every bucket, custom domain and CDN domain, fanned out with InvokeFunction")
    before = len(sink.messages)
    marks = chat.marks()
    summary = fire(cloud, endpoints, "tlsguard-sweep", "hourly")
    if not summary.get("fanout"):
        raise RuntimeError(f"sweep did not fan out: {summary}")
    say(f"  sweep listed {summary['targets']} targets and queued {summary['batches']} batches to "
        f"{summary['target']}")
    targets: list[dict[str, Any]] = []
    seen: set[str] = set()
    with tqdm(total=summary["targets"], unit="target", desc="  checking", file=sys.stdout, ncols=80) as bar:
        deadline = time.monotonic() + 90
        while len(seen) < summary["batches"] and time.monotonic() < deadline:
            for record in cloud.fc.invocations():
                if record["function"] != "tlsguard-check" or record["id"] in seen or \
                        record["status"] not in ("succeeded", "failed"):
                    continue
                seen.add(record["id"])
                body = json.loads(record["result"] or "{}") if record["status"] == "succeeded" else {}
                targets.extend(body.get("targets") or [])
                bar.update((body.get("summary") or {}).get("targets", 0))
            time.sleep(0.05)
    counts: dict[str, int] = {}
    for record in cloud.fc.invocations():
        if record["id"] in seen and record["status"] == "succeeded":
            for name, value in (json.loads(record["result"] or "{}").get("summary") or {}).items():
                if name in ("compliant", "drifted", "pending", "remediated", "refused", "contested", "failed"):
                    counts[name] = counts.get(name, 0) + value
    for target in sorted(targets, key=lambda t: (t["target"]["kind"], t["target"]["name"])):
        name = target["target"]["name"]
        if name.startswith("fleet-") and target["outcome"] == "remediated":
            continue
        say(f"  {target['target']['kind']:10} {name:26} {target['outcome'].upper():10} {target['reason'][:100]}")
        for action in target["actions"]:
            if action["status"] == "written" and action["facet"] in ("cname_certificate", "cdn_certificate"):
                say(f"      {action['summary']}")
    fleet = [t for t in targets if t["target"]["name"].startswith("fleet-") and t["outcome"] == "remediated"]
    say(f"  ... and {len(fleet)} generated fleet-* buckets rolled back (live verification pending)")
    digests = sink.since(before, 20)
    for item in digests:
        show_digest(item)
    seqs = show_chat(chat, marks, full=True)
    return {"summary": summary, "targets": targets, "counts": counts, "digests": [d["message"] for d in digests],
            "chat": seqs}


def live_verification(cloud: Any, endpoints: dict[str, Any], sink: AlertSink, chat: ChatRobots) -> dict[str, Any]:
    host = f"{DEMO_BUCKET}.oss-{endpoints['region']}.aliyuncs.com"
    heading("3. After the propagation window: the verification timer probes the endpoints (pending -> effective)")
    time.sleep(max(PROPAGATION_SECONDS, WINDOW_MINUTES * 60) + 0.5)
    before = len(sink.messages)
    marks = chat.marks()
    result = fire(cloud, endpoints, "tlsguard-sweep", "pending-verifications")
    verdicts: dict[str, int] = {}
    for item in result.get("verifications") or []:
        verdicts[item["live_verification"]] = verdicts.get(item["live_verification"], 0) + 1
    say(f"  {len(result.get('verifications') or [])} endpoints probed: "
        + ", ".join(f"{n} {k}" for k, n in verdicts.items()))
    for item in result.get("verifications") or []:
        if not item["target"]["name"].startswith("fleet-"):
            say(f"    {item['target']['kind']:10} {item['target']['name']:26} {item['live_verification']:13} "
                f"{item['detail'][:80]} ({item['connections']} connections)")
    say(f"  TLS 1.1 handshake to {host}: {handshake(endpoints, host, ssl.TLSVersion.TLSv1_1)}")
    say(f"  TLS 1.2 handshake to {host}: {handshake(endpoints, host, ssl.TLSVersion.TLSv1_2)}")
    say(f"  {RENEWED_DOMAIN} now serves {served_certificate(endpoints, RENEWED_DOMAIN)}")
    digests = sink.since(before, 10)
    for item in digests:
        show_digest(item)
    return {"verdicts": verdicts, "verifications": result.get("verifications") or [],
            "digests": [d["message"] for d in digests], "chat": show_chat(chat, marks, full=False)}


def outsider_change(cloud: Any, endpoints: dict[str, Any], sink: AlertSink, chat: ChatRobots) -> dict[str, Any]:
    from tlsguard.policy.model import RawHttpsConfig
    from tlsguard.ports import BucketRef

    heading(f"4. ops-alice enables TLS 1.0 on production bucket {PROD_BUCKET} (PutBucketHttpsConfig)")
    outsider = outsider_adapter(endpoints)
    bucket = BucketRef(PROD_BUCKET, endpoints["region"])
    events_before = cloud.trail.count()
    invocations_before = {i["id"] for i in cloud.fc.invocations()}
    alerts_before = len(sink.messages)
    marks = chat.marks()
    started = time.monotonic()
    outsider.put_https_config(bucket, RawHttpsConfig(tls_enabled=True, cipher_present=True, cipher_enabled=True,
                                                     strong=True, tls_versions=("TLSv1.0", "TLSv1.1", "TLSv1.2",
                                                                                "TLSv1.3")))
    say("  done: the API says TLS 1.0-1.3")
    event = cloud.trail.events(events_before)[0]
    say("  the ActionTrail event EventBridge delivers (CloudEvents envelope):")
    shown = {k: event[k] for k in ("id", "source", "type", "subject", "time", "aliyunregionid")}
    shown["data"] = {k: event["data"][k] for k in ("eventName", "eventSource", "userIdentity", "referencedResources",
                                                   "acsRegion", "eventTime")}
    say("    " + json.dumps(shown, indent=2).replace("\n", "\n    "))

    def handled() -> dict[str, Any] | None:
        for record in cloud.fc.invocations():
            if record["function"] == "tlsguard-on-change" and record["id"] not in invocations_before \
                    and record["status"] == "succeeded":
                for item in json.loads(record["result"] or "{}").get("handled") or []:
                    if item.get("event_id") == event["id"]:
                        return {"record": record, "result": item}
        return None

    found = wait_for(handled, 30)
    if not found:
        raise RuntimeError("tlsguard-on-change did not handle the event")
    elapsed = time.monotonic() - started
    result = found["result"]
    delivery = next(d for d in cloud.events.deliveries() if d["event_id"] == event["id"])
    say(f"  delivered by rule {delivery['rule']} to {delivery['function']} (invocation {delivery['invocation_id']})")
    say(f"  tlsguard-on-change: {result['outcome'].upper()}: {result['reason']} "
        f"(actor {result['trigger']['actor']})")
    say(f"  from the write to restored and verified by re-reading: {elapsed * 1000:.0f} ms")
    say(f"  verification as ops-alice: TLS versions now {list(outsider.get_https_config(bucket).tls_versions)}")
    journal = show_journal_entry(endpoints, str(result["journal_id"]))
    for item in sink.since(alerts_before, 10):
        show_digest(item)
    return {"event": event, "result": result, "elapsed_ms": round(elapsed * 1000), "journal": journal,
            "chat": show_chat(chat, marks, full=False)}


def tlsguard_cli(endpoints: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    """The ``tlsguard`` command against localcloud, as a person would type it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), str(ROOT)]),
           "TLSGUARD_LOG_LEVEL": "ERROR"}
    return subprocess.run([sys.executable, "-m", "tlsguard", *args, "--policy", str(DEMO_POLICY),
                           "--localcloud", str(ENDPOINTS_FILE)], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def show_journal_entry(endpoints: dict[str, Any], journal_id: str) -> dict[str, Any]:
    done = tlsguard_cli(endpoints, "journal", "show", journal_id, "--json")
    entry: dict[str, Any] = json.loads(done.stdout) if done.returncode == 0 else {}
    say(f"  $ tlsguard journal show {journal_id}")
    intent = entry.get("intent") or {}
    outcome = (entry.get("outcome") or {}).get("reason")
    say(f"    intent filed {intent.get('time')} before the write; outcome: {outcome}")
    for action in intent.get("actions") or []:
        before, after = action.get("before") or {}, action.get("after") or {}
        if isinstance(before, dict) and "tls" in after:
            say(f"    {action['call']}: TLS versions {json.dumps((before.get('tls') or {}).get('versions'))} -> "
                f"{json.dumps((after.get('tls') or {}).get('versions'))}")
        else:
            say(f"    {action['call']}: {action.get('summary')}")
    return entry


def undo_binding(cloud: Any, endpoints: dict[str, Any], sweep: dict[str, Any], sink: AlertSink,
                 chat: ChatRobots) -> dict[str, Any]:
    heading(f"5. tlsguard undo: put {RENEWED_DOMAIN}'s previous certificate back")
    rebound = next((t for t in sweep["targets"] if t["target"]["name"] == RENEWED_DOMAIN and t["journal_id"]), None)
    if rebound is None:
        raise RuntimeError(f"{RENEWED_DOMAIN} was not rebound by the sweep")
    journal_id = str(rebound["journal_id"])
    before = len(sink.messages)
    marks = chat.marks()
    done = tlsguard_cli(endpoints, "undo", journal_id)
    say(f"  $ tlsguard undo {journal_id}")
    for line in done.stdout.strip().splitlines():
        say(f"    {line}")
    time.sleep(PROPAGATION_SECONDS + 0.3)
    say(f"  {RENEWED_DOMAIN} serves {served_certificate(endpoints, RENEWED_DOMAIN)} again")
    listing = tlsguard_cli(endpoints, "journal", "list", "--target", RENEWED_DOMAIN)
    say(f"  $ tlsguard journal list --target {RENEWED_DOMAIN}")
    for line in listing.stdout.strip().splitlines():
        say(f"    {line}")
    say("  (the next sweep renews it again: waive cert.expiry for the domain to keep the old certificate)")
    for item in sink.since(before, 5):
        show_digest(item)
    return {"journal_id": journal_id, "exit_code": done.returncode, "output": done.stdout,
            "chat": show_chat(chat, marks, full=False)}


DEMO_POLICY = Path()
ENDPOINTS_FILE = Path()


def start_cloud(workdir: Path, sink: AlertSink) -> tuple[Any, Any]:
    from localcloud.cloud import DEFAULT_SEED, LocalCloud, write_endpoints
    from localcloud.sdeploy import deploy

    global DEMO_POLICY, ENDPOINTS_FILE
    cloud = LocalCloud(state_dir=str(workdir / "localcloud"))
    cloud.seed_file(DEFAULT_SEED)
    cloud.tls.propagation_seconds = PROPAGATION_SECONDS
    state = [] if cloud.oss.get("tlsguard-state") is not None else [{"name": "tlsguard-state", "region": "cn-hangzhou"}]
    cloud.seed({"buckets": state,
                "generate": {"buckets": {"count": 40, "prefix": "fleet", "regions": ["cn-hangzhou", "cn-shanghai"],
                                         "drift": {"ratio": 0.25, "seed": 7}}}})
    ENDPOINTS_FILE = workdir / "endpoints.json"
    cloud.start(endpoints_file=str(ENDPOINTS_FILE))
    write_endpoints(ENDPOINTS_FILE, cloud.endpoints)
    # The example policy, with a propagation window matching localcloud's edges (the cloud's is 30 minutes), plus
    # the demo's alert channels.
    DEMO_POLICY = workdir / "tlsguard.yaml"
    DEMO_POLICY.write_text(POLICY.read_text().replace("propagation_minutes: 30",
                                                      f"propagation_minutes: {WINDOW_MINUTES}") + DEMO_ALERTS)
    cloud.fc.timers_enabled = False  # fired on demand below (the hourly cron would otherwise never fire here)
    alert_environment = {**robot_environment(ChatRobots(cloud.endpoints)), "TLSGUARD_WEBHOOK_URL": sink.url,
                         "TLSGUARD_WEBHOOK_SECRET": ALERT_SECRET}
    deployment = deploy(cloud, endpoints_file=ENDPOINTS_FILE, policy=DEMO_POLICY, environ={}, environment={
        **alert_environment, "TLSGUARD_FANOUT_THRESHOLD": "20", "TLSGUARD_BATCH_SIZE": "8",
        "TLSGUARD_LOG_LEVEL": "ERROR"})
    os.environ.update(alert_environment)  # the CLI (undo) sends through the same channels
    return cloud, deployment


def robot_environment(chat: ChatRobots) -> dict[str, str]:
    """The robots' webhook URLs and signing secrets as a user passes them: environment variables (the policy
    names the variables, never the values). Here they are copied from the sinks, as from a robot's settings page."""
    dingtalk, lark = chat.robot(DINGTALK_ROBOT), chat.robot(LARK_ROBOT)
    return {"TLSGUARD_DINGTALK_URL": dingtalk["url"], "TLSGUARD_DINGTALK_SECRET": dingtalk["secret"],
            "TLSGUARD_LARK_URL": lark["url"], "TLSGUARD_LARK_SECRET": lark["secret"]}


def main() -> int:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="tlsguard-demo-"))
    heading("Starting localcloud (example fleet + 40 generated buckets) and deploying s.yaml into it")
    sink = AlertSink()
    cloud, deployment = start_cloud(workdir, sink)
    endpoints = cloud.endpoints
    say(f"  OSS {endpoints['oss']}  TLS 127.0.0.1:{endpoints['tls_port']}  control {endpoints['control']}")
    say(f"  functions: {', '.join(deployment.functions)}")
    say(f"  timers: {', '.join(f'{f}/{t}' for f, t in deployment.timers)}; EventBridge rules: "
        f"{', '.join(deployment.rules)}; HTTP trigger: {deployment.http_triggers.get('tlsguard-webhook')}")
    chat = ChatRobots(endpoints)
    say("  alerts (the policy's `alerts:` routes; robot URLs and secrets from TLSGUARD_DINGTALK_URL/_SECRET and "
        "TLSGUARD_LARK_URL/_SECRET):")
    say(f"    critical and high        -> DingTalk robot {DINGTALK_ROBOT} (signed) at "
        f"{endpoints['chat']['dingtalk']}?access_token=...")
    say(f"    custom and CDN domains   -> Lark bot {LARK_ROBOT} (signed) at {endpoints['chat']['lark']}/...")
    say(f"    everything               -> the signed webhook, a local sink at {sink.url}")
    status = 0
    report: dict[str, Any] = {"demo": "tlsguard make demo", "policy": str(POLICY.relative_to(ROOT))}
    try:
        tour_start(endpoints)
        report["sweep"] = run_sweep(cloud, endpoints, sink, chat)
        report["live"] = live_verification(cloud, endpoints, sink, chat)
        report["event"] = outsider_change(cloud, endpoints, sink, chat)
        report["undo"] = undo_binding(cloud, endpoints, report["sweep"], sink, chat)
        cloud.fc.wait_idle(20)
        invocations = cloud.fc.invocations()
        report["invocations"] = {name: sum(1 for i in invocations if i["function"] == name)
                                 for name in deployment.functions}
        report["failed_invocations"] = [i["id"] for i in invocations if i["status"] == "failed"]
        report["alerts"] = [m["message"] for m in sink.messages]
        report["chat"] = chat.recorded()
        REPORTS.mkdir(exist_ok=True)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = REPORTS / f"demo-{stamp}.json"
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")
        heading("6. Summary")
        counts = report["sweep"]["counts"]
        say(f"  sweep: {report['sweep']['summary']['targets']} targets in {report['sweep']['summary']['batches']} "
            f"batches: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n))
        say("  live verification: " + ", ".join(f"{n} {k}" for k, n in report["live"]["verdicts"].items()))
        say(f"  event: {PROD_BUCKET} {report['event']['result']['outcome']} in {report['event']['elapsed_ms']} ms "
            f"from the outsider's write; journal {report['event']['result']['journal_id']}")
        say(f"  undo: {report['undo']['journal_id']} exit {report['undo']['exit_code']}")
        say(f"  messages received by the alert sink: {len(sink.messages)} digests, one per run (all signatures "
            f"verified: {all(m['verified'] for m in sink.messages)})")
        robots = report["chat"]["robots"]
        refused = sum(r["refused"] for r in robots)
        say("  chat robots: " + ", ".join(f"{r['service']} {r['name']} accepted {r['accepted']}" for r in robots)
            + ("; the sinks verified every signature and refused nothing" if not refused else
               f"; REFUSED {refused} message(s)"))
        say(f"  invocations: {report['invocations']}; failed: {len(report['failed_invocations'])}")
        say(f"  report: {path}")
        if report["failed_invocations"] or report["undo"]["exit_code"] != 0 or refused:
            status = 1
    except Exception as exc:  # report and still stop localcloud cleanly
        say(f"demo failed: {type(exc).__name__}: {exc}")
        status = 1
    finally:
        heading("Stopping localcloud")
        deployment.close()
        cloud.stop()
        sink.close()
        say(f"  localcloud stopped; demo took {time.monotonic() - started:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
