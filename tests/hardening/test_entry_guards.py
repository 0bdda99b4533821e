"""The bounds at the function entry points (issue 14), without a cloud: size, nesting, numbers and field types of
events, FC 3.0 HTTP-trigger events of any shape, timer payloads of any text, and signature headers of any bytes."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from tlsguard.errors import EventError, EventTooLarge
from tlsguard.functions import events as ev
from tlsguard.functions import service
from tlsguard.notify.webhook import sign, verify

pytestmark = pytest.mark.unit


def envelope(event_id: str = "E-1", **data: Any) -> dict[str, Any]:
    record = {"eventId": event_id, "eventName": "PutBucketHttpsConfig", "eventRW": "Write",
              "acsRegion": "cn-hangzhou", "referencedResources": {"ACS::OSS::Bucket": ["logs"]},
              "userIdentity": {"type": "ram-user", "userName": "ops-alice"}}
    record.update(data)
    return {"specversion": "1.0", "id": event_id, "source": "acs.oss", "type": "oss:ActionTrail:ApiCall",
            "data": record}


# -- nesting, size, numbers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [65, 1_000, 150_000])
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deep_nesting_is_refused_before_the_decoder_can_recurse(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    text = opener * depth + "1" + closer * depth
    with pytest.raises(EventError, match="nests deeper than 64 levels"):
        ev.load_json(text.encode())
    with pytest.raises(EventError, match="nests deeper"):
        ev.load_json(("[" * depth).encode())  # unbalanced: the decoder would recurse just the same


def test_nesting_up_to_the_limit_parses_and_brackets_inside_strings_do_not_count() -> None:
    assert ev.load_json(("[" * 64 + "]" * 64).encode()) == json.loads("[" * 64 + "]" * 64)
    tricky = json.dumps({"text": "[" * 5000 + '\\"{' * 100, "n": [[1]]})
    assert ev.load_json(tricky.encode())["n"] == [[1]]
    assert not ev.nests_deeper_than(json.dumps(["]" * 100, "[" * 100]), 2)


def test_already_parsed_events_get_the_same_depth_bound() -> None:
    deep: Any = 1
    for _ in range(100):
        deep = [deep]
    with pytest.raises(EventError, match="nests deeper"):
        ev.load_json({"a": deep})


def test_size_is_checked_on_the_raw_bytes_before_decoding() -> None:
    with pytest.raises(EventTooLarge, match="over the 1048576-byte limit"):
        ev.load_json(b'"' + b"a" * ev.MAX_EVENT_BYTES + b'"')


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "1" * 5000, "-" + "9" * 60])
def test_hostile_numbers_are_refused_with_a_reason(number: str) -> None:
    with pytest.raises(EventError, match="not JSON"):
        ev.load_json(f'{{"n": {number}}}'.encode())


@pytest.mark.parametrize("raw", [b"\xff\xfe", b'{"a": "\xed\xa0\x80"}', b'{"a": 1', b'{"a": 1}}', b"\x00"])
def test_bytes_that_are_not_utf8_json_are_refused_with_a_reason(raw: bytes) -> None:
    with pytest.raises(EventError) as refused:
        ev.load_json(raw)
    assert str(refused.value).startswith("event is not")


# -- CloudEvents batches -------------------------------------------------------------------------------------------
def test_one_bad_event_in_a_batch_leaves_the_others_to_be_handled() -> None:
    deep = "[" * 5000 + "]" * 5000
    raw = f'[{json.dumps(envelope("E-1"))}, {deep}, {{"id": NaN}}, {json.dumps(envelope("E-2"))}]'.encode()
    items = ev.envelopes(raw)
    decisions = [ev.classify(item) for item in items]
    assert [type(d).__name__ for d in decisions] == ["Change", "Skip", "Skip", "Change"]
    assert "nests deeper than 64 levels" in decisions[1].reason and "not JSON" in decisions[2].reason
    assert [d.event_id for d in decisions if isinstance(d, ev.Change)] == ["E-1", "E-2"]


def test_a_batch_over_the_limit_handles_the_first_hundred_and_says_so_once() -> None:
    items = ev.envelopes(json.dumps([envelope(f"E-{i}") for i in range(250)]).encode())
    assert len(items) == ev.MAX_BATCH_EVENTS + 1
    last = ev.classify(items[-1])
    assert isinstance(last, ev.Skip) and "150 events over the batch limit of 100" in last.reason


@pytest.mark.parametrize(("mutation", "reason"), [
    ({"id": {"nested": 1}}, "id is a dict, not a string"),
    ({"id": "E" * 300}, "id is 300 characters"),
    ({"source": ["acs.oss"]}, "source is a list"),
    ({"id": "E-\ud800"}, "id is not printable ASCII"),
])
def test_envelope_fields_of_the_wrong_type_or_size_are_skipped_with_the_reason(mutation: dict[str, Any],
                                                                               reason: str) -> None:
    decision = ev.classify({**envelope(), **mutation})
    assert isinstance(decision, ev.Skip) and reason in decision.reason


def test_a_huge_actor_name_is_skipped_not_echoed() -> None:
    decision = ev.classify(envelope(userIdentity={"type": "ram-user", "userName": "x" * 100_000}))
    assert isinstance(decision, ev.Skip) and "userIdentity.userName is 100000 characters" in decision.reason


@pytest.mark.parametrize(("names", "reason"), [
    (["b" * 300], "300 characters"),
    (["../../etc"], "not a bucket or domain name"),
    (["bad\nname"], "not a bucket or domain name"),
    ([f"d{i}.example.com" for i in range(60)], "names 60 targets (at most 50)"),
])
def test_changes_naming_unusable_targets_are_skipped_before_any_io(names: list[str], reason: str) -> None:
    event = envelope(referencedResources={"ACS::OSS::Bucket": names})
    if len(names) > 1:
        event = {**event, "source": "acs.cdn", "type": "cdn:ActionTrail:ApiCall",
                 "data": {**event["data"], "eventName": "BatchSetCdnDomainConfig",
                          "referencedResources": {"ACS::CDN::Domain": names}}}
    decision = service.screen_change(ev.classify(event))
    assert isinstance(decision, ev.Skip) and reason in decision.reason


# -- timer payloads ------------------------------------------------------------------------------------------------
def timer(payload: Any, **fields: Any) -> ev.TimerEvent:
    return ev.parse_timer(json.dumps({"triggerTime": "2026-11-14T03:00:00Z", "triggerName": "hourly",
                                      "payload": payload, **fields}).encode())


@pytest.mark.parametrize("payload", ["awesome-fc", "", "  ", "hello world", "verify_only"])
def test_plain_text_payloads_run_with_the_defaults_and_nothing_to_report(payload: str) -> None:
    options = service.timer_options(timer(payload))
    assert options.problems == () and not options.verify_only and options.threshold == 200


def test_only_a_json_object_sets_options_and_each_bad_option_is_reported_alone() -> None:
    options = service.timer_options(timer('{"threshold": "many", "batch_size": 5, "verify_only": 1, "x": 2}'))
    assert (options.threshold, options.batch_size, options.verify_only) == (200, 5, False)
    assert len(options.problems) == 3
    assert any("'threshold' ignored" in p for p in options.problems)
    assert any("'verify_only' ignored" in p for p in options.problems)
    assert any("unknown option 'x'" in p for p in options.problems)
    assert service.timer_options(timer('{"inline": true, "batch_size": 2}')).threshold == 1 << 62


@pytest.mark.parametrize(("payload", "problem"), [
    ('{"batch_size": 1e999}', "out of range"),
    ('{"batch_size": 501}', "'batch_size' ignored"),
    ('{"threshold": ' + "[" * 100 + "]" * 100 + "}", "nests deeper"),
    ("[1, 2]", "not an object"),
    (7, "not text"),
])
def test_broken_payloads_are_reported_and_the_sweep_still_runs(payload: Any, problem: str) -> None:
    options = service.timer_options(timer(payload))
    assert any(problem in p for p in options.problems), options.problems
    assert options.batch_size == 50


def test_timer_names_that_cannot_be_part_of_a_key_are_reported_and_dropped() -> None:
    event = timer("{}", triggerName="x" * 5000, triggerTime={"a": 1})
    assert (event.trigger_name, event.trigger_time) == ("", "")
    assert len(event.problems) == 2


# -- HTTP trigger events -------------------------------------------------------------------------------------------
def http_event(body: str = '{"buckets": ["a"]}', **fields: Any) -> bytes:
    event = {"version": "v1", "rawPath": "/", "body": body, "isBase64Encoded": False,
             "headers": {"X-Tlsguard-Timestamp": "1", "X-Tlsguard-Signature": "sha256=00"},
             "queryParameters": {}, "requestContext": {"http": {"method": "POST", "path": "/"}}}
    event.update(fields)
    return json.dumps(event).encode()


def test_a_base64_body_is_decoded_and_bounded_after_decoding() -> None:
    request = ev.parse_http(http_event(base64.b64encode(b"\xff\x00binary").decode(), isBase64Encoded=True))
    assert request.body == b"\xff\x00binary" and request.header("x-tlsguard-timestamp") == "1"
    with pytest.raises(EventTooLarge):
        ev.parse_http(http_event(base64.b64encode(b"a" * (ev.MAX_HTTP_BODY_BYTES + 1)).decode(),
                                 isBase64Encoded=True))
    with pytest.raises(EventTooLarge):
        ev.parse_http(http_event("a" * 300_000))


@pytest.mark.parametrize(("fields", "reason"), [
    ({"body": "!!!", "isBase64Encoded": True}, "not valid base64"),
    ({"body": "\u00e9t\u00e9", "isBase64Encoded": True}, "not valid base64"),
    ({"body": "YWJ", "isBase64Encoded": True}, "not valid base64"),
    ({"isBase64Encoded": "true"}, "isBase64Encoded must be true or false"),
    ({"body": {"buckets": []}}, "body must be a string"),
    ({"body": "\ud800"}, "not valid text"),
    ({"headers": ["X-Tlsguard-Signature"]}, "headers must be an object"),
    ({"headers": {"X-Tlsguard-Signature": ["a"]}}, "must be a string"),
    ({"headers": {"X-Tlsguard-Signature": "a", "x-tlsguard-signature": "b"}}, "given twice"),
    ({"requestContext": {"http": {"method": 7}}}, "method"),
])
def test_malformed_http_trigger_events_are_refused_with_the_field(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(EventError) as refused:
        ev.parse_http(http_event(**fields))
    assert not isinstance(refused.value, EventTooLarge) and reason in str(refused.value)


@pytest.mark.parametrize("error", [EventTooLarge("body is 9 bytes, over the 8-byte limit"), EventError("no")])
def test_the_webhook_answers_413_for_size_and_400_for_the_rest(error: EventError) -> None:
    answer = service.http_refusal(error)
    assert answer["statusCode"] == (413 if isinstance(error, EventTooLarge) else 400)
    assert json.loads(answer["body"]) == {"error": str(error)}


# -- signatures of any bytes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("signature", ["sha256=\u00ff\u00fe", "sha256=" + "\u00e9" * 64, "sha256=\ud800",
                                       "\u0661" * 71, "sha256=" + "0" * 10_000, ""])
def test_a_signature_of_any_text_is_simply_invalid(signature: str) -> None:
    assert verify("secret", str(int(time.time())), b"{}", signature) is False


@pytest.mark.parametrize("timestamp", ["nan", "inf", "1e400", "\u0661\u0667\u0660\u0660", "9" * 400, "x"])
def test_a_timestamp_of_any_text_is_simply_invalid(timestamp: str) -> None:
    assert verify("secret", timestamp, b"{}", sign("secret", timestamp, b"{}")) is False


def test_a_good_signature_still_verifies() -> None:
    stamp = str(int(time.time()))
    assert verify("secret", stamp, b"{}", sign("secret", stamp, b"{}"))


@pytest.mark.parametrize("window", ["five minutes", "nan", "0", "-1", "1e9"])
def test_a_misconfigured_replay_window_is_a_503_naming_nothing_secret(window: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TLSGUARD_INBOUND_SECRET", "inbound-secret-value")
    monkeypatch.setenv("TLSGUARD_REPLAY_WINDOW_SECONDS", window)
    stamp = str(int(time.time()))
    request = ev.HttpRequest("POST", b"{}", {"x-tlsguard-timestamp": stamp,
                                             "x-tlsguard-signature": sign("inbound-secret-value", stamp, b"{}")})
    answer = service.webhook_http(None, request)
    assert answer["statusCode"] == 503
    assert "inbound-secret-value" not in answer["body"]
