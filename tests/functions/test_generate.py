"""``deploy/generate.py``: the RAM policy, s.yaml's EventBridge patterns, ``docs/checks.md`` and the policy schemas'
check ids are generated from the check registry; ``--check`` passes on the committed tree and names every stale
file. The stale cases run on a temporary copy of the tree: the checkout itself is never modified."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tlsguard.functions.events import CDN_EVENT_TYPES, CDN_SOURCE, OSS_EVENT_TYPES, OSS_SOURCE, event_names
from tlsguard.functions.permissions import needed_operations, policy_document

ROOT = Path(__file__).resolve().parents[2]
#: What generate.py reads and writes, relative to the repository root.
INPUTS = ("deploy/generate.py", "s.yaml", "docs/checks.md", "deploy/ram-policy.json", "deploy/ram-policy-doctor.json",
          "schemas/policy.schema.json")


def run_generate(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TLSGUARD_LOCALCLOUD")}
    return subprocess.run([sys.executable, str(root / "deploy" / "generate.py"), *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of what generate.py needs: the library it imports from ``shared/`` and the files it generates."""
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "shared", root / "shared", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in INPUTS:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, root / name)
    return root


def test_the_committed_tree_is_current() -> None:
    done = run_generate(ROOT, "--check")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_the_committed_ram_policy_is_the_registry_s() -> None:
    assert json.loads((ROOT / "deploy" / "ram-policy.json").read_text()) == policy_document(needed_operations())


def test_the_s_yaml_patterns_name_exactly_the_registry_s_events() -> None:
    document = yaml.safe_load((ROOT / "s.yaml").read_text())
    triggers = {t["triggerName"]: json.loads(t["triggerConfig"]["eventRuleFilterPattern"])
                for t in document["resources"]["on_change"]["props"]["triggers"]}
    assert triggers == {
        "oss-tls-drift": {"source": [OSS_SOURCE], "type": list(OSS_EVENT_TYPES),
                          "data": {"eventName": list(event_names("oss"))}},
        "cdn-https-drift": {"source": [CDN_SOURCE], "type": list(CDN_EVENT_TYPES),
                            "data": {"eventName": list(event_names("cdn"))}}}


def _drop_put_cname_from_the_oss_pattern(text: str) -> str:
    assert text.count(',"PutCname"]') == 1
    return text.replace(',"PutCname"]', "]")


def _edit_checks_doc(text: str) -> str:
    return text.replace("| `oss.tls_versions`", "| `oss.tls_version`", 1)


def _drop_put_cname_grant(text: str) -> str:
    document = json.loads(text)
    for statement in document["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a != "oss:PutCname"]
    return json.dumps(document, indent=2) + "\n"


def _drop_a_check_id(text: str) -> str:
    document = json.loads(text)
    document["$defs"]["check"]["enum"].remove("cdn.https_enabled")
    return json.dumps(document, indent=2) + "\n"


@pytest.mark.parametrize(("name", "edit"), [
    ("s.yaml", _drop_put_cname_from_the_oss_pattern),
    ("docs/checks.md", _edit_checks_doc),
    ("deploy/ram-policy.json", _drop_put_cname_grant),
    ("schemas/policy.schema.json", _drop_a_check_id),
])
def test_check_fails_naming_the_stale_file_and_generate_repairs_it(tree: Path, name: str, edit: object) -> None:
    assert run_generate(tree, "--check").returncode == 0  # the copy starts current
    path = tree / name
    original = path.read_text()
    assert callable(edit)
    path.write_text(edit(original))
    done = run_generate(tree, "--check")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"{name} is stale: run python deploy/generate.py"]
    assert path.read_text() != original  # --check never writes
    repaired = run_generate(tree)
    assert repaired.returncode == 0 and name in repaired.stdout
    assert path.read_text() == original
    assert run_generate(tree, "--check").returncode == 0


def test_check_names_every_stale_file(tree: Path) -> None:
    for name, edit in (("s.yaml", _drop_put_cname_from_the_oss_pattern), ("docs/checks.md", _edit_checks_doc),
                       ("deploy/ram-policy.json", _drop_put_cname_grant)):
        (tree / name).write_text(edit((tree / name).read_text()))
    done = run_generate(tree, "--check")
    assert done.returncode == 1
    assert sorted(done.stderr.strip().splitlines()) == sorted(
        f"{name} is stale: run python deploy/generate.py" for name in ("s.yaml", "docs/checks.md",
                                                                       "deploy/ram-policy.json"))

