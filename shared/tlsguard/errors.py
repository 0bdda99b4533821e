"""tlsguard's error taxonomy: one root, and each type implies how the caller handles it.

``ConfigError`` fails fast (bad policy file); ``EventError`` is logged and dropped; ``CloudError`` carries the
service, operation, code and request id of a failed call, and ``retryable`` says whether retrying can help
(``InvalidRequest``: the SDK refused the call before sending it, so it never can);
``RemediationRefused`` / ``RemediationFailed`` explain why a bucket was left as it was.
Every message is redacted when it is read (``str()``): a cloud error's text can echo a credential.
"""

from __future__ import annotations

from tlsguard.log import mask_secrets


class TlsguardError(Exception):
    """Root of every error tlsguard raises on purpose."""

    def __str__(self) -> str:
        return mask_secrets(super().__str__())


class ConfigError(TlsguardError):
    """The policy file (or a setting) is invalid. ``str()`` names file, line and field when known."""

    def __init__(self, message: str, *, file: str = "", line: int | None = None, field: str = "") -> None:
        self.file = file
        self.line = line
        self.field = field
        self.reason = message
        location = file
        if line is not None:
            location = f"{location}:{line}" if location else f"line {line}"
        prefix = ": ".join(part for part in (location, field) if part)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class EventError(TlsguardError):
    """An incoming event cannot be understood; drop it without retrying."""


class EventTooLarge(EventError):
    """An incoming event or request body is over its size limit (the webhook answers 413)."""


class CloudError(TlsguardError):
    """A cloud API call failed."""

    retryable = False

    def __init__(self, message: str, *, service: str, operation: str, code: str = "", request_id: str = "",
                 status: int = 0, resource: str = "") -> None:
        self.service = service
        self.operation = operation
        self.code = code
        self.request_id = request_id
        self.status = status
        self.resource = resource
        super().__init__(message)

    def describe(self) -> str:
        """One line for reports: ``oss GetBucketPolicy AccessDenied (403, request 5F...): message``."""
        status = f"{self.status}, " if self.status else ""
        request = f"request {self.request_id}" if self.request_id else "no request id"
        code = self.code or type(self).__name__
        return f"{self.service} {self.operation} {code} ({status}{request}): {self}"


class Transient(CloudError):
    """Throttling, 5xx, timeouts and dropped connections: retrying may succeed."""

    retryable = True


class InvalidRequest(CloudError):
    """The SDK refused the call before sending it (an invalid bucket name, an IDNA or NUL character in a host or
    region, a parameter the SDK rejects): the same input fails the same way, so it is a failure with a reason,
    never retried."""


class PermissionDenied(CloudError):
    """403 AccessDenied and friends: report it, never retry."""


class NotFound(CloudError):
    """The resource (bucket, object) does not exist."""


class RemediationRefused(TlsguardError):
    """tlsguard decided not to write (dry-run, alert mode, contested bucket, own event, undo impossible)."""


class RemediationFailed(TlsguardError):
    """A write was attempted but the bucket did not end in the desired state (or the write failed)."""


class CertificateUnreadable(TlsguardError, ValueError):
    """A certificate (from a TLS server, an API or CAS) is not valid PEM/DER or is over tlsguard's size limits.

    Callers turn it into a finding for that one domain; it is a ValueError too, as cryptography's own is.
    """
