"""One policy file holds both the bucket posture and the certificates section, validated by one schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tlsguard.certs.policy import cert_policy_from_mapping
from tlsguard.errors import ConfigError
from tlsguard.policy.loader import load_policy

pytestmark = pytest.mark.unit
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "tlsguard.yaml"
SECTION = """
certificates:
  renew_before_days: 20
  alert_steps: [14, 7, 1]
  backup_certificates: {"www.example.com": 12345}
"""


def example_with(section: str) -> str:
    """The example policy with its own ``certificates:`` section replaced by ``section``."""
    lines = EXAMPLE.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("certificates:"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i][:1] not in (" ", "\n", "")), len(lines))
    return "".join(lines[:start] + lines[end:]) + section


def test_the_example_has_a_certificates_section() -> None:
    assert "certificates" in yaml.safe_load(EXAMPLE.read_text())


def test_certificates_section_loads_in_both_readers(tmp_path: Path) -> None:
    path = tmp_path / "tlsguard.yaml"
    path.write_text(example_with(SECTION))
    policy = load_policy(str(path))  # the core loader (schema + guardrails) accepts it
    cert_policy = cert_policy_from_mapping(yaml.safe_load(path.read_text())["certificates"], source=str(path))
    assert cert_policy.alert_steps == (14, 7, 1)
    assert cert_policy.backup_cert_ids == {"www.example.com": 12345}
    assert policy.certificates == cert_policy  # one reading of the section, whichever reader
    assert policy.state_bucket == "tlsguard-state"  # the rest of the example still loads


def test_misspelt_certificates_key_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "tlsguard.yaml"
    text = example_with("\ncertificates:\n  renew_befor_days: 20\n")
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_policy(str(path))
    message = str(info.value)
    assert str(path) in message and "renew_befor_days" in message and "certificates" in message
    assert info.value.line is not None
    assert text.splitlines()[info.value.line - 1].lstrip().startswith(("certificates", "renew_befor_days"))
