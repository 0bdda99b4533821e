"""Every environment variable tlsguard reads, in one place (explicit argument > environment > default)."""

from __future__ import annotations

import os

#: Path of an endpoints JSON file written by localcloud; when set, every client targets localcloud.
LOCALCLOUD = "TLSGUARD_LOCALCLOUD"
#: Path of the policy file when ``--policy`` is not given.
POLICY = "TLSGUARD_POLICY"
#: Overrides the policy's mode (enforce | alert | dry-run).
MODE = "TLSGUARD_MODE"
#: Worker threads for a sweep.
CONCURRENCY = "TLSGUARD_CONCURRENCY"
#: Log level for the JSON logger (DEBUG, INFO, WARNING, ERROR).
LOG_LEVEL = "TLSGUARD_LOG_LEVEL"
#: Default environment variable holding the webhook signing secret (a policy may name another one).
WEBHOOK_SECRET = "TLSGUARD_WEBHOOK_SECRET"
#: Webhook URL when the policy does not set one.
WEBHOOK_URL = "TLSGUARD_WEBHOOK_URL"
#: Default region for real endpoints when the policy names none.
REGION = "TLSGUARD_REGION"

#: Function set (functions/): above this many buckets the sweep fans out batches to the check function.
FANOUT_THRESHOLD = "TLSGUARD_FANOUT_THRESHOLD"
#: Function set: buckets per fanned-out batch.
BATCH_SIZE = "TLSGUARD_BATCH_SIZE"
#: Function set: name of the worker function the sweep invokes asynchronously (FC 3.0 InvokeFunction).
CHECK_FUNCTION = "TLSGUARD_CHECK_FUNCTION"
#: Function set: FC endpoint override for fan-out (default ``<account>.<region>.fc.aliyuncs.com``).
FC_ENDPOINT = "TLSGUARD_FC_ENDPOINT"
#: Function set: HMAC-SHA256 secret the webhook function checks inbound requests with.
INBOUND_SECRET = "TLSGUARD_INBOUND_SECRET"
#: Function set: how old (seconds) a signed webhook request may be before it counts as a replay.
REPLAY_WINDOW = "TLSGUARD_REPLAY_WINDOW_SECONDS"
#: How long (seconds) an event's lease lasts: a retry of an event whose claimant died takes it over after this.
EVENT_LEASE_SECONDS = "TLSGUARD_EVENT_LEASE_SECONDS"
#: How old (seconds) a journal intent without an outcome must be before a run reconciles it (a younger one may
#: belong to a live process still writing).
RECONCILE_AFTER_SECONDS = "TLSGUARD_RECONCILE_AFTER_SECONDS"

#: Standard Alibaba Cloud credential variables (FC injects these for the function's role).
ALIBABA_ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ALIBABA_ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ALIBABA_SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"

ALL = (LOCALCLOUD, POLICY, MODE, CONCURRENCY, LOG_LEVEL, WEBHOOK_SECRET, WEBHOOK_URL, REGION,
       FANOUT_THRESHOLD, BATCH_SIZE, CHECK_FUNCTION, FC_ENDPOINT, INBOUND_SECRET, REPLAY_WINDOW, EVENT_LEASE_SECONDS,
       RECONCILE_AFTER_SECONDS,
       ALIBABA_ACCESS_KEY_ID, ALIBABA_ACCESS_KEY_SECRET, ALIBABA_SECURITY_TOKEN)

DEFAULT_CONCURRENCY = 16
DEFAULT_REGION = "cn-hangzhou"


def env(name: str, default: str | None = None) -> str | None:
    """Read one of the variables above; empty strings count as unset."""
    value = os.environ.get(name)
    return value if value else default


def resolve(explicit: str | None, name: str, default: str | None = None) -> str | None:
    """Explicit value first, then the environment variable, then the default."""
    return explicit if explicit else env(name, default)


def number(name: str, default: float, *, minimum: float, maximum: float) -> float:
    """A numeric variable within [minimum, maximum]; ConfigError naming the variable when it is not."""
    from tlsguard.errors import ConfigError

    raw = env(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be between {minimum:g} and {maximum:g}")
    return value


def integer(name: str, default: int, *, minimum: int = 1, maximum: int = 1_000_000) -> int:
    """A whole-number variable within [minimum, maximum]."""
    from tlsguard.errors import ConfigError

    value = number(name, default, minimum=minimum, maximum=maximum)
    if value != int(value):
        raise ConfigError(f"{name}={env(name)!r} is not an integer")
    return int(value)
