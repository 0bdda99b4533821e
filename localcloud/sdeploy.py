"""``s deploy`` for localcloud: load the project's ``s.yaml`` (component fc3) into a running LocalCloud.

Every ``fc3`` resource becomes a localcloud function whose handler is imported by module path: ``code:
./dist/<name>.zip`` with ``handler: index.handler`` runs ``functions.<name>.index.handler`` (the same file the
package script zips). Timer triggers become FC timers, ``eventbridge`` triggers become rules on the default bus
targeting the function, and ``http`` triggers are served by a small loopback HTTP front that turns each request
into FC 3.0's HTTP-trigger event (https://www.alibabacloud.com/help/en/functioncompute/fc/http-trigger-invoking-function)
and the handler's ``{"statusCode", "headers", "body", "isBase64Encoded"}`` back into the response.

Serverless Devs variables are resolved: ``${vars.name}`` and ``${env('NAME')}`` / ``${env('NAME', 'default')}``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from localcloud.errors import ServiceError
from localcloud.http import require_loopback

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from localcloud.cloud import LocalCloud

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SYAML = ROOT / "s.yaml"
_VAR = re.compile(r"\$\{\s*vars\.([A-Za-z0-9_]+)\s*\}")
_ENV = re.compile(r"\$\{\s*env\(\s*'([^']+)'\s*(?:,\s*'([^']*)'\s*)?\)\s*\}")
_CODE = re.compile(r"^\./dist/([A-Za-z0-9_]+)\.zip$")


class SdeployError(ValueError):
    """An s.yaml that localcloud cannot load; the message names the resource and field."""


def resolve(value: Any, variables: Mapping[str, Any], environ: Mapping[str, str]) -> Any:
    """Substitute ``${vars.x}`` and ``${env('X', 'default')}`` everywhere in a loaded YAML document."""
    if isinstance(value, dict):
        return {k: resolve(v, variables, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, variables, environ) for v in value]
    if not isinstance(value, str):
        return value

    def var(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise SdeployError(f"${{vars.{name}}} is not defined under vars")
        return str(variables[name])

    def env(match: re.Match[str]) -> str:
        return environ.get(match.group(1), match.group(2) or "")

    return _ENV.sub(env, _VAR.sub(var, value))


def load_syaml(path: Path = DEFAULT_SYAML, variables: Mapping[str, Any] | None = None,
               environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The s.yaml document with variables resolved (``variables`` override the file's ``vars``)."""
    document = yaml.safe_load(Path(path).read_text())
    if not isinstance(document, dict) or not isinstance(document.get("resources"), dict):
        raise SdeployError(f"{path}: not an s.yaml (no resources)")
    merged = {**(document.get("vars") or {}), **(variables or {})}
    resolved: dict[str, Any] = resolve(document, merged, os.environ if environ is None else environ)
    resolved["vars"] = merged
    return resolved


def module_handler(props: dict[str, Any], resource: str) -> str:
    """``./dist/<name>.zip`` + ``index.handler`` → ``functions.<name>.index.handler``."""
    match = _CODE.match(str(props.get("code", "")))
    if not match:
        raise SdeployError(f"resources.{resource}.props.code must be ./dist/<name>.zip (built by make package)")
    module, _, attribute = str(props.get("handler", "")).rpartition(".")
    if not module or not attribute:
        raise SdeployError(f"resources.{resource}.props.handler must be <module>.<function>")
    return f"functions.{match.group(1)}.{module}.{attribute}"


def _function_name_of(arn: str) -> str:
    """``acs:fc:<region>:<account>:functions/<name>`` → ``<name>``."""
    return arn.rsplit("functions/", 1)[-1] if "functions/" in arn else arn


def _role_name_of(arn: str) -> str | None:
    """``acs:ram::<account>:role/<name>`` → ``<name>``."""
    return arn.rsplit("role/", 1)[-1] if "role/" in arn else (arn or None)


@dataclass
class Deployment:
    """What was deployed: function names, timers, EventBridge rules and the HTTP-trigger URLs."""

    functions: list[str] = field(default_factory=list)
    timers: list[tuple[str, str]] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    http_triggers: dict[str, str] = field(default_factory=dict)
    front: HttpTriggerFront | None = None

    def close(self) -> None:
        if self.front is not None:
            self.front.stop()
            self.front = None


def deploy(cloud: LocalCloud, *, syaml: Path = DEFAULT_SYAML, endpoints_file: str | Path,
           policy: str | Path | None = None, environment: Mapping[str, str] | None = None,
           variables: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None,
           http: bool = True) -> Deployment:
    """Register every fc3 resource of ``syaml`` in ``cloud`` and wire its triggers.

    Each function also gets ``TLSGUARD_LOCALCLOUD=<endpoints_file>`` (and ``TLSGUARD_POLICY`` when ``policy`` is
    given, since the packaged relative path means nothing in-process) plus ``environment``.
    """
    base_vars = {"accountId": cloud.default_account_id, "region": cloud.region, **(variables or {})}
    document = load_syaml(syaml, base_vars, environ)
    extra = {"TLSGUARD_LOCALCLOUD": str(endpoints_file), **(environment or {})}
    if policy is not None:
        extra["TLSGUARD_POLICY"] = str(policy)
    items: list[dict[str, Any]] = []
    rules: list[tuple[str, str, str]] = []
    http_functions: list[tuple[str, str]] = []
    #: (function, trigger, type, config, description) of the triggers FC lists besides timers (ListTriggers).
    listed: list[tuple[str, str, str, dict[str, Any], str]] = []
    deployment = Deployment()
    for key, resource in document["resources"].items():
        if not isinstance(resource, dict) or resource.get("component") != "fc3":
            continue
        props = resource.get("props") or {}
        name = str(props["functionName"])
        async_config = props.get("asyncInvokeConfig") or {}
        on_failure = ((async_config.get("destinationConfig") or {}).get("onFailure") or {}).get("destination")
        declared = {k: str(v) for k, v in (props.get("environmentVariables") or {}).items()}
        item: dict[str, Any] = {
            "name": name,
            "handler": module_handler(props, key),
            "runtime": props.get("runtime", "python3.10"),
            "role": _role_name_of(str(props.get("role", ""))),
            "timeout": props.get("timeout", 3),
            "memory": props.get("memorySize", 512),
            "description": props.get("description", ""),
            "environment": {**declared, **extra},
            "async_config": {"max_async_retry_attempts": async_config.get("maxAsyncRetryAttempts", 3),
                             "on_failure": _function_name_of(str(on_failure)) if on_failure else None},
            "triggers": [],
        }
        for trigger in props.get("triggers") or []:
            kind = trigger.get("triggerType")
            config = trigger.get("triggerConfig") or {}
            trigger_name = str(trigger["triggerName"])
            if kind == "timer":
                item["triggers"].append({"type": "timer", "name": trigger_name, "cron": config["cronExpression"],
                                         "payload": config.get("payload", ""), "enable": config.get("enable", True)})
                deployment.timers.append((name, trigger_name))
            elif kind == "eventbridge":
                rules.append((f"{name}-{trigger_name}", str(config["eventRuleFilterPattern"]), name))
                if not config.get("triggerEnable", True):
                    rules.pop()
                listed.append((name, trigger_name, kind, dict(config), str(trigger.get("description", ""))))
            elif kind == "http":
                http_functions.append((name, trigger_name))
                listed.append((name, trigger_name, kind, dict(config), str(trigger.get("description", ""))))
            else:
                raise SdeployError(f"resources.{key}: trigger type {kind!r} is not emulated")
        items.append(item)
        deployment.functions.append(name)
    cloud.fc.seed(items)
    for function, trigger_name, kind, config, description in listed:
        cloud.fc.add_trigger(function, trigger_name, kind, config, description)
    for rule_name, pattern, function in rules:
        cloud.events.add_rule(rule_name, pattern, function, description=f"s.yaml trigger of {function}")
        deployment.rules.append(rule_name)
    if http and http_functions:
        front = HttpTriggerFront(cloud, dict(http_functions))
        base = front.start(cloud.endpoints.get("host") or "127.0.0.1")
        deployment.front = front
        deployment.http_triggers = {function: f"{base}/{function}" for function, _ in http_functions}
        cloud.endpoints["http_triggers"] = dict(deployment.http_triggers)
    return deployment


def canonical_header_key(name: str) -> str:
    """``accept-encoding`` → ``Accept-Encoding``, as Go's net/http canonicalises header keys (a key holding a
    character that is not a header token character is left as it is)."""
    if not name or any(not (char.isascii() and (char.isalnum() or char in "!#$%&'*+-.^_`|~")) for char in name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def canonical_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The HTTP trigger event's ``headers``: keys canonicalised, several values of one key joined with commas.

    https://www.alibabacloud.com/help/en/functioncompute/fc/why-does-the-first-letter-of-header-key-become-uppercase-when-using-http-trigger-call
    (keys normalised by Go's net/http) and https://help.aliyun.com/zh/functioncompute/http-trigger-invoking-function
    (``"header2": "value1,value2"``).
    """
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = canonical_header_key(name)
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return headers


class HttpTriggerFront:
    """Serves ``/<function>/<path>`` on loopback as that function's HTTP trigger (built-in runtime semantics)."""

    def __init__(self, cloud: LocalCloud, functions: dict[str, str]) -> None:
        self.cloud = cloud
        self.functions = functions  # function name -> trigger name
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str = "127.0.0.1") -> str:
        require_loopback(host)
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = front.handle(self.command, self.path,
                                                        canonical_headers(self.headers.items()), body,
                                                        self.client_address[0])
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="localcloud-http-triggers",
                                        daemon=True)
        self._thread.start()
        return f"http://{host}:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes,
               client_ip: str) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request → one Sync invocation → one HTTP response."""
        parsed = urllib.parse.urlsplit(target)
        headers = canonical_headers(headers.items())
        function, _, rest = parsed.path.lstrip("/").partition("/")
        if function not in self.functions:
            return 404, {"Content-Type": "application/json"}, b'{"ErrorCode":"TriggerNotFound"}'
        now = self.cloud.clock.time()
        try:
            text = body.decode("utf-8")
            encoded = False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
        query: dict[str, str] = {}
        for key, value in urllib.parse.parse_qsl(parsed.query, keep_blank_values=True):
            query[key] = f"{query[key]},{value}" if key in query else value
        request_id = f"1-{int(now):08x}-{os.urandom(12).hex()}"
        event = {
            "version": "v1",
            "rawPath": "/" + rest,
            "body": text,
            "isBase64Encoded": encoded,
            "headers": headers,
            "queryParameters": query,
            "requestContext": {
                "accountId": self.cloud.default_account_id,
                "domainName": f"{function}.{self.cloud.region}.fcapp.run",
                "domainPrefix": function,
                "http": {"method": method, "path": "/" + urllib.parse.unquote(rest), "protocol": "HTTP/1.1",
                         "sourceIp": client_ip, "userAgent": headers.get("User-Agent", "")},
                "requestId": request_id,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                "timeEpoch": str(int(now * 1000)),
            },
        }
        try:
            record = self.cloud.fc.invoke(function, json.dumps(event).encode(), invocation_type="Sync",
                                          source=f"http:{self.functions[function]}", request_id=request_id)
        except ServiceError as exc:
            return exc.status, {"Content-Type": "application/json"}, json.dumps(
                {"ErrorCode": exc.code, "ErrorMessage": exc.message}).encode()
        common = {"x-fc-request-id": request_id}
        if record["status"] != "succeeded":
            # FC answers an unhandled function error on an HTTP trigger with 502 and the error type header.
            error = record.get("error") or {}
            return 502, {**common, "Content-Type": "application/json", "x-fc-error-type": "UnhandledInvocationError"}, \
                json.dumps({"errorMessage": error.get("errorMessage", ""),
                            "errorType": error.get("errorType", "")}).encode()
        raw = record.get("result") or ""
        try:
            result = json.loads(raw)
        except ValueError:
            return 200, common, raw.encode()
        if not isinstance(result, dict) or "statusCode" not in result:
            return 200, common, raw.encode()
        out_headers = {**common, **{str(k): str(v) for k, v in (result.get("headers") or {}).items()}}
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else str(payload).encode()
        return int(result["statusCode"]), out_headers, data
