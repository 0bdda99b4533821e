"""One JSON object per log line, with request_id and correlation_id, and secrets redacted.

``get_logger(name)`` returns a stdlib logger whose handler writes JSON lines to stderr; ``bind(...)`` sets the
request and correlation ids for the current thread (FC request id; ActionTrail eventId or timer triggerTime).
Redaction: keys that look secret (secret, token, password, signature, authorization, access_key) are replaced,
and any value registered with :func:`register_secret` is masked wherever it appears in a message.

:func:`scrub` is the one redaction every text that leaves tlsguard goes through (log lines, reports, alert
digests, the webhook function's HTTP answers, the functions' results and error messages): every registered secret
(AccessKey secrets, STS tokens, webhook secrets, robot URLs and the tokens inside them) in plain, percent-encoded
(``quote``, ``quote_plus``, twice-encoded as an RPC string-to-sign holds it) and base64 form, and the value of any
credential parameter a signature scheme echoes (``SecurityToken=...``), is replaced by ``***``.
The SDKs' own loggers are routed into tlsguard's debug log (redacted), never to the console.
"""

from __future__ import annotations

import base64
import contextvars
import json
import logging
import re
import sys
import threading
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

REDACTED = "***"
_SECRET_KEY = re.compile(r"(secret|token|password|signature|authorization|access_?key|credential)", re.IGNORECASE)
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("tlsguard_request_id", default="")
_correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("tlsguard_correlation_id", default="")
#: Shorter values are not masked (they would mask ordinary words).
MIN_SECRET_LENGTH = 4
#: A base64 rendering is masked only from this many characters (a shorter run could be any word).
MIN_BASE64_LENGTH = 8
#: Secrets remembered at once (a warm FC instance sees a new STS token every hour): the oldest are forgotten.
MAX_SECRETS = 64
_secrets: OrderedDict[str, frozenset[str]] = OrderedDict()
_secrets_lock = threading.Lock()
#: Every form of every registered secret, longest first (replaced whole, never read under the lock).
_forms: tuple[str, ...] = ()
_shortest_form = 0
#: The shortest text that can hold anything to mask: a registered form, or ``securitytoken=x``.
_MIN_PARAMETER_TEXT = 15
_scan_from = _MIN_PARAMETER_TEXT
#: Credential parameters as signature schemes echo them, whoever's they are: ``SecurityToken=<v>`` in an RPC
#: string-to-sign (itself percent-encoded there: ``SecurityToken%3D<v>``, parameters split by ``%26``),
#: ``x-oss-security-token:<v>`` in an OSS canonical request, ``"AccessKeySecret": "<v>"`` in a JSON body.
_CREDENTIAL_HINT = re.compile(r"(?i)security[-_]?token|access[-_]?key[-_]?secret")
_CREDENTIAL_PARAM = re.compile(
    r"(?i)(security[-_]?token|access[-_]?key[-_]?secret)(=|%3D|%253D|[\"']?\s*:\s*[\"']?)"
    r"((?:(?!%26|%2526)[^\s&\"'<>,;\\])+)")
#: A URL path segment that looks like a token (16 characters or more, or 8 with letters and digits); the words
#: of a robot URL's path (``robot``, ``send``, ``hook``) are not masked.
_TOKEN_SEGMENT = re.compile(r"^(?=.*[0-9])(?=.*[A-Za-z]).{8,}$|^.{16,}$")


def _encoded_forms(secret: str) -> set[str]:
    """``secret`` as it may appear in text: plain, percent-encoded (upper and lower hex, once and twice), JSON-escaped
    and as a run of base64 at each of the three alignments (an ``Authorization: Basic`` header, a signed blob)."""
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), quote_plus(secret, safe="/"),
             json.dumps(secret)[1:-1]}
    forms |= {quote(form, safe="") for form in list(forms)}
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), form) for form in list(forms)}
    data = secret.encode("utf-8")
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data).decode("ascii")
        core = encoded[-(-8 * shift // 6):(8 * (shift + len(data))) // 6]  # characters made of the secret alone
        if len(core) >= MIN_BASE64_LENGTH:
            forms |= {core, core.replace("+", "-").replace("/", "_")}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def _url_tokens(url: str) -> set[str]:
    """The parts of a robot or webhook URL that carry its token: query values and token-like path segments."""
    parts = urlsplit(url)
    values = {value for _, value in parse_qsl(parts.query) if len(value) >= MIN_BASE64_LENGTH}
    values |= {segment for segment in parts.path.split("/") if _TOKEN_SEGMENT.match(segment)}
    if parts.password:
        values.add(parts.password)
    return values


def register_secret(value: str | None) -> None:
    """Mask this value, in every form :func:`scrub` knows, in everything tlsguard emits from now on (AccessKey
    secrets, STS tokens, webhook secrets; a URL also has its token parts masked: query values, path tokens)."""
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    global _forms, _shortest_form, _scan_from
    with _secrets_lock:
        if value in _secrets:
            _secrets.move_to_end(value)
            return
    values = {value} | (_url_tokens(value) if "://" in value else set())
    forms = frozenset(form for item in values for form in _encoded_forms(item))
    with _secrets_lock:
        _secrets[value] = forms
        while len(_secrets) > MAX_SECRETS:
            _secrets.popitem(last=False)
        every = {form for known in _secrets.values() for form in known}
        _forms = tuple(sorted(every, key=len, reverse=True))
        _shortest_form = len(_forms[-1]) if _forms else 0
        _scan_from = min(_shortest_form or _MIN_PARAMETER_TEXT, _MIN_PARAMETER_TEXT)


def bind(request_id: str | None = None, correlation_id: str | None = None) -> None:
    """Set the ids carried by every log line of this context (thread or task)."""
    if request_id is not None:
        _request_id.set(request_id)
    if correlation_id is not None:
        _correlation_id.set(correlation_id)


def redact(value: Any, key: str = "") -> Any:
    """For log fields: :func:`scrub`, and values under secret-looking keys masked too (recursively)."""
    if key and _SECRET_KEY.search(key) and not isinstance(value, (dict, list)):
        return REDACTED if value not in (None, "") else value
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return mask_secrets(value)
    return value


def scrub(value: Any) -> Any:
    """The redaction applied at every exit: ``value`` (a string, or a JSON-like document, recursively) with every
    registered secret in any of its forms, and every echoed credential parameter, replaced by ``***``."""
    kind = type(value)
    if kind is str:
        return mask_secrets(value) if len(value) >= _scan_from else value
    if kind is dict:
        return {k: scrub(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


def mask_secrets(text: str) -> str:
    """:func:`scrub` for one string."""
    if len(text) < _scan_from:  # too short to hold any registered form or a credential parameter
        return text
    forms = _forms
    if forms and len(text) >= _shortest_form:
        size = len(text)
        for form in forms:
            if len(form) <= size and form in text:
                text = text.replace(form, REDACTED)
    # Plain substring tests first: a regex search costs ten times more, and nearly no text names a credential.
    if ("oken" in text or "ecret" in text or "OKEN" in text or "ECRET" in text) and _CREDENTIAL_HINT.search(text):
        text = _CREDENTIAL_PARAM.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    return text


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, ids and any ``extra`` fields."""

    _STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
            "request_id": _request_id.get(),
            "correlation_id": _correlation_id.get(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                document[key] = redact(value, key)
        if record.exc_info:
            document["error"] = mask_secrets(self.formatException(record.exc_info))
        # Once more over the whole line: an ``extra`` object is turned into text only by ``default=str``.
        return mask_secrets(json.dumps(document, default=str, ensure_ascii=False))


#: The loggers of the SDKs tlsguard drives. Left alone, Python prints their warnings on stderr (the credential
#: chain's tracebacks, aliyunsdkcore's "ServerException occurred" with the server's string-to-sign); routed here,
#: they are debug lines of tlsguard's own log, redacted, shown only with TLSGUARD_LOG_LEVEL=DEBUG.
SDK_LOGGERS = ("aliyunsdkcore", "alibabacloud_oss_v2", "alibabacloud_credentials", "credentials", "alibabacloud-tea",
               "alibabacloud_tea_openapi", "alibabacloud_fc20230330", "Tea", "urllib3", "requests")


class SdkToDebugLog(logging.Handler):
    """Re-emits an SDK's log record as a DEBUG line of ``tlsguard.sdk`` (so through :class:`JsonFormatter`)."""

    def emit(self, record: logging.LogRecord) -> None:
        target = logging.getLogger("tlsguard.sdk")
        if not target.isEnabledFor(logging.DEBUG):
            return
        try:
            message = record.getMessage()
        except Exception:  # a malformed SDK log call must not break the caller
            message = str(record.msg)
        target.debug(message, exc_info=record.exc_info,
                     extra={"sdk_logger": record.name, "sdk_level": record.levelname})


def route_sdk_loggers(level: int | None = None) -> None:
    """Send :data:`SDK_LOGGERS` to tlsguard's debug log only (``level``: tlsguard's, by default its current one).

    Their own handlers are dropped: some SDK modules attach a stderr handler when they are imported
    (alibabacloud-credentials' providers, Tea's core), so this runs again after such a lazy import.
    """
    if level is None:
        level = logging.getLogger("tlsguard").getEffectiveLevel()
    handler = SdkToDebugLog()
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)


_configured = False


def get_logger(name: str = "tlsguard") -> logging.Logger:
    """A logger under ``tlsguard`` that writes JSON lines to stderr (configured once per process)."""
    global _configured
    root = logging.getLogger("tlsguard")
    if not _configured:
        from tlsguard import settings

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        root.setLevel((settings.env(settings.LOG_LEVEL, "WARNING") or "WARNING").upper())
        root.propagate = False
        route_sdk_loggers(root.level)
        _configured = True
    return logging.getLogger(name if name.startswith("tlsguard") else f"tlsguard.{name}")
