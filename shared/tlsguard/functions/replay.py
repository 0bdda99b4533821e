"""Replay protection for the inbound webhook: each signed request is accepted once.

The signature scheme (``X-Tlsguard-Timestamp``, ``X-Tlsguard-Signature`` over ``timestamp + "." + body``) has no
nonce: the signature itself identifies a request, and the timestamp check already refuses it once it is older than
the replay window. Inside the window the first instance to see it records it, and every later copy is refused:

* with a state bucket, ``webhook/seen/<sha256(signature)>.json`` is created with ``x-oss-forbid-overwrite: true``
  (OSS answers 409 FileAlreadyExists when the key exists, https://help.aliyun.com/en/oss/user-guide/0026-00000002),
  so of two instances receiving the same request at once exactly one creates it. The records are tiny and never
  read back; an OSS lifecycle rule on the prefix (expire after a day) keeps the bucket tidy;
* without one, an in-process memory of the window (per instance: a replay to another warm instance is not seen,
  and a log line says so on every request).
"""

from __future__ import annotations

import hashlib
import threading
from enum import Enum
from typing import TYPE_CHECKING

from tlsguard.log import get_logger

if TYPE_CHECKING:
    from tlsguard.state.store import StateBucket

log = get_logger("tlsguard.functions")

#: Requests remembered per instance without a state bucket; a full memory refuses new requests rather than
#: forget one that could then be replayed.
MAX_REMEMBERED = 10_000


class Seen(str, Enum):
    FIRST = "first"  # accept it
    REPLAY = "replay"  # already accepted within the window
    FULL = "full"  # the per-instance memory is full of live entries


_memory: dict[str, float] = {}
_memory_lock = threading.Lock()


def request_key(canonical_signature: str) -> str:
    """The name a request is remembered by: a digest of its (already verified) signature."""
    return hashlib.sha256(canonical_signature.encode()).hexdigest()


def remember(key: str, *, timestamp: float, now: float, window_seconds: float,
             bucket: StateBucket | None) -> Seen:
    """Record request ``key`` signed at ``timestamp``: FIRST when nobody had, REPLAY when somebody had.

    CloudError from the state bucket propagates (the caller answers 503: unchecked is never accepted).
    """
    if bucket is not None:
        created = bucket.create_json(bucket.key("webhook", "seen", f"{key}.json"),
                                     {"timestamp": timestamp, "seen_at": now,
                                      "expires_at": timestamp + window_seconds})
        return Seen.FIRST if created else Seen.REPLAY
    log.warning("webhook replay protection is per-instance: no state bucket, so a replay sent to another "
                "instance is not detected")
    with _memory_lock:
        if len(_memory) >= MAX_REMEMBERED:
            for stale in [k for k, expires in _memory.items() if expires < now]:
                del _memory[stale]
        if key in _memory and _memory[key] >= now:
            return Seen.REPLAY
        if len(_memory) >= MAX_REMEMBERED:
            return Seen.FULL
        # The timestamp is within the window of now on either side, so the copy stays refusable until it is stale.
        _memory[key] = max(timestamp, now) + window_seconds
        return Seen.FIRST
