"""localcloud leaves nothing in the system temp directory: its CA bundle and TLS private keys go when it stops,
and at interpreter exit when ``stop`` is never called."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from localcloud.cloud import LocalCloud
from localcloud.pytest_plugin import BASE_SEED

ROOT = Path(__file__).resolve().parents[2]


def _handshake(cloud: LocalCloud, host: str) -> None:
    """One real TLS handshake, so the TLS plane writes the endpoint's key and chain into the state folder."""
    context = ssl.create_default_context(cafile=cloud.endpoints["ca_bundle"])
    with socket.create_connection(("127.0.0.1", cloud.endpoints["tls_port"]), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host):
        pass


def test_stop_removes_the_folder_it_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system_temp = tmp_path / "tmp"
    system_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    cloud = LocalCloud(propagation_seconds=0.0)
    cloud.seed({**BASE_SEED, "buckets": [{"name": "keys-on-disk"}]})
    cloud.start()
    try:
        _handshake(cloud, "keys-on-disk.oss-cn-hangzhou.aliyuncs.com")
        written = [p for p in cloud.state_dir.rglob("*") if p.is_file()]
        assert cloud.state_dir.parent == system_temp and cloud.state_dir.name.startswith("localcloud-")
        assert any(p.name == "ca-bundle.pem" for p in written)
        assert any("key" in p.name for p in written)  # a private key is on disk while localcloud runs
    finally:
        cloud.stop()
    assert list(system_temp.iterdir()) == []


def test_a_folder_the_caller_gave_is_left_to_the_caller(tmp_path: Path) -> None:
    given = tmp_path / "state"
    cloud = LocalCloud(propagation_seconds=0.0, state_dir=str(given))
    cloud.seed(BASE_SEED)
    cloud.start(tls=False)
    cloud.stop()
    assert (given / "ca-bundle.pem").is_file()


def test_interpreter_exit_removes_it_when_stop_is_never_called(tmp_path: Path) -> None:
    script = ("import json, sys\n"
              "from localcloud.cloud import LocalCloud\n"
              "from localcloud.pytest_plugin import BASE_SEED\n"
              "cloud = LocalCloud(propagation_seconds=0.0)\n"
              "cloud.seed(BASE_SEED)\n"
              "cloud.start()\n"
              "print(json.dumps({'state_dir': str(cloud.state_dir), 'bundle': cloud.endpoints['ca_bundle']}))\n")
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "shared")])}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    reported = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(reported["state_dir"]).parent == tmp_path and Path(reported["bundle"]).is_relative_to(tmp_path)
    assert list(tmp_path.iterdir()) == []
