"""Generate from the check registry what must never drift from it: the RAM policy, s.yaml's EventBridge patterns,
the reference table ``docs/checks.md`` and the policy schema's list of check ids.

    python deploy/generate.py           # rewrite them
    python deploy/generate.py --check   # exit 1 (naming each) when one is stale

Adding a check touches its module and its tests; this script carries the change everywhere else.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "shared")]

from tlsguard.checks import PLAN_NEEDS, REGISTRY  # noqa: E402
from tlsguard.facets import FACETS  # noqa: E402
from tlsguard.functions.events import CDN_EVENT_TYPES, CDN_SOURCE, OSS_EVENT_TYPES, OSS_SOURCE, event_names  # noqa: E402
from tlsguard.functions.permissions import OPERATIONS, needed_operations, policy_document  # noqa: E402

RAM_POLICY = ROOT / "deploy" / "ram-policy.json"
SYAML = ROOT / "s.yaml"
CHECKS_DOC = ROOT / "docs" / "checks.md"
SCHEMAS = (ROOT / "shared" / "tlsguard" / "policy" / "policy.schema.json", ROOT / "schemas" / "policy.schema.json")
#: s.yaml's EventBridge triggers and the service whose events each subscribes to.
TRIGGERS = {"oss-tls-drift": ("oss", OSS_SOURCE, OSS_EVENT_TYPES), "cdn-https-drift": ("cdn", CDN_SOURCE,
                                                                                      CDN_EVENT_TYPES)}


def ram_policy_text() -> str:
    needed = needed_operations()
    unknown = sorted(op for op in needed if op not in OPERATIONS)
    if unknown:
        raise SystemExit(f"operations without a RAM action in tlsguard.functions.permissions: {unknown}")
    return json.dumps(policy_document(needed), indent=2) + "\n"


def event_pattern(service: str, source: str, types: tuple[str, ...]) -> str:
    return json.dumps({"source": [source], "type": list(types), "data": {"eventName": list(event_names(service))}},
                      separators=(",", ":"))


def syaml_text() -> str:
    text = SYAML.read_text()
    for trigger, (service, source, types) in TRIGGERS.items():
        pattern = re.compile(rf"(- triggerName: {re.escape(trigger)}\n(?:.*\n)*?\s*eventRuleFilterPattern: )'[^']*'")
        replacement = "'" + event_pattern(service, source, types) + "'"
        text, count = pattern.subn(lambda m, new=replacement: m.group(1) + new, text, count=1)
        if count != 1:
            raise SystemExit(f"s.yaml has no eventRuleFilterPattern under trigger {trigger}")
    return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def checks_doc_text() -> str:
    lines = [
        "# Checks",
        "",
        "Generated from the registry (`shared/tlsguard/checks/`) by `python deploy/generate.py`; a test fails when",
        "this file is stale. Every check judges one kind of target (or several) from the facets it reads; a check",
        "with a fix writes one facet (checks that share a facet share one write). Waive a check by its id",
        "(`waivers[].checks`); earlier ids are still accepted where listed.",
        "",
        "| Check | Targets | What it checks | Severity | Reads (RAM) | Fix writes (RAM) "
        "| Events that re-check it | Live proof |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for check in REGISTRY.checks.values():
        kinds = sorted(check.kinds, key=lambda k: k.value)
        reads = sorted({OPERATIONS[op].action for kind in kinds for op in check.read_operations(kind)})
        writes = sorted({OPERATIONS[op].action for kind in kinds for op in check.write_operations(kind)})
        title = check.title + (f". {check.doc}" if check.doc else "")
        aliases = f" (was {', '.join(check.aliases)})" if check.aliases else ""
        lines.append(f"| `{check.id}`{aliases} | {', '.join(k.value for k in kinds)} | {_cell(title)} | "
                     f"{_cell(check.severity)} | {', '.join(reads) or '-'} | {', '.join(writes) or 'alert only'} | "
                     f"{', '.join(check.events) or '-'} | {check.live or '-'} |")
    lines += ["", "## Facets", "", "| Facet | Targets | What it is | Read with | Written with |",
              "|---|---|---|---|---|"]
    for facet in FACETS.values():
        reads = ", ".join(op for _, op in facet.reads) or ("a handshake" if facet.live else "-")
        lines.append(f"| `{facet.name}` | {', '.join(sorted(k.value for k in facet.kinds))} | "
                     f"{_cell(facet.description)} | {reads} | {', '.join(op for _, op in facet.writes) or '-'} |")
    needs = "; ".join(f"`{facet}` reads {', '.join(f'`{n}`' for n in names)} only when a fix is planned"
                      for facet, names in PLAN_NEEDS.items())
    lines += ["", f"Planning: {needs}.", ""]
    return "\n".join(lines)


def schema_text(path: Path) -> str:
    schema = json.loads(path.read_text())
    schema["$defs"]["check"]["enum"] = REGISTRY.known_ids()
    return json.dumps(schema, indent=2) + "\n"


def outputs() -> dict[Path, str]:
    return {RAM_POLICY: ram_policy_text(), SYAML: syaml_text(), CHECKS_DOC: checks_doc_text(),
            **{path: schema_text(path) for path in SCHEMAS}}


def main(argv: list[str]) -> int:
    stale = [path for path, text in outputs().items() if not path.exists() or path.read_text() != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run python deploy/generate.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs().items():
        path.write_text(text)
    print(f"regenerated {', '.join(str(p.relative_to(ROOT)) for p in stale) or 'nothing (all current)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
