"""Event parsing: the exact bytes FC delivers (timer JSON, CloudEvents one or many) and what is skipped, and why."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tlsguard.errors import EventError
from tlsguard.functions import events as ev
from tlsguard.model import TargetKind, TargetRef

pytestmark = pytest.mark.unit


def envelope(name: str = "PutBucketHttpsConfig", **data: Any) -> dict[str, Any]:
    """Shaped like localcloud's and the documented OSS ActionTrail event (alibaba-api-facts.md §7)."""
    record = {"eventId": "E-1", "eventName": name, "eventRW": "Write", "acsRegion": "cn-shanghai",
              "eventSource": "logs.oss-cn-shanghai.aliyuncs.com",
              "referencedResources": {"ACS::OSS::Bucket": ["logs"]},
              "userIdentity": {"type": "ram-user", "userName": "ops-alice"}}
    record.update(data)
    return {"specversion": "1.0", "id": "E-1", "source": "acs.oss", "type": "oss:ActionTrail:ApiCall",
            "aliyunregionid": "cn-shanghai", "data": record}


def test_timer_event_bytes_with_json_payload() -> None:
    raw = b'{"triggerTime":"2023-12-26T07:49:00Z","triggerName":"hourly","payload":"{\\"inline\\": true}"}'
    timer = ev.parse_timer(raw)
    assert (timer.trigger_time, timer.trigger_name, timer.options) == ("2023-12-26T07:49:00Z", "hourly",
                                                                       {"inline": True})


def test_timer_event_empty_payload_and_empty_event() -> None:
    assert ev.parse_timer(b'{"triggerTime":"t","triggerName":"n","payload":""}').options == {}
    assert ev.parse_timer(b"").options == {}


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"not json", b'"text"', b"[1, 2]"])
def test_timer_event_garbage_raises_event_error(raw: bytes) -> None:
    with pytest.raises(EventError):
        ev.parse_timer(raw)


@pytest.mark.parametrize(("payload", "problem"), [
    ("awesome-fc", ""),  # FC's documented example payload: plain text, no options, nothing wrong
    ("not json", ""),
    ("[1, 2]", "JSON but not an object"),
    ('{"verify_only": tr', "timer payload is not JSON"),
    ("42", "JSON but not an object"),
])
def test_any_timer_payload_text_is_accepted_and_only_an_object_sets_options(payload: str, problem: str) -> None:
    timer = ev.parse_timer(json.dumps({"triggerTime": "t", "triggerName": "n", "payload": payload}).encode())
    assert timer.options == {}
    if problem:
        assert any(problem in p for p in timer.problems), timer.problems
    else:
        assert timer.problems == ()


def test_envelopes_accepts_one_object_or_a_list() -> None:
    one = envelope()
    assert ev.envelopes(json.dumps(one).encode()) == [one]
    assert ev.envelopes(json.dumps([one, one]).encode()) == [one, one]
    with pytest.raises(EventError):
        ev.envelopes(b"42")
    with pytest.raises(EventError):
        ev.envelopes(b"{broken")


def bucket_of(change: ev.Change | ev.Skip) -> str:
    assert isinstance(change, ev.Change)
    [target] = change.targets
    assert target.kind is TargetKind.OSS_BUCKET
    return target.name


def test_classify_a_reacted_write_names_bucket_and_region() -> None:
    change = ev.classify(envelope())
    assert isinstance(change, ev.Change) and not change.cname_bucket
    assert (change.event_id, change.event_name, bucket_of(change), change.region) == (
        "E-1", "PutBucketHttpsConfig", "logs", "cn-shanghai")
    assert change.targets[0].region == "cn-shanghai"


def test_classify_falls_back_to_request_parameters_then_event_source() -> None:
    change = ev.classify(envelope(referencedResources=None, requestParameters={"BucketName": "from-params"}))
    assert bucket_of(change) == "from-params"
    change = ev.classify(envelope(referencedResources=None))
    assert bucket_of(change) == "logs"


@pytest.mark.parametrize("name", ["PutCname", "DeleteCname"])
def test_cname_events_ask_for_every_custom_domain_of_the_bucket(name: str) -> None:
    change = ev.classify(envelope(name))
    assert isinstance(change, ev.Change)
    assert (change.event_name, change.cname_bucket, change.region, change.targets) == (name, "logs", "cn-shanghai",
                                                                                       ())


def test_the_reacted_event_names_come_from_the_check_registry() -> None:
    from tlsguard.checks import REGISTRY

    declared = {event for check in REGISTRY.checks.values() for event in check.events}
    assert {f"oss:{n}" for n in ev.event_names("oss")} | {f"cdn:{n}" for n in ev.event_names("cdn")} == declared
    assert {"PutBucketHttpsConfig", "PutBucketPolicy", "DeleteBucketPolicy", "PutBucketEncryption",
            "DeleteBucketEncryption", "PutCname", "DeleteCname"} == set(ev.event_names("oss"))
    assert {"BatchSetCdnDomainConfig", "DeleteSpecificConfig", "SetCdnDomainSSLCertificate"} == set(
        ev.event_names("cdn"))


@pytest.mark.parametrize(("item", "reason"), [
    (envelope(eventRW="Read"), "read event"),
    (envelope(errorCode="AccessDenied", errorMessage="no"), "failed call (AccessDenied)"),
    (envelope("PutBucketTags"), "PutBucketTags is not an event tlsguard reacts to"),
    ({**envelope(), "source": "acs.actiontrail", "type": "actiontrail:ActionTrail:ApiCall"}, "unexpected source"),
    ({**envelope(), "source": "acs.cdn", "type": "cdn:ActionTrail:ApiCall"}, "PutBucketHttpsConfig is not an event"),
    ({**envelope(), "data": "text"}, "no ActionTrail record"),
    ("a string", "not a JSON object"),
    (envelope(referencedResources=None, eventSource=""), "no bucket named"),
    ({**envelope(), "id": "", "data": {**envelope()["data"], "eventId": ""}}, "has no id"),
])
def test_classify_skips_with_a_short_reason(item: Any, reason: str) -> None:
    decision = ev.classify(item)
    assert isinstance(decision, ev.Skip)
    assert reason in decision.reason


def test_console_operations_are_handled_like_api_calls() -> None:
    assert bucket_of(ev.classify({**envelope(), "type": "oss:ActionTrail:ConsoleOperation"})) == "logs"


def cdn_envelope(name: str = "BatchSetCdnDomainConfig", **data: Any) -> dict[str, Any]:
    record = {"eventId": "C-1", "eventName": name, "eventRW": "Write", "eventSource": "cdn.aliyuncs.com",
              "isGlobal": True, "referencedResources": {"ACS::CDN::Domain": ["www.example.com", "img.example.com"]},
              "requestParameters": {"DomainNames": "www.example.com,img.example.com"}}
    record.update(data)
    return {"specversion": "1.0", "id": "C-1", "source": "acs.cdn", "type": "cdn:ActionTrail:ApiCall", "data": record}


def test_classify_a_cdn_batch_write_names_every_domain() -> None:
    change = ev.classify(cdn_envelope())
    assert isinstance(change, ev.Change)
    assert change.targets == (TargetRef(TargetKind.CDN_DOMAIN, "www.example.com"),
                              TargetRef(TargetKind.CDN_DOMAIN, "img.example.com"))
    assert change.event_name == "BatchSetCdnDomainConfig"
    fallback = ev.classify(cdn_envelope(referencedResources=None, requestParameters={"DomainName": "A.example.com"}))
    assert isinstance(fallback, ev.Change) and fallback.targets == (TargetRef(TargetKind.CDN_DOMAIN, "a.example.com"),)


def test_a_certificate_change_on_a_cdn_domain_is_reacted_to() -> None:
    change = ev.classify(cdn_envelope("SetCdnDomainSSLCertificate", referencedResources=None,
                                      requestParameters={"DomainName": "www.example.com", "SSLProtocol": "off"}))
    assert isinstance(change, ev.Change)
    assert change.targets == (TargetRef(TargetKind.CDN_DOMAIN, "www.example.com"),)


@pytest.mark.parametrize(("item", "reason"), [
    (cdn_envelope("DescribeCdnDomainConfigs"), "is not an event tlsguard reacts to"),
    (cdn_envelope(errorCode="InvalidDomain.NotFound"), "failed call"),
    (cdn_envelope(referencedResources=None, requestParameters={}), "no CDN domain"),
])
def test_cdn_events_skipped_with_a_reason(item: Any, reason: str) -> None:
    decision = ev.classify(item)
    assert isinstance(decision, ev.Skip) and reason in decision.reason
