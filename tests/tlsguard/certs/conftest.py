"""Fixtures for the certificate tests: a tiny PKI built with ``cryptography`` (the helpers are in ``_support``)."""

from __future__ import annotations

import pytest

from tests.tlsguard.certs._support import Hierarchy, Pki, make_hierarchy


@pytest.fixture(scope="session")
def pki() -> Pki:
    return Pki()


@pytest.fixture(scope="session")
def hierarchy(pki: Pki) -> Hierarchy:
    return make_hierarchy(pki)
