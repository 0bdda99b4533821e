"""Function Compute 3.0 conformance: the behaviour tlsguard relies on, checked against FC's documentation through the
official alibabacloud-fc20230330 client over HTTP (and the loopback HTTP-trigger front), each test naming its source.

Sources read:

* InvokeFunction, https://www.alibabacloud.com/help/doc-detail/191156.htm (``X-Fc-Invocation-Type`` Sync/Async,
  ``X-Fc-Log-Type``) and https://help.aliyun.com/en/functioncompute/call-example (an Async call answers 202);
* Python error handling, https://www.alibabacloud.com/help/en/functioncompute/fc/error-handling-1-1
  (``X-Fc-Error-Type: UnhandledInvocationError`` and ``{"errorMessage", "errorType", "stackTrace"}``);
* the FC 3.0 error struct, https://help.aliyun.com/zh/functioncompute/fc/developer-reference/api-fc-2023-03-30-struct-error
  (``{"Code": "FunctionNotFound", "Message", "RequestId": "1-64e70cf1-5cbef92ea8fc8c42899cf5d1"}``) and the error-code
  table https://help.aliyun.com/document_detail/440324.html (the ``...NotFound`` codes are 404);
* the timer event, https://www.alibabacloud.com/help/en/fc/formats-of-event-for-different-triggers
  (``{"triggerTime": "2018-02-09T05:49:00Z", "triggerName": "timer-trigger", "payload": "awesome-fc"}``);
* the HTTP trigger's request struct, https://help.aliyun.com/zh/functioncompute/http-trigger-invoking-function, and
  header-key normalisation, https://www.alibabacloud.com/help/en/functioncompute/fc/why-does-the-first-letter-of-header-key-become-uppercase-when-using-http-trigger-call;
* the destination event, https://help.aliyun.com/zh/functioncompute/user-guide/result-callback
  (``timestamp``, ``requestContext.{requestId, functionArn, condition, approximateInvokeCount}``,
  ``requestPayload``, ``responseContext.{statusCode, functionError}``, ``responsePayload``);
* GetFunction, https://alibabacloud.com/help/en/functioncompute/developer-reference/api-fc-2023-03-30-getfunction;
  ListTriggers, https://alibabacloud.com/help/en/functioncompute/api-fc-2023-03-30-struct-listtriggersoutput,
  https://alibabacloud.com/help/en/functioncompute/api-fc-2023-03-30-struct-trigger and
  https://alibabacloud.com/help/en/functioncompute/api-fc-2023-03-30-struct-timertriggerconfig.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import re
from typing import Any

import pytest
from alibabacloud_fc20230330 import models as fc_models
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_util.models import RuntimeOptions

from localcloud.cloud import LocalCloud
from tests.localcloud.fc.conftest import function

ACCOUNT = "1500000000000001"
#: ``1-64e70cf1-5cbef92ea8fc8c42899cf5d1`` in the error struct's example.
REQUEST_ID = re.compile(r"1-[0-9a-f]{8}-[0-9a-f]{24}")
ISO_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _invoke(client: Any, name: str, body: bytes, **headers: str) -> Any:
    return client.invoke_function_with_options(
        name, fc_models.InvokeFunctionRequest(qualifier="LATEST", body=io.BytesIO(body)),
        fc_models.InvokeFunctionHeaders(**headers), RuntimeOptions())


def _received() -> list[dict[str, Any]]:
    from tests.localcloud.fc import sample_functions

    return [json.loads(raw) for raw in sample_functions.RECEIVED]


# -- InvokeFunction ----------------------------------------------------------------------------------------------
def test_a_sync_invocation_answers_200_with_the_result_and_the_request_id(cloud: LocalCloud, fc_client: Any) -> None:
    """InvokeFunction (doc-detail/191156) with ``X-Fc-Invocation-Type: Sync`` answers the handler's result as the
    body; ``x-fc-request-id`` is shaped like the error struct's example ``1-64e70cf1-5cbef92ea8fc8c42899cf5d1``."""
    cloud.fc.seed([function("conf-sync", "returns_bytes")])
    response = _invoke(fc_client(), "conf-sync", b"{}", x_fc_invocation_type="Sync")
    assert response.status_code == 200
    assert response.body.read() == b"\x00\x01raw"
    assert REQUEST_ID.fullmatch(response.headers["x-fc-request-id"])
    assert "x-fc-error-type" not in response.headers


def test_an_unhandled_error_is_flagged_by_x_fc_error_type_with_the_python_error_body(
        cloud: LocalCloud, fc_client: Any) -> None:
    """error-handling-1-1: a raising Python handler gives ``X-Fc-Error-Type: UnhandledInvocationError`` and a JSON
    body of exactly ``errorMessage``, ``errorType`` and ``stackTrace``, each frame
    ``['File "<path>"', 'line <n>', 'in <function>', '<code>']``."""
    cloud.fc.seed([function("conf-broken", "always_fail")])
    response = _invoke(fc_client(), "conf-broken", b"{}")
    assert response.headers["x-fc-error-type"] == "UnhandledInvocationError"
    assert REQUEST_ID.fullmatch(response.headers["x-fc-request-id"])
    error = json.loads(response.body.read())
    assert set(error) == {"errorMessage", "errorType", "stackTrace"}
    assert (error["errorMessage"], error["errorType"]) == ("this handler always fails", "ValueError")
    frame = error["stackTrace"][-1]
    assert len(frame) == 4 and all(isinstance(part, str) for part in frame)
    assert re.fullmatch(r'File ".+sample_functions\.py"', frame[0]) and re.fullmatch(r"line \d+", frame[1])
    assert frame[2] == "in always_fail" and frame[3] == 'raise ValueError("this handler always fails")'


def test_an_async_invocation_is_accepted_with_202_and_runs_later(cloud: LocalCloud, fc_client: Any) -> None:
    """call-example: "For a successful asynchronous invocation ... a status code of 202, which means the request was
    accepted"; the handler still receives the payload, and the request id is the invocation's."""
    cloud.fc.seed([function("conf-async", "record")])
    response = _invoke(fc_client(), "conf-async", b'{"n": 1}', x_fc_invocation_type="Async")
    assert response.status_code == 202
    request_id = response.headers["x-fc-request-id"]
    assert REQUEST_ID.fullmatch(request_id)
    assert cloud.fc.wait_idle()
    assert _received() == [{"n": 1}]
    [record] = cloud.fc.invocations()
    assert (record["id"], record["type"], record["status"]) == (request_id, "Async", "succeeded")


@pytest.mark.parametrize("operation", ["InvokeFunction", "GetFunction", "ListTriggers"])
def test_a_missing_function_is_404_function_not_found_in_the_error_struct(
        cloud: LocalCloud, fc_client: Any, operation: str) -> None:
    """api-fc-2023-03-30-struct-error: the body is ``{"Code", "Message", "RequestId"}`` with ``Code``
    ``FunctionNotFound``; the FC error-code table (document_detail/440324) answers ``...NotFound`` with 404."""
    client = fc_client()
    calls = {
        "InvokeFunction": lambda: _invoke(client, "conf-missing", b"{}"),
        "GetFunction": lambda: client.get_function("conf-missing", fc_models.GetFunctionRequest()),
        "ListTriggers": lambda: client.list_triggers("conf-missing", fc_models.ListTriggersRequest()),
    }
    with pytest.raises(ClientException) as caught:
        calls[operation]()
    error = caught.value
    assert (error.status_code, error.code) == (404, "FunctionNotFound")
    assert "conf-missing" in error.message
    assert REQUEST_ID.fullmatch(error.request_id)
    assert set(error.data) >= {"Code", "Message", "RequestId"}
    assert cloud.fc.invocations() == []


# -- the events a handler receives --------------------------------------------------------------------------------
def test_the_timer_event_has_exactly_the_documented_fields(cloud: LocalCloud) -> None:
    """formats-of-event-for-different-triggers: ``triggerTime`` (``2018-02-09T05:49:00Z``), ``triggerName`` and
    ``payload``, the trigger message as a string; tlsguard's timer parser reads the options from that string."""
    from tlsguard.functions import events as ev

    cloud.fc.seed([function("conf-timer", "record", triggers=[
        {"type": "timer", "name": "conf-sweep", "cron": "0 0 2 * * *", "payload": '{"mode": "full"}',
         "enable": False}])])
    cloud.fc.fire_timer("conf-timer", "conf-sweep")
    assert cloud.fc.wait_idle()
    [event] = _received()
    assert set(event) == {"triggerTime", "triggerName", "payload"}
    assert ISO_SECONDS.fullmatch(event["triggerTime"])
    assert (event["triggerName"], event["payload"]) == ("conf-sweep", '{"mode": "full"}')
    [record] = cloud.fc.invocations()
    assert (record["type"], record["source"]) == ("Async", "timer:conf-sweep")
    parsed = ev.parse_timer(json.dumps(event).encode())
    assert (parsed.trigger_name, parsed.options, parsed.problems) == ("conf-sweep", {"mode": "full"}, ())


def test_the_http_trigger_event_has_the_documented_request_struct(cloud: LocalCloud) -> None:
    """http-trigger-invoking-function: ``version`` v1, ``rawPath`` URL-encoded and ``requestContext.http.path``
    decoded, a binary body base64 with ``isBase64Encoded``, repeated headers and query parameters joined with
    commas; header keys normalised as Go's net/http does (``accept-encoding`` → ``Accept-Encoding``, per the FAQ
    page); tlsguard's HTTP parser reads the method, body and headers back."""
    from tlsguard.functions import events as ev

    from localcloud.sdeploy import HttpTriggerFront

    cloud.fc.seed([function("conf-http", "record")])
    front = HttpTriggerFront(cloud, {"conf-http": "conf-web"})
    base = front.start()
    try:
        connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=10)
        body = b"\xff\x00binary"
        connection.putrequest("POST", "/conf-http/a%20b/check?x=1&x=2&y=z", skip_accept_encoding=True)
        for name, value in [("x-custom-thing", "one"), ("X-CUSTOM-THING", "two"), ("accept-encoding", "gzip"),
                            ("Content-Length", str(len(body))), ("user-agent", "conformance/1")]:
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"recorded")
        assert REQUEST_ID.fullmatch(response.headers["x-fc-request-id"])
        connection.close()
    finally:
        front.stop()
    [event] = _received()
    assert set(event) == {"version", "rawPath", "body", "isBase64Encoded", "headers", "queryParameters",
                          "requestContext"}
    assert (event["version"], event["rawPath"]) == ("v1", "/a%20b/check")
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == body
    assert event["queryParameters"] == {"x": "1,2", "y": "z"}
    headers = event["headers"]
    assert headers["X-Custom-Thing"] == "one,two" and headers["Accept-Encoding"] == "gzip"
    assert not [name for name in headers if name != "-".join(p.capitalize() for p in name.split("-"))]
    context = event["requestContext"]
    assert set(context) == {"accountId", "domainName", "domainPrefix", "http", "requestId", "time", "timeEpoch"}
    assert set(context["http"]) == {"method", "path", "protocol", "sourceIp", "userAgent"}
    assert (context["http"]["method"], context["http"]["path"]) == ("POST", "/a b/check")
    assert (context["http"]["protocol"], context["http"]["userAgent"]) == ("HTTP/1.1", "conformance/1")
    assert context["accountId"] == ACCOUNT and context["domainName"].endswith(".fcapp.run")
    assert REQUEST_ID.fullmatch(context["requestId"]) and ISO_SECONDS.fullmatch(context["time"])
    assert context["timeEpoch"].isdigit() and len(context["timeEpoch"]) == 13
    parsed = ev.parse_http(json.dumps(event).encode())
    assert (parsed.method, parsed.body, parsed.header("x-custom-thing")) == ("POST", body, "one,two")


def test_the_on_failure_destination_event_has_the_documented_fields(cloud: LocalCloud, fc_client: Any,
                                                                     fast_retries: None) -> None:
    """result-callback: the destination function receives ``timestamp`` (milliseconds), ``requestContext`` with the
    failed invocation's ``requestId``, its ``functionArn`` (``acs:fc:{regionid}:{accountid}:functions/xxxx``),
    ``condition`` and ``approximateInvokeCount`` (above 1 when FC retried), the original ``requestPayload``, and
    ``responseContext.{statusCode, functionError}`` with the ``responsePayload``."""
    cloud.fc.seed([function("conf-doomed", "always_fail", async_config={"max_async_retry_attempts": 1,
                                                                         "on_failure": "conf-dead-letter"}),
                   function("conf-dead-letter", "record")])
    response = _invoke(fc_client(), "conf-doomed", b'{"n": 2}', x_fc_invocation_type="Async")
    assert cloud.fc.wait_idle()
    [event] = _received()
    assert set(event) == {"timestamp", "requestContext", "requestPayload", "responseContext", "responsePayload"}
    assert isinstance(event["timestamp"], int) and len(str(event["timestamp"])) == 13
    request = event["requestContext"]
    assert set(request) == {"requestId", "functionArn", "condition", "approximateInvokeCount"}
    assert request["requestId"] == response.headers["x-fc-request-id"]
    assert request["functionArn"] == f"acs:fc:cn-hangzhou:{ACCOUNT}:functions/conf-doomed"
    assert request["approximateInvokeCount"] == 2 and isinstance(request["condition"], str)
    assert event["requestPayload"] == '{"n": 2}'
    assert set(event["responseContext"]) == {"statusCode", "functionError"}
    assert event["responseContext"]["statusCode"] == 200
    assert json.loads(event["responsePayload"])["errorType"] == "ValueError"


# -- GetFunction and ListTriggers ---------------------------------------------------------------------------------
def test_get_function_answers_the_documented_function_fields(cloud: LocalCloud, fc_client: Any) -> None:
    """GetFunction (``GET /2023-03-30/functions/{functionName}``) answers the ``Function`` struct: name, ARN
    ``acs:fc:<region>:<account>:functions/<name>``, handler, runtime, memorySize, timeout, the role's RAM ARN,
    environmentVariables and ``createdTime`` like ``2023-04-01T08:15:27Z``."""
    cloud.fc.seed([function("conf-get", "echo", runtime="python3.12", role="tlsguard-fc-role", memory=256,
                            timeout=30, environment={"LOG_LEVEL": "INFO"}, description="conformance")])
    got = fc_client().get_function("conf-get", fc_models.GetFunctionRequest()).body
    assert (got.function_name, got.runtime, got.handler) == ("conf-get", "python3.12",
                                                             "tests.localcloud.fc.sample_functions.echo")
    assert got.function_arn == f"acs:fc:cn-hangzhou:{ACCOUNT}:functions/conf-get"
    assert got.role == f"acs:ram::{ACCOUNT}:role/tlsguard-fc-role"
    assert (got.memory_size, got.timeout, got.description) == (256, 30, "conformance")
    assert got.environment_variables == {"LOG_LEVEL": "INFO"}
    assert ISO_SECONDS.fullmatch(got.created_time) and ISO_SECONDS.fullmatch(got.last_modified_time)


def test_list_triggers_answers_trigger_structs_and_omits_next_token_on_the_last_page(
        cloud: LocalCloud, fc_client: Any) -> None:
    """ListTriggersOutput: ``triggers`` and a ``nextToken`` that is "not returned" once everything is; each Trigger's
    ``triggerConfig`` is a string, for a timer the TimerTriggerConfig ``{cronExpression, enable, payload}``, and
    ``targetArn`` the function's ARN."""
    cloud.fc.seed([function("conf-triggers", "record", triggers=[
        {"type": "timer", "name": f"conf-timer-{index}", "cron": "0 0 2 * * *", "payload": f"p{index}",
         "enable": index == 0} for index in range(3)])])
    client = fc_client()
    first = client.list_triggers("conf-triggers", fc_models.ListTriggersRequest(limit=2)).body
    assert [t.trigger_name for t in first.triggers] == ["conf-timer-0", "conf-timer-1"] and first.next_token
    second = client.list_triggers("conf-triggers", fc_models.ListTriggersRequest(
        limit=2, next_token=first.next_token)).body
    assert [t.trigger_name for t in second.triggers] == ["conf-timer-2"] and second.next_token is None
    trigger = first.triggers[0]
    assert trigger.trigger_type == "timer" and trigger.qualifier == "LATEST"
    assert trigger.target_arn == f"acs:fc:cn-hangzhou:{ACCOUNT}:functions/conf-triggers"
    assert isinstance(trigger.trigger_config, str)
    assert json.loads(trigger.trigger_config) == {"cronExpression": "0 0 2 * * *", "enable": True, "payload": "p0"}
    assert json.loads(first.triggers[1].trigger_config)["enable"] is False
    assert ISO_SECONDS.fullmatch(trigger.created_time) and trigger.trigger_id
