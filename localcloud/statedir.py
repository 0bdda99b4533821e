"""The temporary folder a LocalCloud makes for itself (CA bundle, TLS private keys, SMTP credentials).

A folder localcloud created is removed when the cloud stops and, should ``stop`` never run, at interpreter exit:
it holds private keys and must not pile up in the system temp directory. A folder the caller passed
(``LocalCloud(state_dir=...)``, e.g. pytest's ``tmp_path``) belongs to the caller and is left alone.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path


class StateDir:
    """A state folder, and whether localcloud owns (and so removes) it."""

    def __init__(self, given: str | None = None, prefix: str = "localcloud-") -> None:
        self.owned = given is None
        self.path = Path(tempfile.mkdtemp(prefix=prefix)) if given is None else Path(given)
        if self.owned:
            # Registered once; removing twice is harmless, so stop() does not unregister it.
            atexit.register(self.remove)

    def remove(self) -> None:
        """Delete the folder and everything in it when localcloud made it; no-op for a caller's folder."""
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)
