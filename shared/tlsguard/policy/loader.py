"""Load ``tlsguard.yaml``: YAML with line numbers, JSON Schema validation, guardrails, then the frozen model.

Every error is a :class:`~tlsguard.errors.ConfigError` naming the file, the line and the field
(``tlsguard.yaml:14: rules[1].tls_versions: ...``).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from tlsguard.errors import ConfigError
from tlsguard.model import Mode, TargetKind, TargetRef
from tlsguard.policy.model import (
    DEFAULT_PROPAGATION_SECONDS,
    MODERN_VERSIONS,
    AlertSettings,
    ChannelSpec,
    CipherMode,
    CipherPolicy,
    Desired,
    EncryptionAlgorithm,
    EncryptionPolicy,
    Guard,
    Policy,
    Posture,
    Route,
    RouteMatch,
    Rule,
    Selector,
    TlsVersion,
    VerifySettings,
    Waiver,
)
from tlsguard.policy.suites import TLS12_SUITES, TLS13_SUITES

SCHEMA_PATH = Path(__file__).with_name("policy.schema.json")
#: KMS key ids: the UUID form, the ``key-...`` form, optionally inside a key ARN.
KMS_KEY_ID = re.compile(
    r"^(acs:kms:[a-z0-9-]+:\d+:key/)?"
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|key-[a-z0-9]{12,40})$"
)
Path_ = tuple[Any, ...]


@lru_cache(maxsize=1)
def policy_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


def _format_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Located:
    """Parsed YAML data plus the line of every node, keyed by its path."""

    def __init__(self, file: str, text: str) -> None:
        import yaml

        class Loader(yaml.SafeLoader):
            """SafeLoader that keeps dates as strings (the schema validates their form)."""

        def timestamp_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
            return loader.construct_scalar(node)  # type: ignore[arg-type]

        Loader.add_constructor("tag:yaml.org,2002:timestamp", timestamp_as_text)
        self.file = file
        self.lines: dict[Path_, int] = {}
        try:
            root = yaml.compose(text, Loader=Loader)
            self.data = yaml.load(text, Loader=Loader) if root is not None else None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            raise ConfigError(f"invalid YAML: {exc.problem}", file=file,
                              line=mark.line + 1 if mark else None) from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"invalid YAML: {exc}", file=file) from exc
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: Any, path: Path_) -> None:
        import yaml

        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = key_node.value
                if key in seen:
                    raise ConfigError(f"duplicate key {key!r}", file=self.file, line=key_node.start_mark.line + 1,
                                      field=_format_path((*path, key)))
                seen.add(key)
                self._walk(value_node, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, (*path, index))

    def line(self, path: Path_) -> int | None:
        path = tuple(path)
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path)

    def error(self, message: str, path: Path_) -> ConfigError:
        return ConfigError(message, file=self.file, line=self.line(path), field=_format_path(path))


def load_policy(path: str | Path) -> Policy:
    """Read, validate and build a policy file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read policy file: {exc.strerror or exc}", file=str(file)) from exc
    return parse_policy(text, str(file))


def parse_policy(text: str, file: str = "tlsguard.yaml") -> Policy:
    """Validate ``text`` against the schema and the guardrails; build the :class:`Policy`."""
    import jsonschema

    located = _Located(file, text)
    data = located.data
    if not isinstance(data, dict):
        raise ConfigError("the policy file must be a mapping with 'version' and 'defaults'", file=file, line=1)
    validator = jsonschema.Draft202012Validator(policy_schema(), format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(data), key=lambda e: (located.line(tuple(e.absolute_path)) or 0))
    if errors:
        first = errors[0]
        raise located.error(_schema_message(first), tuple(first.absolute_path))
    return _build(data, located)


def _schema_message(error: Any) -> str:
    if error.validator == "additionalProperties":
        return f"unknown field: {error.message.split('(')[-1].rstrip(')')}"
    if error.validator == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value)
        return f"{error.instance!r} is not one of: {allowed}"
    return str(error.message)


def _posture(raw: dict[str, Any], located: _Located, path: Path_) -> Posture:
    versions = None
    if "tls_versions" in raw:
        versions = frozenset(TlsVersion(v) for v in raw["tls_versions"])
    cipher = None
    if "cipher_suites" in raw:
        spec = raw["cipher_suites"]
        mode = CipherMode(spec["mode"])
        if mode is not CipherMode.CUSTOM and (spec.get("tls12") or spec.get("tls13")):
            raise located.error("tls12/tls13 lists need mode 'custom'", (*path, "cipher_suites", "mode"))
        cipher = CipherPolicy(mode, tuple(spec.get("tls12", ())), tuple(spec.get("tls13", ())))
    encryption = None
    if "encryption" in raw:
        spec = raw["encryption"]
        algorithm = EncryptionAlgorithm(spec["algorithm"])
        if algorithm is not EncryptionAlgorithm.KMS and (spec.get("kms_key_id") or spec.get("kms_data_encryption")):
            raise located.error("kms_key_id and kms_data_encryption need algorithm KMS", (*path, "encryption"))
        encryption = EncryptionPolicy(algorithm, spec.get("kms_key_id", ""), spec.get("kms_data_encryption", ""))
    return Posture(versions, cipher, raw.get("https_only"), encryption)


def overlay(base: Posture, top: Posture) -> Posture:
    """``top``'s managed parts replace ``base``'s."""
    return Posture(
        top.tls_versions if top.tls_versions is not None else base.tls_versions,
        top.cipher if top.cipher is not None else base.cipher,
        top.https_only if top.https_only is not None else base.https_only,
        top.encryption if top.encryption is not None else base.encryption,
    )


def guardrail_problems(posture: Posture) -> list[tuple[str, str]]:
    """(field, problem) for every way ``posture`` would weaken a bucket; empty when it is safe."""
    problems: list[tuple[str, str]] = []
    versions = posture.tls_versions
    if versions is not None and not versions & MODERN_VERSIONS:
        problems.append(("tls_versions", "leaves the bucket without TLS 1.2 or TLS 1.3"))
    cipher = posture.cipher
    if cipher is not None and cipher.mode is CipherMode.CUSTOM:
        if not cipher.tls12 and not cipher.tls13:
            problems.append(("cipher_suites", "custom cipher suites with an empty list"))
        unknown = [s for s in cipher.tls12 if s not in TLS12_SUITES]
        unknown += [s for s in cipher.tls13 if s not in TLS13_SUITES]
        if unknown:
            problems.append(("cipher_suites", f"unknown cipher suite names: {', '.join(unknown)}"))
        effective = versions if versions is not None else frozenset(TlsVersion)
        usable = (TlsVersion.TLS12 in effective and cipher.tls12) or (TlsVersion.TLS13 in effective and cipher.tls13)
        if (cipher.tls12 or cipher.tls13) and not usable:
            problems.append(("cipher_suites", "custom cipher suites without TLS 1.2/1.3 suites for an enabled version"))
    encryption = posture.encryption
    if encryption is not None and encryption.kms_key_id and not KMS_KEY_ID.match(encryption.kms_key_id):
        problems.append(("encryption.kms_key_id", f"malformed KMS key id {encryption.kms_key_id!r}"))
    return problems


def _build(data: dict[str, Any], located: _Located) -> Policy:
    defaults = _posture(data["defaults"], located, ("defaults",))
    for field, problem in guardrail_problems(defaults):
        raise located.error(f"guardrail: {problem}", ("defaults", *field.split(".")))
    rules: list[Rule] = []
    for index, raw in enumerate(data.get("rules", [])):
        path: Path_ = ("rules", index)
        posture = _posture(raw, located, path)
        insecure = raw.get("allow_insecure", {}).get("reason", "")
        if not insecure:
            for field, problem in guardrail_problems(overlay(defaults, posture)):
                raise located.error(f"guardrail: {problem} (set allow_insecure with a reason to accept this)",
                                    (*path, *field.split(".")))
        match = raw["match"]
        selector = Selector(
            names=frozenset(match.get("names", ())), globs=tuple(match.get("globs", ())),
            regions=frozenset(match.get("regions", ())), tags=tuple(sorted(match.get("tags", {}).items())),
        )
        rules.append(Rule(raw["name"], selector, posture, Mode(raw["mode"]) if "mode" in raw else None,
                          insecure, located.line(path)))
    waivers = []
    for index, raw in enumerate(data.get("waivers", [])):
        try:
            expires = dt.date.fromisoformat(raw["expires"])
        except ValueError as exc:
            raise located.error(f"invalid date {raw['expires']!r}", ("waivers", index, "expires")) from exc
        waivers.append(Waiver(raw.get("target") or raw["bucket"], raw["reason"], expires,
                              frozenset(_canonical_check(c) for c in raw.get("checks", ())),
                              frozenset(TargetKind(k) for k in raw.get("kinds", ()))))
    guard_raw = data.get("guard", {})
    guard = Guard(
        max_remediations=guard_raw.get("max_remediations", Guard.max_remediations),
        window_minutes=guard_raw.get("window_minutes", Guard.window_minutes),
        own_principals=tuple(guard_raw.get("own_principals", Guard.own_principals)),
    )
    from tlsguard.certs.policy import cdn_policy_from_mapping, cert_policy_from_mapping

    certificates = data.get("certificates") or {}
    try:
        cert_policy = cert_policy_from_mapping(certificates, source=located.file)
        cdn_policy = cdn_policy_from_mapping(certificates.get("cdn_https"), source=located.file)
    except ConfigError as exc:
        path = ("certificates", *[p for p in exc.field.split(".")[1:] if p])
        raise located.error(exc.reason, path) from None
    verify_raw = data.get("verify", {})
    default_window = float(verify_raw.get("propagation_minutes", DEFAULT_PROPAGATION_SECONDS / 60)) * 60
    windows = {kind: float(verify_raw.get("per_kind", {}).get(kind.value, default_window / 60)) * 60
               for kind in TargetKind}
    verify = VerifySettings(windows, int(verify_raw.get("attempts_before_alert", 3)))
    alert_settings = _alert_settings(data.get("alerts", {}), located)
    state = data.get("state", {})
    return Policy(
        defaults=defaults, mode=Mode(data.get("mode", "enforce")), rules=tuple(rules), waivers=tuple(waivers),
        state_bucket=state.get("bucket", ""), state_prefix=state.get("prefix", "tlsguard/"), guard=guard,
        rate_limits=tuple(sorted((k, float(v)) for k, v in data.get("rate_limits", {}).items())),
        source=located.file, certificates=cert_policy, cdn_https=cdn_policy, verify=verify,
        alerts=alert_settings,
    )


#: What each channel type needs from the environment (checked when the policy is loaded, values when a run starts).
_CHANNEL_NEEDS = {"dingtalk": ("url_env",), "wecom": ("url_env",), "lark": ("url_env",), "slack": ("url_env",),
                  "email": ("smtp_host", "from", "to"), "webhook": ()}


def _alert_settings(raw: dict[str, Any], located: _Located) -> AlertSettings:
    """``alerts:``: channels (unique names, what each type needs), routes naming known channels, language."""
    channels: list[ChannelSpec] = []
    for index, item in enumerate(raw.get("channels", [])):
        path: Path_ = ("alerts", "channels", index)
        missing = [key for key in _CHANNEL_NEEDS[item["type"]] if key not in item]
        if missing:
            raise located.error(f"a {item['type']} channel needs {', '.join(missing)}", path)
        if item["type"] == "webhook" and "url_env" not in item:
            raise located.error("a webhook channel needs url_env", path)
        if any(c.name == item["name"] for c in channels):
            raise located.error(f"duplicate channel name {item['name']!r}", (*path, "name"))
        options = {k: v for k, v in item.items() if k not in ("name", "type", "url_env", "secret_env")}
        channels.append(ChannelSpec(item["name"], item["type"], item.get("url_env", ""), item.get("secret_env", ""),
                                    options=options))
    if "webhook" in raw:  # the earlier single-webhook form: a channel named "webhook"
        hook = raw["webhook"]
        if any(c.name == "webhook" for c in channels):
            raise located.error("alerts.webhook and a channel named 'webhook' cannot both be given", ("alerts",))
        channels.append(ChannelSpec("webhook", "webhook", secret_env=hook.get("secret_env", "TLSGUARD_WEBHOOK_SECRET"),
                                    url=hook["url"], options={k: v for k, v in hook.items()
                                                              if k in ("timeout_seconds", "attempts")}))
    names = {c.name for c in channels}
    routes: list[Route] = []
    for index, item in enumerate(raw.get("routes", [])):
        unknown = [name for name in item["channels"] if name not in names]
        if unknown:
            raise located.error(f"unknown channel {unknown[0]!r} (channels: {', '.join(sorted(names)) or 'none'})",
                                ("alerts", "routes", index, "channels"))
        match = item.get("match", {})
        for glob in match.get("target", []):
            _check_glob(glob, located, ("alerts", "routes", index, "match", "target"))
        routes.append(Route(RouteMatch(frozenset(match.get("severity", [])),
                                       frozenset(_canonical_check(c) if c not in ("live", "target") else c
                                                 for c in match.get("check", [])),
                                       frozenset(match.get("kind", [])), tuple(match.get("target", []))),
                            tuple(item["channels"])))
    return AlertSettings(tuple(sorted(float(h) for h in raw.get("reminder_hours", (24, 72, 168)))),
                         raw.get("language", "en"), tuple(channels), tuple(routes))


def _check_glob(glob: str, located: _Located, path: Path_) -> None:
    """A glob fnmatch would silently match nothing with is refused (an unclosed ``[``)."""
    if glob.count("[") != glob.count("]"):
        raise located.error(f"invalid glob {glob!r}: unbalanced brackets", path)


def _canonical_check(check_id: str) -> str:
    from tlsguard.checks import REGISTRY

    return REGISTRY.canonical(check_id)


def selector_matches(selector: Selector, bucket: str, region: str, tags: dict[str, str] | None) -> bool:
    if selector.names and bucket not in selector.names:
        return False
    if selector.globs and not any(fnmatch.fnmatchcase(bucket, g) for g in selector.globs):
        return False
    if selector.regions and region not in selector.regions:
        return False
    if selector.tags:
        tags = tags or {}
        return all(key in tags and (value == "*" or tags[key] == value) for key, value in selector.tags)
    return True


def resolve(policy: Policy, target: TargetRef, tags: dict[str, str] | None, today: dt.date,
            mode_override: Mode | None = None) -> Desired:
    """The desired state of one target (rules select buckets; domains take the certificates section)."""
    mode = policy.mode
    names: list[str] = []
    posture = Posture()
    refusal = ""
    if target.kind is TargetKind.OSS_BUCKET:
        posture = policy.defaults
        insecure_ok = False
        for rule in policy.rules:
            if selector_matches(rule.selector, target.name, target.region, tags):
                posture = overlay(posture, rule.posture)
                mode = rule.mode or mode
                names.append(rule.name)
                insecure_ok = insecure_ok or bool(rule.allow_insecure_reason)
        if not insecure_ok:
            problems = guardrail_problems(posture)
            if problems:
                refusal = "combined rules break a guardrail: " + "; ".join(f"{f}: {p}" for f, p in problems)
    if mode_override is not None:
        mode = mode_override
    waived: list[tuple[str, str]] = []
    expired: list[str] = []
    for waiver in policy.waivers:
        if waiver.kinds and target.kind not in waiver.kinds:
            continue
        if not fnmatch.fnmatchcase(target.name, waiver.target):
            continue
        checks = sorted(waiver.checks) or ["*"]
        if waiver.active(today):
            waived.extend((check, waiver.reason) for check in checks)
        else:
            label = ", ".join(sorted(waiver.checks)) or "all checks"
            expired.append(f"{label}: {waiver.reason} (expired {waiver.expires.isoformat()})")
    is_domain = target.kind is not TargetKind.OSS_BUCKET
    return Desired(target, mode, posture, policy.certificates if is_domain else None,
                   policy.cdn_https if target.kind is TargetKind.CDN_DOMAIN else None, tuple(names), tuple(waived),
                   tuple(expired), refusal, policy.verify.window(target.kind))
