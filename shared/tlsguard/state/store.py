"""The state bucket's primitives: create-if-absent, read, list (optionally after a key), delete.

OSS documents create-if-absent (``x-oss-forbid-overwrite: true``: 409 FileAlreadyExists when the key exists,
https://help.aliyun.com/en/oss/user-guide/0026-00000002) but no conditional overwrite, so every record that
changes is written as a new object (a generation, or an outcome beside its intent) and never overwritten.
Markers that only say "something is open" are deleted when it closes (DeleteObject).
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

from tlsguard.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tlsguard.ports import OssPort

#: Largest state object read back (a journal entry holds at most a few whole documents).
MAX_STATE_OBJECT_BYTES = 4 * 1024 * 1024


class StateBucket:
    """Objects under ``prefix`` in one bucket, through the same :class:`OssPort` the checks use."""

    def __init__(self, oss: OssPort, bucket: str, prefix: str = "tlsguard/") -> None:
        if not bucket:
            raise ConfigError("a state bucket is required (policy: state.bucket)")
        self.oss = oss
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"

    def key(self, *parts: str) -> str:
        return self.prefix + "/".join(parts)

    def create(self, key: str, body: bytes) -> bool:
        """Create ``key`` only if absent; True when the object now holds exactly ``body`` written by this call.

        The adapter retries a PutObject whose response was lost; the retry then meets the object its first attempt
        created (409). Reading it back tells "our own earlier attempt" (same bytes: every body written through
        :meth:`create_json` carries a nonce) from "someone else's object".
        """
        if self.oss.put_object_if_absent(self.bucket, key, body):
            return True
        return self.oss.get_object(self.bucket, key) == body

    def create_json(self, key: str, document: dict[str, Any]) -> bool:
        """:meth:`create` of a JSON document made unique by a nonce (so a lost-response retry knows its own)."""
        body = json.dumps({**document, "nonce": secrets.token_hex(8)}, sort_keys=True, default=str).encode()
        return self.create(key, body)

    def read_json(self, key: str) -> dict[str, Any] | None:
        """The JSON object at ``key``; None when absent; a damaged object reads as ``{"damaged": reason}``."""
        body = self.oss.get_object(self.bucket, key)
        if body is None:
            return None
        if len(body) > MAX_STATE_OBJECT_BYTES:
            return {"damaged": f"{len(body)} bytes, over the {MAX_STATE_OBJECT_BYTES}-byte limit"}
        try:
            document = json.loads(body)
        except ValueError as exc:
            return {"damaged": f"not JSON: {exc}"}
        return document if isinstance(document, dict) else {"damaged": "not a JSON object"}

    def keys(self, prefix: str, start_after: str = "") -> Iterator[str]:
        """Every key under ``prefix`` (a full key prefix, see :meth:`key`), in key order, after ``start_after``."""
        return self.oss.list_objects(self.bucket, prefix, start_after)

    def delete(self, key: str) -> None:
        self.oss.delete_object(self.bucket, key)
