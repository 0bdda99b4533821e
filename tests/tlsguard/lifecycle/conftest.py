"""Fixtures shared by the lifecycle tests: a webhook sink that checks tlsguard's digest signatures."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.tlsguard.lifecycle._fixtures import ALERT_SECRET, ALERT_SECRET_ENV, AlertSink

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[AlertSink]:
    monkeypatch.setenv(ALERT_SECRET_ENV, ALERT_SECRET)
    receiver = AlertSink()
    yield receiver
    receiver.close()
