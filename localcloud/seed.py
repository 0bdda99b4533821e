"""Seed documents: the YAML that describes a fleet (format in ``localcloud/seeds/README.md``).

Sections are applied in dependency order: accounts (keys, roles), certificates (minted by the factory and
held in CAS), buckets, CDN domains, functions, event rules, ``generate`` for large synthetic fleets, then the
alert sinks: ``chat_robots`` and ``smtp_users``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from localcloud.cloud import LocalCloud

SECTIONS = ("region", "propagation_seconds", "accounts", "certificates", "buckets", "cdn_domains", "functions",
            "event_rules", "generate", "chat_robots", "smtp_users", "description")


class SeedError(ValueError):
    """A seed document that cannot be applied; the message names the section and item."""


def load_seed_file(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SeedError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise SeedError(f"{path}: a seed is a mapping with sections {', '.join(SECTIONS)}")
    return document


def apply_seed(cloud: LocalCloud, document: dict[str, Any]) -> None:
    unknown = set(document) - set(SECTIONS)
    if unknown:
        raise SeedError(f"unknown seed sections: {', '.join(sorted(unknown))}; expected {', '.join(SECTIONS)}")
    if "region" in document:
        cloud.region = str(document["region"])
    if "propagation_seconds" in document:
        cloud.tls.propagation_seconds = float(document["propagation_seconds"])
    for account in document.get("accounts") or []:
        _seed_account(cloud, account)
    if not cloud.default_account_id:
        raise SeedError("a seed needs at least one account with an access key (accounts: [...])")
    cloud.cas.seed(document.get("certificates") or [])
    cloud.oss.seed(document.get("buckets") or [])
    cloud.cdn.seed(document.get("cdn_domains") or [])
    cloud.fc.seed(document.get("functions") or [])
    cloud.events.seed(document.get("event_rules") or [])
    if document.get("generate"):
        from localcloud.generate import generate_fleet

        generate_fleet(cloud, document["generate"])
    _seed_list(cloud.chat.seed, document, "chat_robots")
    _seed_list(cloud.smtp.seed, document, "smtp_users")


def _seed_list(seed: Callable[[list[Any]], None], document: dict[str, Any], section: str) -> None:
    """Apply a list section whose backend raises ``ValueError`` naming the item (``chat_robots[0]: ...``)."""
    items = document.get(section) or []
    if not isinstance(items, list):
        raise SeedError(f"{section}: expected a list, got {type(items).__name__}")
    try:
        seed(items)
    except ValueError as exc:
        raise SeedError(str(exc)) from None


def _seed_account(cloud: LocalCloud, spec: dict[str, Any]) -> None:
    try:
        account_id = str(spec["id"])
    except (KeyError, TypeError):
        raise SeedError(f"accounts: every account needs an id: {spec!r}") from None
    cloud.iam.add_account(account_id, str(spec.get("name", "")))
    keys = spec.get("access_keys") or []
    for key in keys:
        try:
            principal = cloud.iam.add_access_key(account_id, str(key["id"]), str(key["secret"]), key.get("user"))
        except KeyError as exc:
            raise SeedError(f"accounts[{account_id}].access_keys: missing {exc}") from None
        if key.get("user") is None and (spec.get("default") or not cloud.default_account_id):
            cloud.default_account_id = account_id
            cloud.default_access_key = (principal.access_key_id, principal.access_key_secret)
    for role in spec.get("roles") or []:
        cloud.iam.add_role(account_id, str(role))
