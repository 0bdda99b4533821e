"""Credentials are one clear line (issue 14): the CLI resolves them once, before any call, from the configured
sources only; with none it prints one line naming what it tried and how to configure one, exits 1, prints no SDK
traceback and asks no metadata service (100.100.100.200) for anything.

The CLI runs in a real subprocess with an empty environment (HOME an empty directory, no ALIBABA_CLOUD_* variable)
and a socket guard that refuses, and records, every connection or name lookup beyond loopback.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tlsguard.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
#: Installs the guard, then runs the CLI with the remaining arguments (argv[1] is the file attempts go to).
GUARD = textwrap.dedent('''
    import socket, sys
    record = open(sys.argv[1], "a", buffering=1)
    LOOPBACK = ("127.", "::1", "localhost")
    real_connect, real_lookup = socket.socket.connect, socket.getaddrinfo
    def connect(self, address):
        host = str(address[0]) if isinstance(address, tuple) else str(address)
        if not host.startswith(LOOPBACK) and not host.startswith("/"):
            record.write(f"connect {address}\\n")
            raise OSError("network beyond loopback refused by the test")
        return real_connect(self, address)
    def lookup(host, *args, **kwargs):
        if host is not None and not str(host).startswith(LOOPBACK):
            record.write(f"resolve {host}\\n")
            raise socket.gaierror("name resolution refused by the test")
        return real_lookup(host, *args, **kwargs)
    socket.socket.connect, socket.getaddrinfo = connect, lookup
    from tlsguard.cli import main
    main(sys.argv[2:])
''')
POLICY = "version: 1\nmode: enforce\ndefaults:\n  tls_versions: [TLSv1.2, TLSv1.3]\nstate: {bucket: tlsguard-state}\n"


def run_cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str],
                                                                                      str]:
    """``tlsguard ARGS`` in a clean environment; (the process, the network attempts it made)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    guard, attempts = tmp_path / "guard.py", tmp_path / "network.log"
    guard.write_text(GUARD)
    attempts.touch()
    clean = {"HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT / 'shared'}:{ROOT}", **(env or {})}
    process = subprocess.run([sys.executable, str(guard), str(attempts), *args], capture_output=True, text=True,
                             env=clean, cwd=tmp_path, timeout=120)  # a hang guard, not a speed assertion
    return process, attempts.read_text()


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_without_credentials_the_cli_prints_one_line_and_asks_no_metadata_service(tmp_path: Path,
                                                                                   command: str) -> None:
    policy = tmp_path / "tlsguard.yaml"
    policy.write_text(POLICY)
    process, attempts = run_cli(tmp_path, command, "--policy", str(policy))
    assert process.returncode == 1
    assert process.stdout == ""
    lines = process.stderr.splitlines()
    assert len(lines) == 1, process.stderr[:2000]
    [line] = lines
    assert line.startswith("tlsguard: error: no Alibaba Cloud credentials found; tried: ")
    for source in ("TLSGUARD_LOCALCLOUD", "ALIBABA_CLOUD_ACCESS_KEY_ID", "credentials file", "STS role",
                   "ALIBABA_CLOUD_ECS_METADATA", "Function Compute"):
        assert source in line
    assert "aliyun configure" in line and "--localcloud" in line
    assert attempts == ""  # not 100.100.100.200, not anything beyond loopback


def test_a_broken_credentials_file_is_one_line_naming_the_file(tmp_path: Path) -> None:
    policy = tmp_path / "tlsguard.yaml"
    policy.write_text(POLICY)
    broken = tmp_path / "credentials.ini"
    broken.write_text("[someone-else]\ntype = access_key\naccess_key_id = x\naccess_key_secret = y\n")
    process, attempts = run_cli(tmp_path, "plan", "--policy", str(policy),
                                env={"ALIBABA_CLOUD_CREDENTIALS_FILE": str(broken)})
    assert process.returncode == 1 and process.stdout == ""
    [line] = process.stderr.splitlines()
    assert line.startswith(f"tlsguard: error: Alibaba Cloud credentials from the credentials file {broken} could "
                           "not be loaded")
    assert "Traceback" not in process.stderr and attempts == ""


def test_a_named_instance_role_that_cannot_answer_is_still_one_line(tmp_path: Path) -> None:
    """Asked for on purpose (ALIBABA_CLOUD_ECS_METADATA), the metadata service is tried (the guard refuses it, as
    a machine outside ECS would fail): the SDK's retries and tracebacks stay in the debug log."""
    policy = tmp_path / "tlsguard.yaml"
    policy.write_text(POLICY)
    process, attempts = run_cli(tmp_path, "plan", "--policy", str(policy),
                                env={"ALIBABA_CLOUD_ECS_METADATA": "tlsguard-instance-role"})
    assert process.returncode == 1 and process.stdout == ""
    [line] = process.stderr.splitlines()
    assert line.startswith("tlsguard: error: Alibaba Cloud credentials from the ECS instance role "
                           "tlsguard-instance-role could not be loaded: ")
    assert "100.100.100.200" in attempts  # it was asked, because it was named


@pytest.mark.unit
def test_half_a_key_pair_in_the_environment_names_the_missing_variable(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    from tlsguard.credentials import resolve

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_ID", raising=False)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "half-a-pair-secret")
    with pytest.raises(ConfigError) as refused:
        resolve()
    assert str(refused.value) == ("incomplete Alibaba Cloud credentials in the environment: "
                                  "ALIBABA_CLOUD_ACCESS_KEY_ID is not set")


@pytest.mark.unit
def test_the_credentials_file_is_read_and_its_secret_registered(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    from tlsguard.credentials import resolve
    from tlsguard.log import mask_secrets

    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_ECS_METADATA",
                 "ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_CREDENTIALS_URI", "ALIBABA_CLOUD_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aliyun/config.json there
    (tmp_path / ".alibabacloud").mkdir()
    (tmp_path / ".alibabacloud" / "credentials.ini").write_text(
        "[default]\ntype = access_key\naccess_key_id = LTAIfromthefile\naccess_key_secret = file-secret-0123456789\n")
    found = resolve()
    assert found.source == f"the credentials file {tmp_path / '.alibabacloud' / 'credentials.ini'}"
    assert (found.access_key_id, found.access_key_secret) == ("LTAIfromthefile", "file-secret-0123456789")
    assert "file-secret-0123456789" not in repr(found)
    assert mask_secrets("key file-secret-0123456789") == "key ***"


@pytest.mark.unit
def test_the_instance_role_is_a_source_only_when_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tlsguard.credentials import _configured_sources

    for name in ("ALIBABA_CLOUD_ECS_METADATA", "ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_CREDENTIALS_URI",
                 "ALIBABA_CLOUD_CREDENTIALS_FILE", "ALIBABA_CLOUD_ECS_METADATA_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _configured_sources() == []  # nothing configured: nothing will be asked
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA", "tlsguard-instance-role")
    assert [name for name, _ in _configured_sources()] == ["the ECS instance role tlsguard-instance-role"]
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
    assert _configured_sources() == []
