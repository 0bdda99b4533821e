"""Seeded fuzz of the six function entry points (issue 14: hostile input never crashes or stalls tlsguard).

Every case is a structure-aware mutation of a real event shape: timer events as localcloud's FC timers fire them,
the sweep's fan-out batch, ActionTrail CloudEvents exactly as localcloud's EventBridge delivers them (taken from
``cloud.trail`` after real writes through the official SDKs), FC 3.0 HTTP-trigger events as localcloud's HTTP
front builds them (plus raw requests with binary headers through that front), and FC on-failure destination
records. Mutations: deep nesting, huge strings, wrong types, non-ASCII and binary text, missing and unknown fields,
NaN / Infinity / huge numbers, invalid base64, truncated JSON, corrupted bytes.

Each case is invoked through localcloud's Function Compute (``cloud.fc.invoke``: the deployed
``functions/<name>/index.py`` handler with FC's context and the role's STS keys), and must: return normally (no
uncaught exception, no FC timeout), return a bounded JSON result, and for the webhook answer one of
:data:`WEBHOOK_STATUSES` with a JSON body and no trace. Cases the handlers reject before any I/O stay cloud-free;
the ones that get through run against localcloud, like a real invocation.

Reproduce: ``.venv/bin/python -m pytest -q tests/hardening/test_events_fuzz.py -s`` (prints cases, failures and
timings per handler).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import http.client
import json
import random
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pytest
from tlsguard.model import TargetKind, TargetRef
from tlsguard.policy.model import RawHttpsConfig
from tlsguard.ports import BucketRef

from localcloud.fc.timers import timer_event
from tests.functions.conftest import (
    INBOUND_SECRET,
    POLICY,
    STATE_BUCKET,
    USER_KEY,
    cdn_domain,
    compliant_bucket,
    deploy_functions,
    drifted_bucket,
    outsider,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from localcloud.cloud import LocalCloud

SEED = 20261114
#: Cases per handler (a few thousand in all; most are rejected before any I/O).
COUNTS = {"sweep": 70, "cert_renewal": 50, "check": 500, "on_change": 600, "webhook": 1700, "failed": 600}
#: Raw HTTP requests through localcloud's HTTP-trigger front (binary headers, big bodies), on top of COUNTS.
RAW_HTTP_CASES = 60
FUNCTIONS = {"sweep": "tlsguard-sweep", "cert_renewal": "tlsguard-cert-renewal", "check": "tlsguard-check",
             "on_change": "tlsguard-on-change", "webhook": "tlsguard-webhook", "failed": "tlsguard-failed"}
#: What the webhook may answer to hostile input (405: a method other than POST, as documented).
WEBHOOK_STATUSES = {200, 202, 400, 401, 405, 409, 413}
#: Largest result a handler may return for a fuzzed event (a bounded summary, never an echo of the input).
MAX_RESULT_BYTES = 64 * 1024

# -- building blocks of mutations --------------------------------------------------------------------------------
WRONG_TYPES: list[Any] = [None, True, False, 0, -1, 2**63, 1.5, "", " ", "x", [], {}, [None], {"": None},
                          ["a", 1], "../../etc/passwd", "a" * 300, {"nested": {"deeper": [1, {"x": None}]}}]
ODD_TEXT = ["\u00ff\u00fe", "\ud800", "\udfff\ud800x", "\U0001f600" * 40, "\x00\x01\x1f", "\u0661\u0662\u0663",
            "e\u0301", "\u202eevil", "\uff21\uff22", "\u0130", "a\nb\r\nc", "<script>", "%00", "\\u0000"]
RAW_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" * 5000, "9" * 60, "-0", "0.1", "1E400",
               "4.9e-324", "-9223372036854775809"]
NEST_DEPTHS = [10, 40, 70, 300, 1500, 100_000]
STRING_SIZES = [2_000, 70_000, 300_000, 1_200_000]
TOP_LEVEL = [b"", b"   ", b"null", b"[]", b"{}", b"42", b'"text"', b"true", b"[[[[", b"{{", b"\xef\xbb\xbf{}",
             b"\xff\xfe\x00", b"\x00" * 10, b"[" * 200_000, b'{"a":' * 50_000, b"awesome-fc", b"[1,2,3]",
             b"[null, {}, []]", b"NaN", b"1e999"]

Path_ = tuple[Any, ...]


class Doc:
    """A JSON document being mutated, with raw fragments (NaN, deep nests) spliced in when rendered."""

    def __init__(self, value: Any) -> None:
        self.value = copy.deepcopy(value)
        self.raws: list[str] = []

    def paths(self) -> list[Path_]:
        """Every path in the document (iteratively: documents here are shallow, but never trust that)."""
        found: list[Path_] = [()]
        stack: list[tuple[Path_, Any]] = [((), self.value)]
        while stack:
            path, node = stack.pop()
            children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
            for key, child in children:
                found.append((*path, key))
                stack.append(((*path, key), child))
        return found

    def get(self, path: Path_) -> Any:
        node = self.value
        for key in path:
            node = node[key]
        return node

    def set(self, path: Path_, value: Any) -> None:
        if not path:
            self.value = value
            return
        self.get(path[:-1])[path[-1]] = value

    def raw(self, path: Path_, fragment: str) -> None:
        """Put a raw JSON fragment (which json.dumps could not produce) at ``path``."""
        self.set(path, f"\x00raw{len(self.raws)}\x00")
        self.raws.append(fragment)

    def render(self) -> bytes:
        text = json.dumps(self.value)
        for index, fragment in enumerate(self.raws):
            text = text.replace(json.dumps(f"\x00raw{index}\x00"), fragment)
        return text.encode("utf-8", "surrogatepass")


def nest(rng: random.Random, depth: int) -> str:
    if rng.random() < 0.5:
        return "[" * depth + "1" + "]" * depth
    return '{"a":' * depth + "null" + "}" * depth


def mutate_doc(rng: random.Random, doc: Doc, rounds: int = 1) -> str:
    """Apply ``rounds`` structure-aware mutations to ``doc``; returns a label of what was done."""
    labels = []
    for _ in range(rounds):
        paths = doc.paths()
        path = rng.choice(paths[1:] or paths)
        kind = rng.choice(["type", "type", "text", "number", "nest", "string", "delete", "add", "add"])
        try:
            if kind == "type":
                doc.set(path, copy.deepcopy(rng.choice(WRONG_TYPES)))
            elif kind == "text":
                doc.set(path, rng.choice(ODD_TEXT) + (doc.get(path) if isinstance(doc.get(path), str) else ""))
            elif kind == "number":
                doc.raw(path, rng.choice(RAW_NUMBERS))
            elif kind == "nest":
                doc.raw(path, nest(rng, rng.choice(NEST_DEPTHS)))
            elif kind == "string":
                doc.set(path, "A" * rng.choice(STRING_SIZES))
            elif kind == "delete":
                parent = doc.get(path[:-1]) if path else None
                if isinstance(parent, dict):
                    parent.pop(path[-1], None)
                elif isinstance(parent, list) and parent:
                    parent.pop(path[-1])
            else:
                target = doc.get(path[:-1]) if path else doc.value
                if isinstance(target, dict):
                    target[rng.choice(["extra", "\u00e9", "", "id", "data", "targets", "payload"])] = copy.deepcopy(
                        rng.choice(WRONG_TYPES))
        except (KeyError, IndexError, TypeError):  # a raw placeholder was mutated again: fine, skip
            pass
        labels.append(f"{kind}@{'/'.join(map(str, path))[:40]}")
    return ",".join(labels)


def mutate_bytes(rng: random.Random, raw: bytes) -> tuple[bytes, str]:
    """Byte-level damage to a rendered event."""
    kind = rng.choice(["truncate", "truncate", "flip", "invalid-utf8", "bom", "top-level"])
    if kind == "truncate" and raw:
        return raw[:rng.randrange(len(raw))], kind
    if kind == "flip" and raw:
        data = bytearray(raw)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data), kind
    if kind == "invalid-utf8":
        cut = rng.randrange(len(raw) + 1)
        return raw[:cut] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf0\x28\x8c\x28"]) + raw[cut:], kind
    if kind == "bom":
        return b"\xef\xbb\xbf" + raw, kind
    return rng.choice(TOP_LEVEL), kind


def fuzz_document(rng: random.Random, seed: Any) -> tuple[bytes, str]:
    """One fuzzed payload from a seed document: structural mutations, byte damage, or both."""
    roll = rng.random()
    doc = Doc(seed)
    if roll < 0.12:
        return mutate_bytes(rng, doc.render())
    label = mutate_doc(rng, doc, rounds=rng.choice([1, 1, 1, 2, 3]))
    raw = doc.render()
    if roll > 0.92:
        raw, damage = mutate_bytes(rng, raw)
        label += f"+{damage}"
    return raw, label


# -- seeds: the real event shapes --------------------------------------------------------------------------------
@dataclass
class Seeds:
    timers: list[dict[str, Any]]
    batches: list[dict[str, Any]]
    envelopes: list[dict[str, Any]]
    destinations: list[dict[str, Any]]
    webhook_bodies: list[dict[str, Any]]
    http_event: Callable[[bytes, dict[str, str]], dict[str, Any]]
    http_url: str


def http_trigger_event(body: bytes, headers: dict[str, str], method: str = "POST") -> dict[str, Any]:
    """FC 3.0's HTTP-trigger event for a built-in runtime, built as localcloud's HTTP front builds it
    (https://www.alibabacloud.com/help/en/functioncompute/fc/http-trigger-invoking-function)."""
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    now = time.time()
    return {"version": "v1", "rawPath": "/check", "body": text, "isBase64Encoded": encoded, "headers": headers,
            "queryParameters": {},
            "requestContext": {"accountId": "1500000000000001", "domainName": "tlsguard-webhook.cn-hangzhou.fcapp.run",
                               "domainPrefix": "tlsguard-webhook",
                               "http": {"method": method, "path": "/check", "protocol": "HTTP/1.1",
                                        "sourceIp": "127.0.0.1", "userAgent": "fuzz"},
                               "requestId": "1-fuzz", "time": "2026-11-14T00:00:00Z",
                               "timeEpoch": str(int(now * 1000))}}


def signed_headers(body: bytes, stamp: str | None = None) -> dict[str, str]:
    timestamp = stamp if stamp is not None else str(int(time.time()))
    digest = hmac.new(INBOUND_SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Tlsguard-Timestamp": timestamp,
            "X-Tlsguard-Signature": f"sha256={digest}"}


def real_envelopes(cloud: LocalCloud) -> list[dict[str, Any]]:
    """ActionTrail CloudEvents exactly as localcloud records them, from real writes through the official SDKs."""
    from tlsguard.adapters.cdn import AliyunCdn
    from tlsguard.certs._rpc import RpcConnection

    oss = outsider(cloud)
    bucket = BucketRef("app-drifted", "cn-hangzhou")
    oss.put_https_config(bucket, RawHttpsConfig(tls_enabled=True, tls_versions=("TLSv1.1", "TLSv1.2")))
    oss.put_policy(bucket, json.dumps({"Version": "1", "Statement": [
        {"Effect": "Allow", "Principal": ["*"], "Action": ["oss:GetObject"],
         "Resource": ["acs:oss:*:*:app-drifted/*"]}]}))
    cdn = AliyunCdn(RpcConnection(region=cloud.region, access_key_id=USER_KEY[0], access_key_secret=USER_KEY[1],
                                  domain=cloud.endpoints["cdn"], protocol="http"))
    cdn.batch_set_config("fuzz.cdn.example", {"https_tls_version": {
        "tls10": "on", "tls11": "on", "tls12": "on", "tls13": "on", "ciphersuitegroup": "all"}})
    envelopes = cloud.trail.events()
    assert {e["source"] for e in envelopes} >= {"acs.oss", "acs.cdn"}, envelopes
    return envelopes


@pytest.fixture
def fuzz_cloud(cloud: LocalCloud, tmp_path: Path) -> Iterator[tuple[LocalCloud, Seeds]]:
    """A small fleet, the real events of a few writes, and s.yaml deployed (timers held, no alert channel)."""
    cloud.seed({"buckets": [{"name": STATE_BUCKET, "region": "cn-hangzhou"}, compliant_bucket("app-prod"),
                            drifted_bucket("app-drifted")],
                "certificates": [{"name": "fuzz-cert", "kind": "valid", "domains": ["fuzz.cdn.example"]}],
                "cdn_domains": [cdn_domain("fuzz.cdn.example", "fuzz-cert")]})
    envelopes = real_envelopes(cloud)
    policy = tmp_path / "tlsguard.yaml"
    policy.write_text(POLICY)
    saved = cloud.fc.timers_enabled
    cloud.fc.timers_enabled = False
    deployment = deploy_functions(cloud, tmp_path, policy)
    fired = datetime(2026, 11, 14, 3, 0, tzinfo=timezone.utc)
    timers = [json.loads(timer_event(name, payload, fired)) for name, payload in (
        ("hourly", "{}"), ("nightly-inline-report", '{"inline": true}'), ("verify-pending", '{"verify_only": true}'),
        ("manual", '{"threshold": 1, "batch_size": 2}'), ("doc-example", "awesome-fc"), ("empty", ""))]
    batches = [{"correlation_id": "sweep:hourly:fuzz", "batch": 1,
                "targets": [TargetRef(TargetKind.OSS_BUCKET, "app-prod", "cn-hangzhou").to_dict(),
                            TargetRef(TargetKind.CDN_DOMAIN, "fuzz.cdn.example").to_dict()]},
               {"buckets": ["app-drifted"]}]
    destinations = [{"timestamp": 1763089200000,
                     "requestContext": {"requestId": "1-fuzz-failed",
                                        "functionArn": "acs:fc:cn-hangzhou:1500000000000001:functions/tlsguard-check",
                                        "condition": "UnhandledInvocationError", "approximateInvokeCount": 4},
                     "requestPayload": json.dumps(batches[0]),
                     "responseContext": {"statusCode": 200, "functionError": "UnhandledInvocationError"},
                     "responsePayload": json.dumps({"errorMessage": "boom", "errorType": "Transient"})}]
    bodies = [{"buckets": ["app-prod"]}, {"targets": ["cdn-domain:fuzz.cdn.example"], "apply": False},
              {"domains": ["fuzz.cdn.example"], "buckets": ["nope"], "apply": True}]
    seeds = Seeds(timers, batches, envelopes, destinations, bodies, http_trigger_event,
                  deployment.http_triggers["tlsguard-webhook"])
    yield cloud, seeds
    deployment.close()
    cloud.fc.wait_idle(10)
    cloud.fc.timers_enabled = saved


# -- the corpus --------------------------------------------------------------------------------------------------
@dataclass
class Case:
    handler: str
    payload: bytes
    label: str


def timer_cases(rng: random.Random, seeds: Seeds, handler: str, count: int) -> Iterator[Case]:
    for _ in range(count):
        seed = rng.choice(seeds.timers)
        if rng.random() < 0.45:  # the payload string: any text must still run the sweep
            doc = Doc(seed)
            options = Doc(rng.choice([{}, {"threshold": 5, "batch_size": 2}, {"inline": True}, {"verify_only": True}]))
            label = "payload:" + mutate_doc(rng, options, rounds=rng.choice([1, 2]))
            text = options.render().decode("utf-8", "surrogatepass")
            if rng.random() < 0.2:
                text = text[:rng.randrange(len(text) + 1)]
                label += "+truncate"
            doc.set(("payload",), text if rng.random() < 0.9 else rng.choice(ODD_TEXT))
            yield Case(handler, doc.render(), label)
        else:
            raw, label = fuzz_document(rng, seed)
            yield Case(handler, raw, label)


def check_cases(rng: random.Random, seeds: Seeds, count: int) -> Iterator[Case]:
    for _ in range(count):
        raw, label = fuzz_document(rng, rng.choice(seeds.batches))
        yield Case("check", raw, label)


def on_change_cases(rng: random.Random, seeds: Seeds, count: int) -> Iterator[Case]:
    for index in range(count):
        seed = rng.choice(seeds.envelopes)
        if rng.random() < 0.25:  # a batch: good events around a bad one
            bad = Doc(seed)
            label = "batch:" + mutate_doc(rng, bad, rounds=rng.choice([1, 2]))
            good = copy.deepcopy(rng.choice(seeds.envelopes))
            good["id"] = good["data"]["eventId"] = f"FUZZ-GOOD-{index % 4}"  # later copies are duplicates
            fragment = bad.render().decode("utf-8", "surrogatepass")
            yield Case("on_change", f"[{json.dumps(good)}, {fragment}, {json.dumps(seed)}]".encode(
                "utf-8", "surrogatepass"), label)
        else:
            raw, label = fuzz_document(rng, seed)
            yield Case("on_change", raw, label)


def failed_cases(rng: random.Random, seeds: Seeds, count: int) -> Iterator[Case]:
    for _ in range(count):
        raw, label = fuzz_document(rng, rng.choice(seeds.destinations))
        yield Case("failed", raw, label)


NON_ASCII_SIGNATURES = ["sha256=\u00ff" * 3, "sha256=" + "\u00e9" * 64, "sha256=\ud800", "\u0661" * 70,
                        "sha256=" + "\x00" * 64, "SHA256=" + "A" * 64, "sha256 =" + "0" * 64, "sha256=" + "0" * 10_000]
ODD_TIMESTAMPS = ["nan", "NaN", "inf", "-inf", "1e400", "-1", "0", "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660"
                  "\u0660\u0660", " 1700000000 ", "0x10", "9" * 400, "", "1.5e9", "\u00bd", "1_700_000_000"]


def webhook_cases(rng: random.Random, seeds: Seeds, count: int) -> Iterator[Case]:
    now = str(int(time.time()))
    for _ in range(count):
        roll = rng.random()
        body_doc = Doc(rng.choice(seeds.webhook_bodies))
        label = "body"
        if roll < 0.55:  # a body mutated, then signed correctly (gets past authentication) or not
            label = "body:" + mutate_doc(rng, body_doc, rounds=rng.choice([1, 1, 2]))
        body = body_doc.render()
        if rng.random() < 0.08:
            body, damage = mutate_bytes(rng, body)
            label += f"+{damage}"
        headers = signed_headers(body, now) if rng.random() < 0.75 else signed_headers(body, rng.choice(ODD_TIMESTAMPS))
        if 0.55 <= roll < 0.8:  # the headers
            part = rng.choice(["signature", "timestamp", "case", "types", "drop", "huge"])
            label = f"headers:{part}"
            if part == "signature":
                headers["X-Tlsguard-Signature"] = rng.choice(NON_ASCII_SIGNATURES)
            elif part == "timestamp":
                headers["X-Tlsguard-Timestamp"] = rng.choice(ODD_TIMESTAMPS)
            elif part == "case":
                headers["x-tlsguard-signature"] = rng.choice(NON_ASCII_SIGNATURES)
            elif part == "types":
                headers[rng.choice(["X-Tlsguard-Signature", "X-Tlsguard-Timestamp"])] = rng.choice(
                    WRONG_TYPES)  # type: ignore[assignment]
            elif part == "drop":
                headers.pop(rng.choice(["X-Tlsguard-Signature", "X-Tlsguard-Timestamp"]))
            else:
                headers["X-Padding"] = "p" * rng.choice(STRING_SIZES)
        event = Doc(seeds.http_event(body, headers))
        if roll >= 0.8:  # the HTTP-trigger event itself
            part = rng.choice(["base64", "base64", "body-type", "doc", "doc", "size"])
            label = f"event:{part}"
            if part == "base64":
                event.set(("isBase64Encoded",), rng.choice([True, True, "true", 1, None]))
                event.set(("body",), rng.choice(["!!!not base64!!!", "abc", "YQ", "YWJj=", "\u00ff\u00ff",
                                                 base64.b64encode(body).decode() + "@", "====", "",
                                                 base64.b64encode(b"\xff" * 100).decode(),
                                                 base64.b64encode(b"{" * 70_000).decode()]))
            elif part == "body-type":
                event.set(("body",), copy.deepcopy(rng.choice(WRONG_TYPES)))
            elif part == "size":
                big = b'{"buckets": ["' + b"b" * rng.choice([70_000, 600_000, 3_000_000]) + b'"]}'
                event = Doc(seeds.http_event(big, signed_headers(big, now)))
            else:
                label += ":" + mutate_doc(rng, event, rounds=rng.choice([1, 2]))
        yield Case("webhook", event.render(), label)


def corpus(seeds: Seeds) -> list[Case]:
    rng = random.Random(SEED)
    cases: list[Case] = []
    cases += timer_cases(rng, seeds, "sweep", COUNTS["sweep"])
    cases += timer_cases(rng, seeds, "cert_renewal", COUNTS["cert_renewal"])
    cases += check_cases(rng, seeds, COUNTS["check"])
    cases += on_change_cases(rng, seeds, COUNTS["on_change"])
    cases += webhook_cases(rng, seeds, COUNTS["webhook"])
    cases += failed_cases(rng, seeds, COUNTS["failed"])
    return cases


# -- running and judging -----------------------------------------------------------------------------------------
@dataclass
class Tally:
    cases: Counter[str] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)
    slowest: dict[str, float] = field(default_factory=dict)
    exceptions: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    slow: list[str] = field(default_factory=list)

    def fail(self, case: Case, why: str) -> None:
        self.failures.append(f"{case.handler} [{case.label}] {why}"[:400])


def judge(case: Case, record: dict[str, Any], tally: Tally) -> None:
    """No uncaught exception, a bounded JSON result, and for the webhook an allowed status with a JSON body."""
    if record["status"] != "succeeded":
        error = record.get("error") or {}
        tally.exceptions[f"{case.handler}: {error.get('errorType')}"] += 1
        tally.fail(case, f"raised {error.get('errorType')}: {str(error.get('errorMessage'))[:200]}")
        return
    result = record.get("result") or ""
    if len(result.encode()) > MAX_RESULT_BYTES:
        tally.fail(case, f"result of {len(result)} characters")
    try:
        document = json.loads(result)
    except ValueError:
        tally.fail(case, f"result is not JSON: {result[:100]!r}")
        return
    if case.handler != "webhook":
        if not isinstance(document, dict) or document.get("function") != case.handler:
            tally.fail(case, f"unexpected result {result[:200]!r}")
        return
    status = document.get("statusCode") if isinstance(document, dict) else None
    tally.statuses[status if isinstance(status, int) else -1] += 1
    if status not in WEBHOOK_STATUSES:
        tally.fail(case, f"HTTP {status}: {str(document.get('body'))[:200] if isinstance(document, dict) else ''}")
        return
    body = document.get("body")
    if not isinstance(body, str) or "Traceback" in body:
        tally.fail(case, f"body {body!r:.200}")
        return
    try:
        answer = json.loads(body)
    except ValueError:
        tally.fail(case, f"body is not JSON: {body[:100]!r}")
        return
    if status != 200 and (not isinstance(answer, dict) or not isinstance(answer.get("error"), str)):
        tally.fail(case, f"HTTP {status} without an error reason: {body[:200]!r}")


def raw_http_requests(rng: random.Random, url: str, count: int, tally: Tally) -> None:
    """Requests with binary header bytes and big bodies, through localcloud's HTTP front (FC answers 502 when the
    handler raises; it must answer an allowed status instead)."""
    parts = urllib.parse.urlsplit(url)
    for _ in range(count):
        body = rng.choice([b'{"buckets": ["app-prod"]}', b"\xff\xfe\x00binary", b"{" * 5000,
                           b'{"buckets": ["' + b"x" * 200_000 + b'"]}', b"", b"[]"])
        stamp = str(int(time.time()))
        signature = signed_headers(body, stamp)["X-Tlsguard-Signature"].encode()
        mangle = rng.choice(["latin1-signature", "utf8-signature", "binary-timestamp", "ok", "long-header"])
        headers: list[tuple[str, bytes]] = [("Content-Type", b"application/json")]
        if mangle == "latin1-signature":
            headers += [("X-Tlsguard-Timestamp", stamp.encode()), ("X-Tlsguard-Signature", b"sha256=\xff\xfe" * 8)]
        elif mangle == "utf8-signature":
            headers += [("X-Tlsguard-Timestamp", stamp.encode()),
                        ("X-Tlsguard-Signature", "sha256=\u00e9\u4e2d".encode() * 8)]
        elif mangle == "binary-timestamp":
            headers += [("X-Tlsguard-Timestamp", b"\x80\x81\xfe"), ("X-Tlsguard-Signature", signature)]
        elif mangle == "long-header":
            headers += [("X-Tlsguard-Timestamp", stamp.encode()), ("X-Tlsguard-Signature", signature),
                        ("X-Padding", b"p" * 60_000)]
        else:
            headers += [("X-Tlsguard-Timestamp", stamp.encode()), ("X-Tlsguard-Signature", signature)]
        case = Case("webhook", body[:200], f"raw-http:{mangle}")
        begun = time.monotonic()
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
        try:
            connection.putrequest("POST", parts.path + "/check")
            for name, value in headers:
                connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            answer = response.read()
        finally:
            connection.close()
        tally.cases["webhook (raw HTTP)"] += 1
        spent = time.monotonic() - begun
        tally.seconds["webhook (raw HTTP)"] += spent
        tally.slowest["webhook (raw HTTP)"] = max(tally.slowest.get("webhook (raw HTTP)", 0.0), spent)
        tally.statuses[response.status] += 1
        if response.status not in WEBHOOK_STATUSES:
            tally.exceptions[f"webhook (raw HTTP): {response.status}"] += 1
            tally.fail(case, f"HTTP {response.status}: {answer[:200]!r}")
        elif b"Traceback" in answer:
            tally.fail(case, f"trace in the answer: {answer[:200]!r}")


@pytest.mark.timeout(600)
def test_hostile_events_never_crash_or_stall_a_handler(fuzz_cloud: tuple[LocalCloud, Seeds]) -> None:
    """The whole seeded corpus over the six handlers: every case answered, bounded, with an allowed status."""
    import resource

    cloud, seeds = fuzz_cloud
    cases = corpus(seeds)
    tally = Tally()
    started = time.monotonic()
    for case in cases:
        begun = time.monotonic()
        record = cloud.fc.invoke(FUNCTIONS[case.handler], case.payload)
        spent = time.monotonic() - begun
        tally.cases[case.handler] += 1
        tally.seconds[case.handler] += spent
        tally.slowest[case.handler] = max(tally.slowest.get(case.handler, 0.0), spent)
        if spent > 5.0:
            tally.slow.append(f"{case.handler} [{case.label}] {spent:.1f} s")
        judge(case, record, tally)
    raw_http_requests(random.Random(SEED + 1), seeds.http_url, RAW_HTTP_CASES, tally)
    cloud.fc.wait_idle(30)
    elapsed = time.monotonic() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nfuzz corpus (seed {SEED}): {sum(tally.cases.values())} cases in {elapsed:.1f} s, "
          f"peak RSS {peak_mib:.0f} MiB")
    for handler, number in tally.cases.items():
        print(f"  {handler:20s} {number:5d} cases  {tally.seconds[handler]:6.1f} s  "
              f"slowest {tally.slowest.get(handler, 0.0) * 1000:7.1f} ms")
    print(f"  webhook statuses: {dict(sorted(tally.statuses.items()))}")
    print(f"  uncaught exceptions: {sum(tally.exceptions.values())} {dict(tally.exceptions)}")
    for slow in tally.slow[:20]:
        print(f"  SLOW {slow}")
    for failure in tally.failures[:40]:
        print(f"  FAIL {failure}")
    assert sum(tally.cases.values()) >= 3000
    assert not tally.failures, f"{len(tally.failures)} cases failed; first: {tally.failures[:5]}"
    # The async work the corpus caused (the sweep's fan-out to tlsguard-check) ended normally as well.
    async_failed = [i for i in cloud.fc.invocations() if i["type"] == "Async" and i["status"] == "failed"]
    assert not async_failed, async_failed[:3]
