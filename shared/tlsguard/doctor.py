"""``tlsguard doctor``: can this deployment do its job? One line per check: pass, fail or unknown, with the fix.

What it checks, each through a small port (:class:`DoctorPorts`; the adapters are in
:mod:`tlsguard.adapters.ops` and the existing OSS, CDN and CAS adapters):

* **credentials**: who is asking (STS GetCallerIdentity);
* **ram**: every RAM action the deployed functions need (the check registry's reads and fixes plus the platform's
  own, :func:`tlsguard.functions.permissions.needed_operations`), each tried with a harmless read or dry call where
  one exists (on the state bucket, the first CDN domain, the first CAS certificate, a probe object under the state
  prefix, a check-function invocation its handler refuses); "unknown" where none exists (writes to guarded
  resources). The calls run as the doctor's caller: run it as the functions' role to check the role;
* **state bucket**: it exists, is private (ACL and bucket policy) and HTTPS-only;
* **eventbridge**: a rule per service delivers to tlsguard-on-change, enabled, naming every event the registry
  reacts to;
* **actiontrail**: each of those event names was recorded lately (LookupEvents), so the names on_change listens
  for are the ones the cloud uses;
* **functions**: the function set is deployed with sane settings and triggers (FC 3.0 GetFunction, ListTriggers);
* **heartbeat**: the event-path lag (:mod:`tlsguard.heartbeat`).

Errors are data: a check whose call fails says so in its line and the others still run. Exit code 0 when nothing
fails, 1 otherwise.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from tlsguard.errors import CloudError, NotFound, PermissionDenied

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from tlsguard.policy.model import Policy
    from tlsguard.ports import BucketRef, CdnPort, CnamePort, OssPort

PASS = "pass"
FAIL = "fail"
UNKNOWN = "unknown"
DOCTOR_VERSION = 1
#: The function set s.yaml deploys, and the trigger types each must have.
FUNCTION_SET: dict[str, tuple[str, ...]] = {
    "tlsguard-sweep": ("timer",),
    "tlsguard-check": (),
    "tlsguard-on-change": ("eventbridge",),
    "tlsguard-webhook": ("http",),
    "tlsguard-cert-renewal": ("timer",),
    "tlsguard-failed": (),
}
ON_CHANGE_FUNCTION = "tlsguard-on-change"
CHECK_FUNCTION = "tlsguard-check"
#: FC's Python runtimes tlsguard supports (s.yaml, README).
RUNTIMES = ("python3.10", "python3.12")
DEFAULT_BUS = "default"
DEFAULT_LOOKBACK_DAYS = 7
#: ActionTrail's ServiceName of each service whose events the registry names (OSS sample: "Oss"; CDN by the same
#: convention, UNCONFIRMED).
TRAIL_SERVICE_NAMES = {"oss": "Oss", "cdn": "Cdn"}
#: What the doctor itself calls besides the probes (for deploy/ram-policy-doctor.json). GetCallerIdentity needs
#: no authorization (https://help.aliyun.com/en/ram/developer-reference/api-sts-2015-04-01-getcalleridentity).
OWN_OPERATIONS: frozenset[tuple[str, str]] = frozenset({
    ("oss", "GetBucketInfo"), ("oss", "GetBucketPolicy"), ("oss", "ListBuckets"), ("oss", "ListObjectsV2"),
    ("oss", "GetObject"), ("actiontrail", "LookupEvents"), ("eventbridge", "ListRules"),
    ("eventbridge", "ListTargets"), ("fc", "GetFunction"), ("fc", "ListTriggers"),
})


# -- the result ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckLine:
    """One check's verdict: ``group`` (credentials, ram, ...), what it is about, status, what was seen, the fix."""

    group: str
    name: str
    status: str
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "name": self.name, "status": self.status, "detail": self.detail,
                "fix": self.fix or None}

    def human(self) -> str:
        text = f"{self.status.upper():<8}{self.group:<13}{self.name}: {self.detail}"
        return text + (f"\n{'':21}fix: {self.fix}" if self.fix and self.status != PASS else "")


@dataclass
class DoctorReport:
    identity: dict[str, str] | None = None
    lines: list[CheckLine] = field(default_factory=list)

    def add(self, group: str, name: str, status: str, detail: str, fix: str = "") -> None:
        self.lines.append(CheckLine(group, name, status, detail, fix))

    @property
    def counts(self) -> dict[str, int]:
        return {status: sum(1 for line in self.lines if line.status == status) for status in (PASS, FAIL, UNKNOWN)}

    @property
    def exit_code(self) -> int:
        return 1 if self.counts[FAIL] else 0

    def to_dict(self) -> dict[str, Any]:
        return {"doctor_version": DOCTOR_VERSION, "identity": self.identity, "summary": self.counts,
                "exit_code": self.exit_code, "checks": [line.to_dict() for line in self.lines]}

    def human(self) -> str:
        who = (self.identity or {}).get("Arn") or "unknown caller"
        counts = self.counts
        return "\n".join([f"tlsguard doctor (as {who})", *(line.human() for line in self.lines),
                          f"{counts[PASS]} pass, {counts[FAIL]} fail, {counts[UNKNOWN]} unknown; exit "
                          f"{self.exit_code}"])


# -- ports -----------------------------------------------------------------------------------------------------
class IdentityPort(Protocol):
    def caller_identity(self) -> dict[str, str]: ...


class TrailPort(Protocol):
    def lookup_events(self, key: str, value: str, start: float, end: float,
                      max_pages: int = ...) -> list[dict[str, Any]]: ...


class RulesPort(Protocol):
    def list_rules(self, bus: str) -> list[dict[str, Any]]: ...

    def list_targets(self, bus: str, rule: str) -> list[dict[str, Any]]: ...


class FunctionsPort(Protocol):
    def get_function(self, name: str) -> dict[str, Any] | None: ...

    def list_triggers(self, name: str) -> list[dict[str, Any]]: ...

    def invoke(self, name: str, payload: bytes) -> None: ...


class BucketAclPort(Protocol):
    def bucket_acl(self, bucket: BucketRef) -> str: ...


class CasProbePort(Protocol):
    def list_certificate_ids(self, keyword: str = "") -> Iterator[int]: ...

    def candidate(self, cert_id: int) -> Any: ...


@dataclass
class DoctorPorts:
    """What the doctor talks to; a port that is None makes its checks unknown (say why in ``missing``)."""

    oss: OssPort
    cname: CnamePort | None = None
    cdn: CdnPort | None = None
    cas: CasProbePort | None = None
    identity: IdentityPort | None = None
    trail: TrailPort | None = None
    rules: RulesPort | None = None
    functions: FunctionsPort | None = None
    acl: BucketAclPort | None = None
    missing: str = "no explicit credentials (set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET)"


def _error(exc: CloudError) -> str:
    return exc.describe()[:300]


# -- RAM probes ------------------------------------------------------------------------------------------------
class _CannotProbe(Exception):
    """No harmless call can be made for this action here (and why)."""


@dataclass
class _Probe:
    ports: DoctorPorts
    policy: Policy
    state: BucketRef | None
    probe_key: str = ""
    cdn_domain: str | None = None
    cert_id: int | None = None

    def bucket(self) -> BucketRef:
        if self.state is None:
            raise _CannotProbe("needs the state bucket, which was not found")
        return self.state

    def cdn(self) -> CdnPort:
        if self.ports.cdn is None:
            raise _CannotProbe(f"CDN not reachable: {self.ports.missing}")
        return self.ports.cdn

    def domain(self) -> str:
        if self.cdn_domain is None:
            raise _CannotProbe("needs a CDN domain, and the account has none")
        return self.cdn_domain


def _probe_list_buckets(p: _Probe) -> str:
    next(iter(p.ports.oss.list_buckets(prefix=p.policy.state_bucket or "tlsguard")), None)
    return "ListBuckets"


def _probe_cnames(p: _Probe) -> str:
    if p.ports.cname is None:
        raise _CannotProbe("no custom-domain port")
    p.ports.cname.list_cnames(p.bucket())
    return "ListCname on the state bucket"


def _probe_put_object(p: _Probe) -> str:
    p.ports.oss.put_object_if_absent(p.bucket().name, p.probe_key, b'{"tlsguard": "doctor probe"}')
    return f"PutObject {p.probe_key}"


def _probe_delete_object(p: _Probe) -> str:
    p.ports.oss.delete_object(p.bucket().name, p.probe_key)
    return f"DeleteObject {p.probe_key}"


def _probe_list_domains(p: _Probe) -> str:
    first = next(iter(p.cdn().list_domains()), None)
    p.cdn_domain = getattr(first, "name", None) if first is not None else None
    return "DescribeUserDomains"


def _probe_cas_list(p: _Probe) -> str:
    if p.ports.cas is None:
        raise _CannotProbe(f"CAS not reachable: {p.ports.missing}")
    p.cert_id = next(iter(p.ports.cas.list_certificate_ids()), None)
    return "ListUserCertificateOrder"


def _probe_cas_detail(p: _Probe) -> str:
    if p.ports.cas is None or p.cert_id is None:
        raise _CannotProbe("needs a CAS certificate, and the account has none")
    p.ports.cas.candidate(p.cert_id)  # CertFilter=true: no key material is asked for
    return f"GetUserCertificateDetail {p.cert_id} (without the key)"


def _probe_invoke(p: _Probe) -> str:
    if p.ports.functions is None:
        raise _CannotProbe(f"FC not reachable: {p.ports.missing}")
    p.ports.functions.invoke(CHECK_FUNCTION, b'{"doctor": "a payload the check handler refuses"}')
    return f"InvokeFunction {CHECK_FUNCTION} with a payload its handler refuses"


#: A harmless call per operation, in the order they run (later probes use what earlier ones found).
PROBES: dict[tuple[str, str], Callable[[_Probe], str]] = {
    ("oss", "ListBuckets"): _probe_list_buckets,
    ("oss", "GetBucketTags"): lambda p: (p.ports.oss.get_bucket_tags(p.bucket()), "GetBucketTags")[1],
    ("oss", "GetBucketHttpsConfig"): lambda p: (p.ports.oss.get_https_config(p.bucket()),
                                                "GetBucketHttpsConfig on the state bucket")[1],
    ("oss", "GetBucketPolicy"): lambda p: (p.ports.oss.get_policy(p.bucket()), "GetBucketPolicy")[1],
    ("oss", "GetBucketEncryption"): lambda p: (p.ports.oss.get_encryption(p.bucket()), "GetBucketEncryption")[1],
    ("oss", "ListCname"): _probe_cnames,
    ("oss", "ListObjectsV2"): lambda p: (next(iter(p.ports.oss.list_objects(p.bucket().name, p.policy.state_prefix)),
                                              None), "ListObjects under the state prefix")[1],
    ("oss", "GetObject"): lambda p: (p.ports.oss.get_object(p.bucket().name, p.probe_key), "GetObject")[1],
    ("oss", "PutObject"): _probe_put_object,
    ("oss", "DeleteObject"): _probe_delete_object,
    ("cdn", "DescribeUserDomains"): _probe_list_domains,
    ("cdn", "DescribeDomainCertificateInfo"): lambda p: (p.cdn().certificate_view(p.domain()),
                                                         f"DescribeDomainCertificateInfo {p.cdn_domain}")[1],
    ("cdn", "DescribeCdnDomainConfigs"): lambda p: (p.cdn().domain_configs(p.domain(), ("https_force",)),
                                                    f"DescribeCdnDomainConfigs {p.cdn_domain}")[1],
    ("cas", "ListUserCertificateOrder"): _probe_cas_list,
    ("cas", "GetUserCertificateDetail"): _probe_cas_detail,
    ("fc", "InvokeFunction"): _probe_invoke,
}


def probed_operations(needed: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """The needed operations the doctor tries with a harmless call."""
    return {op for op in needed if op in PROBES}


def check_ram(report: DoctorReport, ports: DoctorPorts, policy: Policy, state: BucketRef | None) -> None:
    from tlsguard.functions.permissions import OPERATIONS, needed_operations

    needed = needed_operations()
    probe = _Probe(ports, policy, state, probe_key=f"{policy.state_prefix}doctor/probe-{secrets.token_hex(4)}.json")
    verdicts: dict[str, tuple[str, str, str]] = {}  # action -> (status, detail, resource)
    for operation, run in PROBES.items():
        if operation not in needed:
            continue
        permission = OPERATIONS[operation]
        try:
            what = run(probe)
            verdict = (PASS, f"allowed ({what})", permission.resource)
        except _CannotProbe as exc:
            verdict = (UNKNOWN, f"not tried: {exc}", permission.resource)
        except PermissionDenied as exc:
            verdict = (FAIL, f"denied: {_error(exc)}", permission.resource)
        except NotFound:
            verdict = (PASS, "allowed (the resource asked about does not exist)", permission.resource)
        except CloudError as exc:
            verdict = (UNKNOWN, f"could not tell: {_error(exc)}", permission.resource)
        previous = verdicts.get(permission.action)
        if previous is None or previous[0] != FAIL:
            verdicts[permission.action] = verdict
    actions: dict[str, str] = {}
    for operation in sorted(needed):
        permission = OPERATIONS[operation]
        actions.setdefault(permission.action, permission.resource)
        for action, resource in permission.also:
            actions.setdefault(action, resource)
    for action in sorted(actions):
        status, detail, resource = verdicts.get(action, (
            UNKNOWN, "no harmless call exists (a write, or one the service checks on the caller's behalf)",
            actions[action]))
        fix = f"grant {action} on {resource} (deploy/ram-policy.json)"
        if status == UNKNOWN:
            fix = f"make sure {action} on {resource} is granted: deploy/ram-policy.json lists it"
        report.add("ram", action, status, detail, fix)


# -- state bucket ----------------------------------------------------------------------------------------------
def _public_statements(text: str | None) -> list[dict[str, Any]]:
    """Allow statements for everyone with no Condition: the bucket is public to their actions."""
    from tlsguard.policy.bucket_policy import parse_policy

    document = parse_policy(text) or {}
    statements = document.get("Statement") or []
    found = []
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict) or str(statement.get("Effect", "")).lower() != "allow":
            continue
        principal = statement.get("Principal")
        principals = principal if isinstance(principal, list) else [principal]
        if (principals == [] or "*" in principals) and not statement.get("Condition"):
            found.append(statement)
    return found


def check_state_bucket(report: DoctorReport, ports: DoctorPorts, policy: Policy) -> BucketRef | None:
    from tlsguard.heartbeat import state_bucket_ref
    from tlsguard.policy.bucket_policy import has_https_only, https_only_statement

    name = policy.state_bucket
    if not name:
        report.add("state-bucket", "(none)", FAIL, "the policy names no state bucket: no journal, leases, alert "
                   "deduplication or heartbeat", "set state.bucket in the policy to a private bucket")
        return None
    try:
        state = state_bucket_ref(ports.oss, name)
    except CloudError as exc:
        report.add("state-bucket", name, UNKNOWN, f"cannot list buckets: {_error(exc)}", "grant oss:ListBuckets")
        return None
    if state is None:
        report.add("state-bucket", name, FAIL, "the bucket does not exist (or belongs to another account)",
                   f"create a private bucket {name} in the functions' region")
        return None
    report.add("state-bucket", f"{name} exists", PASS, f"in {state.region}")
    if ports.acl is None:
        report.add("state-bucket", f"{name} ACL", UNKNOWN, "not read: no GetBucketInfo client")
    else:
        try:
            acl = ports.acl.bucket_acl(state)
            if acl == "private":
                report.add("state-bucket", f"{name} ACL", PASS, "private")
            else:
                report.add("state-bucket", f"{name} ACL", FAIL, f"{acl or 'unknown'}: anyone may read the journal, "
                           "leases and alert state", f"ossutil set-acl oss://{name} private (or the console)")
        except CloudError as exc:
            report.add("state-bucket", f"{name} ACL", UNKNOWN, f"GetBucketInfo failed: {_error(exc)}",
                       "grant oss:GetBucketInfo on the state bucket to the doctor's caller")
    try:
        text = ports.oss.get_policy(state)
    except CloudError as exc:
        report.add("state-bucket", f"{name} policy", UNKNOWN, f"GetBucketPolicy failed: {_error(exc)}",
                   "grant oss:GetBucketPolicy on the state bucket")
        return state
    try:
        public = _public_statements(text)
        https_only = has_https_only(text, name)
    except ValueError as exc:
        report.add("state-bucket", f"{name} policy", UNKNOWN, f"the bucket policy is not JSON: {exc}")
        return state
    if public:
        actions = sorted({action for statement in public for action in _strings(statement.get("Action"))})
        report.add("state-bucket", f"{name} policy", FAIL, f"allows everyone, unconditionally: {', '.join(actions)}",
                   "remove the Allow statements whose Principal is * from the state bucket's policy")
    else:
        report.add("state-bucket", f"{name} policy", PASS, "grants nothing to everyone")
    if https_only:
        report.add("state-bucket", f"{name} HTTPS-only", PASS, "the policy denies every plain-HTTP request")
    else:
        report.add("state-bucket", f"{name} HTTPS-only", FAIL, "plain HTTP is not denied",
                   f"add to its policy: {json.dumps(https_only_statement(name), separators=(',', ':'))}")
    return state


# -- EventBridge -----------------------------------------------------------------------------------------------
def _pattern(rule: dict[str, Any]) -> dict[str, Any]:
    raw = rule.get("FilterPattern")
    try:
        pattern = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return pattern if isinstance(pattern, dict) else {}


def _strings(value: Any) -> set[str]:
    return {v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)}


def _rule_event_names(rule: dict[str, Any]) -> set[str]:
    """The literal ``data.eventName`` values of a rule's pattern."""
    data = _pattern(rule).get("data")
    return _strings(data.get("eventName") if isinstance(data, dict) else None)


def check_eventbridge(report: DoctorReport, ports: DoctorPorts) -> None:
    from tlsguard.functions.events import CDN_EVENT_TYPES, CDN_SOURCE, OSS_EVENT_TYPES, OSS_SOURCE, event_names

    services = {"oss": (OSS_SOURCE, OSS_EVENT_TYPES, "oss-tls-drift"),
                "cdn": (CDN_SOURCE, CDN_EVENT_TYPES, "cdn-https-drift")}
    if ports.rules is None:
        for service in services:
            report.add("eventbridge", f"{service} rule", UNKNOWN, f"not checked: {ports.missing}")
        return
    try:
        rules = ports.rules.list_rules(DEFAULT_BUS)
        delivering = []
        for rule in rules:
            targets = ports.rules.list_targets(DEFAULT_BUS, str(rule.get("RuleName") or ""))
            if any(str(t.get("Endpoint") or "").endswith(f"functions/{ON_CHANGE_FUNCTION}") for t in targets):
                delivering.append(rule)
    except CloudError as exc:
        for service in services:
            report.add("eventbridge", f"{service} rule", UNKNOWN, f"cannot list rules: {_error(exc)}",
                       "grant eventbridge:ListRules and eventbridge:ListTargets (deploy/ram-policy-doctor.json)")
        return
    for service, (source, types, trigger) in services.items():
        expected = set(event_names(service))
        candidates = [r for r in delivering if source in _strings(_pattern(r).get("source"))]
        fix = f"deploy s.yaml again (s deploy: trigger {trigger} of {ON_CHANGE_FUNCTION}; python deploy/generate.py " \
              "writes its pattern from the registry)"
        if not candidates:
            report.add("eventbridge", f"{service} rule", FAIL, f"no rule on the {DEFAULT_BUS} bus delivers {source} "
                       f"events to {ON_CHANGE_FUNCTION}: on_change never fires for {service}", fix)
            continue
        ranked = sorted(((str(r.get("Status")) == "ENABLE", len(expected & _rule_event_names(r)), index)
                         for index, r in enumerate(candidates)), reverse=True)
        rule = candidates[ranked[0][2]]
        name = str(rule.get("RuleName") or "?")
        names = _rule_event_names(rule)
        missing = sorted(expected - names)
        problems = []
        if str(rule.get("Status") or "ENABLE") != "ENABLE":
            problems.append(f"rule {name} is {rule.get('Status')}")
        if missing:
            problems.append(f"rule {name} does not name {', '.join(missing)}")
        if types[0] not in _strings(_pattern(rule).get("type")):
            problems.append(f"rule {name} does not match type {types[0]}")
        if problems:
            report.add("eventbridge", f"{service} rule", FAIL, "; ".join(problems), fix)
        else:
            extra = sorted(names - expected)
            report.add("eventbridge", f"{service} rule", PASS,
                       f"{name} (enabled) delivers {len(expected)} event names to {ON_CHANGE_FUNCTION}"
                       + (f"; also names {', '.join(extra)}" if extra else ""))


# -- ActionTrail -----------------------------------------------------------------------------------------------
def check_actiontrail(report: DoctorReport, ports: DoctorPorts, now: float, lookback_days: int,
                      heartbeats_written: bool) -> None:
    from tlsguard.functions.events import event_names
    from tlsguard.heartbeat import HEARTBEAT_EVENT

    start = now - lookback_days * 86400
    for service, service_name in TRAIL_SERVICE_NAMES.items():
        names = event_names(service)
        if ports.trail is None:
            for name in names:
                report.add("actiontrail", name, UNKNOWN, f"not checked: {ports.missing}")
            continue
        try:
            events = ports.trail.lookup_events("ServiceName", service_name, start, now)
        except CloudError as exc:
            for name in names:
                report.add("actiontrail", name, UNKNOWN, f"LookupEvents failed: {_error(exc)}",
                           "grant actiontrail:LookupEvents (deploy/ram-policy-doctor.json)")
            continue
        seen: dict[str, list[str]] = {}
        for event in events:
            seen.setdefault(str(event.get("eventName") or ""), []).append(str(event.get("eventTime") or ""))
        for name in names:
            times = sorted(seen.get(name, []))
            if times:
                report.add("actiontrail", name, PASS, f"{len(times)} {service_name} events in the last "
                           f"{lookback_days} days (latest {times[-1]})")
            elif name == HEARTBEAT_EVENT and heartbeats_written and service == "oss":
                report.add("actiontrail", name, FAIL, f"tlsguard's heartbeat writes {name} every few minutes, yet "
                           f"ActionTrail shows no {service_name} event of that name: the name on_change listens for is "
                           "not the one ActionTrail records", "look up the state bucket's events (LookupEvents by "
                           "ResourceName) and correct the event names in the check registry")
            else:
                report.add("actiontrail", name, UNKNOWN, f"no {service_name} event of this name in the last "
                           f"{lookback_days} days: the name is not confirmed", "make such a change (or wait for one) "
                           "and run doctor again; if it never appears, on_change never fires for it")


# -- functions -------------------------------------------------------------------------------------------------
def _role_name(arn: str) -> str:
    return arn.rsplit("role/", 1)[-1] if "role/" in arn else arn


def check_functions(report: DoctorReport, ports: DoctorPorts, policy: Policy) -> None:
    for name, trigger_types in FUNCTION_SET.items():
        if ports.functions is None:
            report.add("functions", name, UNKNOWN, f"not checked: {ports.missing}")
            continue
        try:
            function = ports.functions.get_function(name)
            triggers = ports.functions.list_triggers(name) if function is not None else []
        except CloudError as exc:
            report.add("functions", name, UNKNOWN, f"cannot read it: {_error(exc)}",
                       "grant fc:GetFunction and fc:ListTriggers (deploy/ram-policy-doctor.json)")
            continue
        if function is None:
            report.add("functions", name, FAIL, "not deployed", "make package && s deploy -y")
            continue
        role = _role_name(str(function.get("role") or ""))
        settings = (f"{function.get('runtime')}, {function.get('memorySize')} MB, timeout {function.get('timeout')} s, "
                    f"role {role or 'none'}")
        listed = ", ".join(f"{t.get('triggerName')} ({t.get('triggerType')})" for t in triggers) or "no triggers"
        problems = []
        if function.get("runtime") not in RUNTIMES:
            problems.append(f"runtime {function.get('runtime')} is not one of {', '.join(RUNTIMES)}")
        if not role:
            problems.append("no role: the function has no credentials")
        elif role not in policy.guard.own_principals:
            problems.append(f"role {role} is not in guard.own_principals: its own writes (and heartbeats) would "
                            "be treated as someone else's")
        environment = function.get("environmentVariables") or {}
        if not isinstance(environment, dict) or not environment.get("TLSGUARD_POLICY"):
            problems.append("TLSGUARD_POLICY is not set")
        for kind in trigger_types:
            enabled = [t for t in triggers if t.get("triggerType") == kind and _trigger_enabled(t)]
            if not enabled:
                problems.append(f"no enabled {kind} trigger")
        if problems:
            report.add("functions", name, FAIL, f"{'; '.join(problems)} ({settings}; {listed})",
                       "fix s.yaml (or the console) and deploy again")
        else:
            report.add("functions", name, PASS, f"{settings}; {listed}")


def _trigger_enabled(trigger: dict[str, Any]) -> bool:
    config = trigger.get("triggerConfig")
    if not isinstance(config, dict):
        return True
    return bool(config.get("enable", config.get("triggerEnable", True)))


# -- heartbeat -------------------------------------------------------------------------------------------------
def check_heartbeat(report: DoctorReport, ports: DoctorPorts, policy: Policy, state: BucketRef | None,
                    now: float) -> bool:
    """The event-path lag; returns whether heartbeats are being written (for the ActionTrail check)."""
    from tlsguard import heartbeat
    from tlsguard.state import StateBucket

    if not policy.heartbeat.enabled:
        report.add("heartbeat", "event path", UNKNOWN, "heartbeat.enabled is false in the policy",
                   "enable it: without it a broken event path goes unnoticed")
        return False
    if state is None:
        report.add("heartbeat", "event path", UNKNOWN, "no state bucket to read heartbeats from")
        return False
    try:
        path = heartbeat.HeartbeatStore(StateBucket(ports.oss, state.name, policy.state_prefix)).read(
            now, policy.heartbeat.max_lag_seconds)
    except CloudError as exc:
        report.add("heartbeat", "event path", UNKNOWN, f"cannot read the heartbeat records: {_error(exc)}")
        return False
    written = path.last_sent_at is not None
    if path.status == heartbeat.OK:
        report.add("heartbeat", "event path", PASS, path.message())
    elif path.status == heartbeat.BROKEN:
        report.add("heartbeat", "event path", FAIL, path.message(), "see the eventbridge and actiontrail lines: the "
                   "rule, its event names, and guard.own_principals")
    elif path.status == heartbeat.WAITING:
        report.add("heartbeat", "event path", UNKNOWN, path.message(), "run doctor again in a few minutes")
    else:
        report.add("heartbeat", "event path", UNKNOWN, path.message(), "the sweep's timers write a heartbeat every "
                   "5 minutes: check that tlsguard-sweep is deployed and its timers are enabled")
    return written


# -- the run ---------------------------------------------------------------------------------------------------
def run(ports: DoctorPorts, policy: Policy, *, clock: Callable[[], float] = time.time,
        lookback_days: int = DEFAULT_LOOKBACK_DAYS) -> DoctorReport:
    """Every check, in order; each failure is a line, never an exception."""
    report = DoctorReport()
    now = clock()
    if ports.identity is None:
        report.add("credentials", "identity", FAIL, ports.missing,
                   "export ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET (and _SECURITY_TOKEN for STS keys)")
    else:
        try:
            identity = ports.identity.caller_identity()
            report.identity = identity
            note = ("; the root account is not subject to RAM, so the ram lines prove nothing about the role: run "
                    "doctor as tlsguard-fc-role to check it") if identity.get("IdentityType") == "Account" else ""
            report.add("credentials", "identity", PASS, f"{identity.get('Arn')} ({identity.get('IdentityType')}, "
                       f"account {identity.get('AccountId')}){note}")
        except CloudError as exc:
            report.add("credentials", "identity", FAIL, f"GetCallerIdentity failed: {_error(exc)}",
                       "check the AccessKey pair (and security token) the doctor runs with")
    state = check_state_bucket(report, ports, policy)
    check_ram(report, ports, policy, state)
    check_eventbridge(report, ports)
    written = check_heartbeat(report, ports, policy, state, now)
    check_actiontrail(report, ports, now, lookback_days, written)
    check_functions(report, ports, policy)
    # the heartbeat's line reads best last: move it there
    report.lines.sort(key=lambda line: line.group == "heartbeat")
    return report


class _Silent:
    """A notifier that is never used (the doctor delivers no digest)."""

    def send(self, alert: dict[str, Any]) -> None:
        del alert


class CachedIdentity:
    """The caller's identity, asked once (the FC endpoint needs the account id before the checks run)."""

    def __init__(self, port: IdentityPort) -> None:
        self.port = port
        self._answer: dict[str, str] | None = None
        self._error: CloudError | None = None

    def caller_identity(self) -> dict[str, str]:
        if self._answer is None and self._error is None:
            try:
                self._answer = self.port.caller_identity()
            except CloudError as exc:
                self._error = exc
        if self._error is not None:
            raise self._error
        assert self._answer is not None
        return self._answer


def build_ports(policy: Policy, localcloud: str | None = None, region: str | None = None) -> DoctorPorts:
    """The doctor's ports for the real cloud (ALIBABA_CLOUD_* credentials) or localcloud (its endpoints file)."""
    import dataclasses

    from tlsguard import settings, wiring
    from tlsguard.adapters.ops import AliyunBucketAcl, AliyunEventRules, AliyunFunctions, AliyunIdentity, AliyunTrail
    from tlsguard.adapters.oss import AliyunOss, connection_from_endpoint_data

    source = settings.resolve(localcloud, settings.LOCALCLOUD)
    endpoints = wiring.read_endpoints(source) if source else None
    connection = connection_from_endpoint_data(endpoints) if endpoints else wiring.oss_connection(None, region)
    # The doctor sends nothing: no alert channel is built (their secrets need not be in the operator's shell).
    built = wiring.build(policy, localcloud=endpoints, connection=connection, concurrency=4, notifier=_Silent())
    oss = built.ports.oss
    ports = DoctorPorts(oss=oss, cname=built.ports.cname, cdn=built.ports.cdn,
                        cas=cast("CasProbePort | None", built.ports.cas),
                        acl=AliyunBucketAcl(oss) if isinstance(oss, AliyunOss) else None)
    rpc = wiring.rpc_connection(endpoints, connection)
    if rpc is None:
        return ports

    def at(name: str) -> Any:
        return dataclasses.replace(rpc, domain=str(endpoints[name])) if endpoints and endpoints.get(name) else rpc

    identity = CachedIdentity(AliyunIdentity(at("sts")))
    ports.identity = identity
    ports.trail = AliyunTrail(at("actiontrail"))
    ports.rules = AliyunEventRules(at("eventbridge"))
    if endpoints and endpoints.get("fc"):
        fc_endpoint = str(endpoints["fc"])
    else:
        fc_endpoint = settings.env(settings.FC_ENDPOINT) or ""
        if not fc_endpoint:
            try:
                fc_endpoint = f"{identity.caller_identity().get('AccountId')}.{rpc.region}.fc.aliyuncs.com"
            except CloudError:
                ports.missing = "the account id is unknown (GetCallerIdentity failed)"
                return ports
    ports.functions = AliyunFunctions(rpc, fc_endpoint)
    return ports
