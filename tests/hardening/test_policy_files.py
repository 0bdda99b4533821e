"""Hostile policy files (issue 14): a seeded fuzz corpus, and the memory a bomb or a big file may take.

The corpus is generated here from ``examples/tlsguard.yaml`` with a fixed seed: random byte flips, truncations,
dropped and repeated lines, values of the wrong type, deep nesting, alias bombs, huge and non-finite numbers in every
numeric field, invalid globs in every field that takes one, UTF-16 / UTF-32 / Latin-1 / Shift-JIS / random bytes,
huge scalars and many rules. Every case must load or end in one :class:`ConfigError`: one line, naming the file (and
the field and line when the case says which), never another exception. Cases that must be refused say so.

Memory is asserted (tracemalloc in this process, or peak RSS of a child process for a load whose C parts matter);
time is not: a child load only has a generous timeout as a guard against a hang.

Reproduce: ``.venv/bin/python -m pytest -q tests/hardening/test_policy_files.py``; the figures per hostile file,
before and after, come from ``.venv/bin/python bench/bench_policy_files.py``.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
import re
import subprocess
import sys
import textwrap
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from tlsguard.errors import ConfigError
from tlsguard.model import TargetRef
from tlsguard.policy import loader
from tlsguard.policy.loader import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_POLICY_BYTES,
    SCHEMA_PATH,
    load_policy,
    parse_policy,
    parse_policy_bytes,
    resolve,
    selector_matches,
)
from tlsguard.policy.matching import BUCKET_NAME_CHARACTERS, glob_problem
from tlsguard.policy.model import Policy, Posture, Rule, Selector, Waiver
from tlsguard.ratelimit import MAX_RATE, MIN_RATE, RATE_LIMITED_OPERATIONS, TokenBucket

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_TEXT = (ROOT / "examples" / "tlsguard.yaml").read_text()
EXAMPLE: dict[str, Any] = yaml.safe_load(EXAMPLE_TEXT)
SEED = 14
FILE = "fuzz.yaml"
MB = 1024 * 1024
#: A generous bound for any single load: the worst files measured take ~60 MB (bench/bench_policy_files.py).
MEMORY_BOUND = 200 * MB


@dataclass(frozen=True)
class Case:
    """One hostile file. ``expect``: a regex the error must match (the file must be refused); ``None``: loading may
    also succeed. ``field``: the field the error must name."""

    id: str
    data: bytes
    expect: str | None = None
    field: str | None = None


# -- building the corpus ------------------------------------------------------------------------------------------
def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)


def put(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    """Set ``path`` in ``data`` (creating mappings on the way)."""
    node: Any = data
    for part in path[:-1]:
        node = node.setdefault(part, {}) if isinstance(node, dict) else node[part]
    node[path[-1]] = value


def with_raw(path: tuple[Any, ...], raw: str, base: dict[str, Any] | None = None) -> bytes:
    """The example with the YAML text ``raw`` (flow style) at ``path``, spelled exactly as given."""
    data = copy.deepcopy(base or EXAMPLE)
    put(data, path, "__RAW__")
    return dump(data).replace("__RAW__", raw).encode()


def many_rules(count: int) -> str:
    """The example with ``count`` small rules (names, prefix and suffix globs, regions, tags)."""
    data = copy.deepcopy(EXAMPLE)
    rules = []
    for index in range(count):
        match: dict[str, Any] = [{"names": [f"team{index}-assets"]}, {"globs": [f"svc{index}-*", f"*-x{index}"]},
                                 {"regions": ["cn-hangzhou"], "tags": {"team": f"t{index}"}}][index % 3]
        rules.append({"name": f"rule-{index}", "match": match, "https_only": True})
    data["rules"] = rules
    return dump(data)


def alias_bomb(levels: int = 9, width: int = 9, where: str = "cdn") -> str:
    """"Billion laughs": each level a list of ``width`` aliases of the one before."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * width)}]" for n in range(1, levels)]
    head = "version: 1\ndefaults: {https_only: true}\n"
    if where == "cdn":
        return head + "certificates:\n  cdn_https:\n" + "".join(f"    {line}\n" for line in lines)
    if where == "rules":  # anchors defined inside the first rule's names, the bomb is the rule list
        names = ", ".join(f"&n{n} [{', '.join(['*n' + str(n - 1)] * width)}]" if n else '&n0 ["a", "b"]'
                          for n in range(levels))
        return head + f"rules:\n  - {{name: r, match: {{names: [{names}]}}}}\n" + \
            "".join(f"  - {{name: r{n}, match: {{names: *n{levels - 1}}}}}\n" for n in range(width))
    if where == "merge":  # merge keys repeating a mapping of mappings
        out = [head, "guard:\n", "  k0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8}\n"]
        out += [f"  k{n}: &m{n} {{{', '.join(f'x{i}: *m{n - 1}' for i in range(width))}}}\n" for n in range(1, levels)]
        return "".join(out)
    raise ValueError(where)


NUMBER_FIELDS: tuple[tuple[Any, ...], ...] = (
    ("rate_limits", "GetBucketHttpsConfig"), ("guard", "window_minutes"), ("guard", "max_remediations"),
    ("verify", "propagation_minutes"), ("verify", "attempts_before_alert"), ("verify", "per_kind", "cdn-domain"),
    ("certificates", "renew_before_days"), ("certificates", "renew_fraction"),
    ("certificates", "propagation_grace_minutes"), ("certificates", "min_rsa_bits"), ("certificates", "min_ec_bits"),
    ("certificates", "discovery_hours"), ("certificates", "alert_steps", 0),
    ("certificates", "backup_certificates", "www.example.com"), ("certificates", "cdn_https", "hsts", "max_age"),
    ("alerts", "reminder_hours", 0), ("alerts", "webhook", "timeout_seconds"), ("alerts", "webhook", "attempts"),
    ("alerts", "outbox_hours"),
)
#: Numbers no numeric field accepts: non-finite, negative, beyond every maximum, too long to convert.
HOSTILE_NUMBERS = ("1.0e+400", ".inf", "-.inf", ".nan", ".NaN", "-1", "1" + "0" * 30, "9" * 5000, "-" + "9" * 60,
                   "0x7fffffffffffffffffff", "-0.5", "1_000_000_000_000_000_000_000")


def number_base(path: tuple[Any, ...]) -> dict[str, Any]:
    """The example with the containers ``path`` needs (a list for list items, a webhook url for webhook fields)."""
    data = copy.deepcopy(EXAMPLE)
    if path[:2] == ("alerts", "webhook"):
        put(data, ("alerts", "webhook", "url"), "https://hooks.example.com/x")
    if isinstance(path[-1], int):
        put(data, path[:-1], [0])
    return data


def format_path(path: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(path))


def corpus() -> list[Case]:
    rng = random.Random(SEED)
    example = EXAMPLE_TEXT.encode()
    cases: list[Case] = [Case("example", example)]

    for n in range(80):  # random byte flips
        data = bytearray(example)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        cases.append(Case(f"flip-{n}", bytes(data)))
    for n in range(40):  # truncations
        cases.append(Case(f"truncate-{n}", example[:rng.randrange(len(example))]))
    lines = EXAMPLE_TEXT.splitlines(keepends=True)
    for n in range(30):  # a line dropped, repeated or swapped with another
        mutated = list(lines)
        index = rng.randrange(len(mutated))
        operation = n % 3
        if operation == 0:
            del mutated[index]
        elif operation == 1:
            mutated.insert(index, mutated[index])
        else:
            other = rng.randrange(len(mutated))
            mutated[index], mutated[other] = mutated[other], mutated[index]
        cases.append(Case(f"lines-{n}", "".join(mutated).encode()))

    values: list[Any] = [None, [], {}, "", "x" * 300, 0, -1, True, 3.5, [[[["deep"]]]], {"a": {"b": {"c": 1}}},
                         ["TLSv1.2", 7], {"names": 1}]
    paths = list(_leaf_paths(EXAMPLE))
    for n in range(60):  # a value of the wrong type (or the right one) anywhere
        data = copy.deepcopy(EXAMPLE)
        put(data, rng.choice(paths), copy.deepcopy(rng.choice(values)))
        cases.append(Case(f"type-{n}", dump(data).encode()))
    for n, raw in enumerate(("!!binary aGVsbG8=", "!!set {a: null}", "!!omap [{a: 1}]", "!!python/object:os.system x",
                             "!!timestamp 2027-01-01", "{? [a, b] : 1}", "{1: 2}", "{on: true}", "{null: 1}")):
        cases.append(Case(f"tag-{n}", with_raw(("guard",), raw), expect=r"."))

    for path in NUMBER_FIELDS:  # hostile numbers in every numeric field
        for raw in rng.sample(HOSTILE_NUMBERS, 4):
            cases.append(Case(f"number-{format_path(path)}-{raw[:12]}", with_raw(path, raw, number_base(path)),
                              expect=r".", field=format_path(path[:2])))
    for raw in ("1.0e-300", "0.001", "0", "0.5", "10001", "1.0e+300"):  # rates that overflow or stall
        cases.append(Case(f"rate-{raw}", with_raw(("rate_limits", "GetBucketHttpsConfig"), raw),
                          expect="out of range", field="rate_limits.GetBucketHttpsConfig"))
    cases.append(Case("rate-unknown-action", with_raw(("rate_limits",), "{GetBucketHttpsConfg: 10}"),
                      expect="is not one of", field="rate_limits"))

    globs = [("[", "never closed"), ("logs-[", "never closed"), ("[z-a]*", "empty"), ("Logs-*", "cannot appear"),
             ("[A-Z]*", "no character"), ("logs_*", "cannot appear"), ("[!]", "never closed"), ("", "")]
    for n, (glob, why) in enumerate(globs):
        rule = {"name": "bad-glob", "match": {"globs": [glob]}}
        data = copy.deepcopy(EXAMPLE)
        data["rules"].insert(0, rule)
        cases.append(Case(f"glob-rule-{n}", dump(data).encode(), expect=why or "characters",
                          field="rules[0].match.globs[0]"))
    cases.append(Case("name-upper", with_raw(("rules", 0, "match"), "{names: [Acme-Prod]}"), expect="cannot appear",
                      field="rules[0].match.names[0]"))
    cases.append(Case("glob-waiver", with_raw(("waivers", 0, "target"), "'acme-[prod'"), expect="never closed",
                      field="waivers[0].target"))
    routes = ("{channels: [{name: a, type: webhook, url_env: HOOK}], "
              "routes: [{channels: [a], match: {target: ['acme-[']}}]}")
    cases.append(Case("glob-route", with_raw(("alerts",), routes), expect="never closed",
                      field="alerts.routes[0].match.target"))
    for n, entry in enumerate(("a*b.example.com", "*", "[ab].example.com", "*example.com", "x..y")):
        cases.append(Case(f"scope-{n}", with_raw(("certificates", "include"), f"['{entry}']"),
                          expect="neither a domain name", field="certificates.include"))
    cases.append(Case("region-upper", with_raw(("rules", 3, "match", "regions"), "[CN-Shanghai]"),
                      expect="does not match", field="rules[3].match.regions[0]"))

    top = "version: 1\ndefaults: {https_only: true}\n"
    cases += [
        Case("nest-flow-100000", (top + "x: " + "[" * 100_000 + "]" * 100_000 + "\n").encode(), expect="levels deep"),
        Case("nest-map-100000", (top + "x: " + "{a: " * 100_000 + "1" + "}" * 100_000 + "\n").encode(),
             expect="levels deep"),
        Case("nest-block", (top + "".join("  " * n + "a:\n" for n in range(MAX_DEPTH + 5)) + "  " *
                            (MAX_DEPTH + 5) + "b: 1\n").encode(), expect="levels deep"),
        Case("nest-dashes", (top + "x:\n" + "- " * (MAX_DEPTH + 5) + "1\n").encode(), expect="levels deep"),
        Case("nest-in-cdn", with_raw(("certificates", "cdn_https", "hsts"), "[" * 60 + "]" * 60), expect="levels deep"),
        Case("nest-at-limit", with_raw(("certificates", "cdn_https", "x"), "[" * (MAX_DEPTH - 4) + "]" *
                                       (MAX_DEPTH - 4)), expect=r"unknown keys x", field="certificates"),
    ]
    cases += [
        Case("bomb-cdn", alias_bomb().encode(), expect="values once its aliases are expanded"),
        Case("bomb-rules", alias_bomb(where="rules").encode(), expect="values once its aliases are expanded"),
        Case("bomb-merge", alias_bomb(where="merge").encode(), expect="values once its aliases are expanded"),
        Case("bomb-wide", alias_bomb(levels=3, width=1000).encode(), expect="values once its aliases are expanded"),
        Case("alias-recursive", (top + "x: &a [1, *a]\n").encode(), expect="refers to a node that contains it"),
        Case("alias-recursive-map", (top + "x: &a {b: *a}\n").encode(), expect="refers to a node that contains it"),
        Case("alias-undefined", (top + "x: *nothing\n").encode(), expect="undefined alias"),
        Case("alias-duplicate", (top + "x: &a 1\ny: &a 2\n").encode(), expect="duplicate anchor"),
        Case("alias-small-ok", alias_bomb(levels=3, width=3).encode(), expect="unknown keys", field="certificates"),
    ]

    zh = EXAMPLE_TEXT.replace("(SEC-88)", "(SEC-88, 证书)")
    latin = EXAMPLE_TEXT.replace("(SEC-88)", "(SEC-88, Zürich)")
    cases += [
        Case("utf-16", EXAMPLE_TEXT.encode("utf-16"), expect=r"not UTF-8 text \(byte 0 starts a UTF-16"),
        Case("utf-16-le", EXAMPLE_TEXT.encode("utf-16-le"), expect=r"not UTF-8 text \(byte 1 is NUL"),
        Case("utf-16-be", EXAMPLE_TEXT.encode("utf-16-be"), expect=r"not UTF-8 text \(byte 0 is NUL"),
        Case("utf-32", EXAMPLE_TEXT.encode("utf-32"), expect=r"not UTF-8 text \(byte 0 starts a UTF-32"),
        Case("utf-32-be", EXAMPLE_TEXT.encode("utf-32-be"), expect=r"not UTF-8 text \(byte 0 is NUL"),
        Case("latin-1", latin.encode("latin-1"), expect=r"not UTF-8 text \(byte \d+ is 0xfc\)"),
        Case("cp1252", EXAMPLE_TEXT.replace("(SEC-88)", "(SEC-88 \u2013 2027)").encode("cp1252"),
             expect=r"not UTF-8 text \(byte \d+ is 0x96\)"),
        Case("gb18030", zh.encode("gb18030"), expect="not UTF-8 text"),
        Case("surrogate", example.replace(b"SEC-88", b"SEC-\xed\xa0\x80"), expect="not UTF-8 text"),
        Case("control-char", EXAMPLE_TEXT.replace("SEC-88", "SEC-\x07").encode(), expect="U\\+0007"),
        Case("nul-in-utf8", example.replace(b"SEC-88", b"SEC-\x00"), expect="NUL"),
        Case("utf-8-bom", b"\xef\xbb\xbf" + zh.encode()),
        Case("empty", b"", expect="must be a mapping"),
        Case("only-bom", b"\xef\xbb\xbf", expect="must be a mapping"),
    ]
    cases += [Case(f"random-{n}", rng.randbytes(rng.choice((16, 512, 4096))), expect=".") for n in range(10)]

    cases += [
        Case("huge-name", EXAMPLE_TEXT.replace("name: backups-sm4", "name: " + "b" * 900_000).encode(),
             expect="900,000 characters: at most 128", field="rules[1].name"),
        Case("huge-scalar-over-limit", EXAMPLE_TEXT.replace("name: backups-sm4", "name: " + "b" * MAX_POLICY_BYTES)
             .encode(), expect="over the limit"),
        Case("huge-key", with_raw(("guard", "k" * 100_000), "1"), expect="unknown field", field="guard"),
        Case("huge-reason", with_raw(("waivers", 0, "reason"), "r" * 5000), expect="at most 1000",
             field="waivers[0].reason"),
        Case("huge-glob", with_raw(("rules", 0, "match"), "{globs: ['" + "a" * 10_000 + "*']}"),
             expect="at most 255", field="rules[0].match.globs[0]"),
        Case("huge-comment", (EXAMPLE_TEXT + "#" + "c" * 500_000 + "\n").encode()),
        Case("huge-list", with_raw(("certificates", "include"), "[" + ", ".join(["a.example.com"] * 5000) + "]"),
             expect="at most 1000", field="certificates.include"),
        Case("many-rules-2000", many_rules(2000).encode()),
        Case("too-many-rules", ("version: 1\ndefaults: {https_only: true}\nrules:\n" +
                                "- {name: r, match: {names: [a]}}\n" * 10_001).encode(),
             expect="10,001 items: at most 10000", field="rules"),
    ]
    return cases


def _leaf_paths(data: Any, path: tuple[Any, ...] = ()) -> Any:
    """Every path of ``data`` (mappings and lists), parents before children."""
    if path:
        yield path
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaf_paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _leaf_paths(value, (*path, index))


CORPUS = corpus()


def test_the_corpus_is_a_few_hundred_distinct_cases() -> None:
    assert len(CORPUS) >= 300
    assert len({case.id for case in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=lambda case: case.id)
def test_hostile_policy_file_loads_or_fails_with_one_clear_config_error(case: Case) -> None:
    """GIVEN a mutated policy file WHEN it is loaded THEN it loads, or one ConfigError names file (line, field)."""
    try:
        policy = parse_policy_bytes(case.data, FILE)
    except ConfigError as error:
        message = str(error)
        assert "\n" not in message and len(message) < 1500, message[:3000]
        assert error.file == FILE and message.startswith(FILE), message
        assert error.reason and "Traceback" not in message
        if case.expect is not None:
            assert re.search(case.expect, message), message
        if case.field is not None:
            assert error.field.startswith(case.field), message
            assert error.line is not None, message
        return
    except Exception as exc:  # anything else is a bug this suite exists to find
        pytest.fail(f"{case.id}: {type(exc).__name__} escaped the loader: {str(exc)[:300]}")
    assert case.expect is None, f"{case.id} loaded but must be refused ({case.expect})"
    assert isinstance(policy, Policy)


# -- memory: the bomb and the big files ---------------------------------------------------------------------------
def peak_bytes_of(load: Any) -> tuple[int, BaseException | None]:
    """Peak Python memory (tracemalloc) while ``load()`` runs, and what it raised."""
    tracemalloc.start()
    try:
        load()
        raised = None
    except BaseException as exc:
        raised = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, raised


@pytest.mark.parametrize("where", ["cdn", "rules", "merge"])
def test_an_alias_bomb_is_refused_in_bounded_memory(where: str) -> None:
    """Before issue 14 the 9 x 9 bomb took 3.3 GB and ended in MemoryError; now it stops while being composed."""
    peak, raised = peak_bytes_of(lambda: parse_policy(alias_bomb(where=where), FILE))
    assert isinstance(raised, ConfigError) and "aliases are expanded" in str(raised), raised
    assert peak < MEMORY_BOUND, f"{peak / MB:.1f} MB"


def test_a_ten_megabyte_policy_is_refused_by_its_size_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(many_rules(10) + "# " + "x" * (10 * MB) + "\n")
    peak, raised = peak_bytes_of(lambda: load_policy(path))
    assert isinstance(raised, ConfigError), raised
    assert re.search(r"is 10,\d{3},\d{3} bytes, over the limit of 1,048,576 bytes", str(raised)), raised
    assert peak < 3 * MAX_POLICY_BYTES, f"{peak / MB:.1f} MB: the file is read only up to the limit"


_CHILD = textwrap.dedent("""
    import json, resource, sys
    from tlsguard.errors import ConfigError
    from tlsguard.policy.loader import load_policy
    import jsonschema, yaml
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        outcome = f"loaded {len(load_policy(sys.argv[1]).rules)} rules"
    except ConfigError as exc:
        outcome = f"ConfigError {exc}"
    print(json.dumps({"outcome": outcome, "kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base}))
""")


def load_in_child(path: Path) -> tuple[str, int]:
    """(outcome, peak RSS growth in bytes) of ``load_policy(path)`` in a fresh interpreter."""
    completed = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True,
                               timeout=180, check=False, cwd=ROOT,
                               env={"PYTHONPATH": f"{ROOT / 'shared'}", "PATH": "/usr/bin:/bin"})
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    return result["outcome"], result["kb"] * 1024


def test_a_policy_just_under_the_limit_with_many_rules_loads_in_bounded_memory(tmp_path: Path) -> None:
    text = many_rules(1)
    rule = ("- name: team-{n:05d}-rule\n  match:\n    globs: ['team-{n:05d}-*', '*-svc{n:05d}']\n"
            "    regions: [cn-hangzhou]\n  https_only: true\n")  # as yaml.safe_dump indents them
    rules = []
    size = len(text.encode())
    for n in range(100_000):
        entry = rule.format(n=n)
        if size + len(entry) > MAX_POLICY_BYTES - 64:
            break
        rules.append(entry)
        size += len(entry)
    text = text.replace("rules:\n", "rules:\n" + "".join(rules), 1)
    assert MAX_POLICY_BYTES - 1024 < len(text.encode()) <= MAX_POLICY_BYTES
    path = tmp_path / "many.yaml"
    path.write_text(text)
    outcome, grown = load_in_child(path)
    assert outcome == f"loaded {len(rules) + 1} rules", outcome
    assert len(rules) > 7000
    assert grown < MEMORY_BOUND, f"{grown / MB:.1f} MB"


def test_a_file_of_the_most_values_the_size_allows_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """Half a million one-character items fit in 1 MiB: the value budget stops them, in bounded memory."""
    head = "version: 1\ndefaults: {https_only: true}\nx: ["
    path = tmp_path / "values.yaml"
    path.write_text(head + ",".join(["a"] * ((MAX_POLICY_BYTES - len(head) - 3) // 2)) + "]\n")
    outcome, grown = load_in_child(path)
    assert outcome.startswith("ConfigError") and f"more than {MAX_NODES:,} values" in outcome, outcome
    assert grown < MEMORY_BOUND, f"{grown / MB:.1f} MB"


# -- the CLI shows it as one line and exits non-zero --------------------------------------------------------------
@pytest.mark.parametrize("content", [
    EXAMPLE_TEXT.encode("utf-16"),
    alias_bomb().encode(),
    with_raw(("rate_limits", "GetBucketHttpsConfig"), "1.0e-300"),
    with_raw(("rules", 0, "match"), "{globs: ['[']}"),
    ("version: 1\ndefaults: {}\nx: " + "[" * 5000 + "]" * 5000 + "\n").encode(),
], ids=["utf-16", "alias-bomb", "tiny-rate", "glob", "deep"])
def test_the_cli_prints_one_line_and_exits_non_zero(tmp_path: Path, content: bytes) -> None:
    from tlsguard.cli import cli

    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    result = CliRunner().invoke(cli, ["plan", "--policy", str(path)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tlsguard: error: {path}"), result.stderr
    assert "internal error" not in result.stderr


# -- anchors and aliases used reasonably keep working -------------------------------------------------------------
def test_reasonable_anchors_aliases_and_merge_keys_load_like_the_spelled_out_policy() -> None:
    anchored = textwrap.dedent("""\
        version: 1
        defaults: &base
          tls_versions: [TLSv1.2, TLSv1.3]
          https_only: true
        rules:
          - name: first
            match: {names: [a-bucket]}
            cipher_suites: &custom {mode: custom, tls12: [ECDHE-RSA-AES128-GCM-SHA256]}
          - name: second
            match: {names: [b-bucket]}
            cipher_suites: *custom
          - name: third
            match: {names: [c-bucket]}
            <<: *base
        """)
    spelled = textwrap.dedent("""\
        version: 1
        defaults:
          tls_versions: [TLSv1.2, TLSv1.3]
          https_only: true
        rules:
          - name: first
            match: {names: [a-bucket]}
            cipher_suites: {mode: custom, tls12: [ECDHE-RSA-AES128-GCM-SHA256]}
          - name: second
            match: {names: [b-bucket]}
            cipher_suites: {mode: custom, tls12: [ECDHE-RSA-AES128-GCM-SHA256]}
          - name: third
            match: {names: [c-bucket]}
            tls_versions: [TLSv1.2, TLSv1.3]
            https_only: true
        """)
    with_aliases, without = parse_policy(anchored, FILE), parse_policy(spelled, FILE)
    assert with_aliases.defaults == without.defaults
    assert [(r.name, r.selector, r.posture, r.line) for r in with_aliases.rules] == \
        [(r.name, r.selector, r.posture, r.line) for r in without.rules]
    assert len(parse_policy(EXAMPLE_TEXT, FILE).rules) == len(EXAMPLE["rules"])


# -- globs --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("glob", "alphabet", "problem"), [
    ("acme-*", BUCKET_NAME_CHARACTERS, None),
    ("acme-[0-9][!x]?-*", BUCKET_NAME_CHARACTERS, None),
    ("[]a]*", None, None),
    ("[-a]", BUCKET_NAME_CHARACTERS, None),
    ("[a-]", BUCKET_NAME_CHARACTERS, None),
    ("[", None, "never closed"),
    ("acme-[0-9", None, "never closed"),
    ("[!]", None, "never closed"),
    ("[]", None, "never closed"),
    ("[z-a]", None, "empty"),
    ("", None, "empty glob"),
    ("ACME-*", BUCKET_NAME_CHARACTERS, "cannot appear"),
    ("acme.*", BUCKET_NAME_CHARACTERS, "cannot appear"),
    ("[A-Z]-*", BUCKET_NAME_CHARACTERS, "no character"),
    ("[!A-Z]-*", BUCKET_NAME_CHARACTERS, None),
    ("*.example.com", None, None),
])
def test_glob_problem_reads_globs_as_fnmatch_does(glob: str, alphabet: frozenset[str] | None,
                                                   problem: str | None) -> None:
    found = glob_problem(glob, alphabet)
    assert (found is None) == (problem is None), found
    if problem:
        assert found is not None and problem in found


def test_a_glob_that_passes_matches_some_name_and_one_refused_for_brackets_matches_none() -> None:
    """The property behind the check: fnmatch reads an unclosed '[' literally, so no bucket name ever matches."""
    import fnmatch

    rng = random.Random(SEED)
    names = ["".join(rng.choice("abc-1") for _ in range(rng.randint(3, 8))) for _ in range(2000)]
    for glob in ("ab[", "[a", "a[b-", "*["):
        assert glob_problem(glob) is not None
        assert not any(fnmatch.fnmatchcase(name, glob) for name in names)


# -- matching is indexed, never rules x targets ---------------------------------------------------------------------
def random_policy(rng: random.Random, rules: int, waivers: int) -> Policy:
    def name() -> str:
        return "".join(rng.choice("ab-1") for _ in range(rng.randint(3, 6)))

    def glob() -> str:
        stem = name()
        return rng.choice([stem, stem + "*", "*" + stem, "*" + stem[1:3] + "*", stem[:2] + "?" + stem[3:],
                           "[ab]" + stem[1:] + "*", "?*", "*"])

    built = []
    for index in range(rules):
        kind = rng.randrange(6)
        selector = Selector(
            names=frozenset(name() for _ in range(rng.randint(1, 3))) if kind == 0 else frozenset(),
            globs=tuple(glob() for _ in range(rng.randint(1, 3))) if kind in (1, 2) else (),
            regions=frozenset(rng.sample(["r1", "r2", "r3"], rng.randint(1, 2))) if kind in (2, 3) else frozenset(),
            tags=tuple(sorted({rng.choice("kl"): rng.choice(["v", "w", "*"]) for _ in range(rng.randint(1, 2))}
                              .items())) if kind in (0, 4) else (),
        )
        built.append(Rule(f"rule-{index}", selector, Posture(https_only=bool(index % 2))))
    waived = [Waiver(glob(), f"reason {n}", dt.date(2030, 1, 1)) for n in range(waivers)]
    return Policy(defaults=Posture(https_only=True), mode=EXAMPLE_MODE, rules=tuple(built), waivers=tuple(waived))


EXAMPLE_MODE = parse_policy(EXAMPLE_TEXT, FILE).mode


def test_indexed_resolution_selects_exactly_the_rules_and_waivers_a_full_scan_does() -> None:
    import fnmatch

    rng = random.Random(SEED)
    policy = random_policy(rng, rules=400, waivers=60)
    today = dt.date(2026, 12, 1)
    for _ in range(1000):
        bucket = "".join(rng.choice("ab-1") for _ in range(rng.randint(3, 7)))
        region = rng.choice(["r1", "r2", "r3", "r4"])
        tags = {key: rng.choice(["v", "w", "x"]) for key in rng.sample("klm", rng.randint(0, 3))}
        desired = resolve(policy, TargetRef.bucket_target(bucket, region), tags, today)
        assert desired.rules == tuple(rule.name for rule in policy.rules
                                      if selector_matches(rule.selector, bucket, region, tags))
        assert [reason for _, reason in desired.waived] == [
            w.reason for w in policy.waivers if fnmatch.fnmatchcase(bucket, w.target)]


def test_resolving_a_fleet_against_many_rules_checks_only_candidate_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """10,000 rules x 2,000 buckets would be 20 million selector checks by a full scan; the index makes a few."""
    rules = tuple(Rule(f"rule-{n}", Selector(names=frozenset({f"team{n}-assets"}))
                       if n % 2 else Selector(globs=(f"svc{n}-*",)), Posture(https_only=True))
                  for n in range(10_000))
    policy = Policy(defaults=Posture(https_only=True), mode=EXAMPLE_MODE, rules=rules,
                    waivers=tuple(Waiver(f"legacy{n}-*", "r", dt.date(2030, 1, 1)) for n in range(1000)))
    calls = []
    real = loader.selector_matches

    def counting(*args: Any) -> bool:
        calls.append(args[1])
        return real(*args)

    monkeypatch.setattr(loader, "selector_matches", counting)
    today = dt.date(2026, 12, 1)
    for n in range(2000):
        name = f"team{n}-assets" if n % 2 else f"svc{n}-web"
        assert resolve(policy, TargetRef.bucket_target(name, "cn-hangzhou"), None, today).rules == (f"rule-{n}",)
    assert len(calls) <= 2 * 2000, len(calls)


# -- every number, list and map of the schema is bounded ----------------------------------------------------------
def schema_nodes(node: Any, path: str = "#") -> Any:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from schema_nodes(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from schema_nodes(value, f"{path}/{index}")


def test_every_number_list_map_and_string_of_the_schema_is_bounded() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    unbounded = []
    for path, node in schema_nodes(schema):
        types = node.get("type")
        types = [types] if isinstance(types, str) else (types or [])
        if "enum" in node or "const" in node or "$ref" in node:
            continue
        low, high = {"minimum", "exclusiveMinimum"} & node.keys(), {"maximum", "exclusiveMaximum"} & node.keys()
        if {"number", "integer"} & set(types) and not (low and high):
            unbounded.append(f"{path}: number")
        if "array" in types and "maxItems" not in node and not node.get("uniqueItems"):
            unbounded.append(f"{path}: array")
        bounded_pattern = re.fullmatch(r"\^[^*+]*\$", re.sub(r"\\.", "", node.get("pattern", "")))
        if "string" in types and "maxLength" not in node and not bounded_pattern:
            unbounded.append(f"{path}: string")
        if "object" in types and isinstance(node.get("additionalProperties"), dict) and \
                "maxProperties" not in node and "enum" not in node.get("propertyNames", {}):
            unbounded.append(f"{path}: map")
    assert unbounded == []


def test_rate_limits_name_the_limited_actions_within_the_documented_bounds() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())["properties"]["rate_limits"]
    assert schema["propertyNames"]["enum"] == list(RATE_LIMITED_OPERATIONS)
    assert (schema["additionalProperties"]["minimum"], schema["additionalProperties"]["maximum"]) == (MIN_RATE,
                                                                                                      MAX_RATE)
    called = set()
    for adapter in ("oss.py", "oss_cname.py"):
        called |= set(re.findall(r'_call\("(\w+)"', (ROOT / "shared" / "tlsguard" / "adapters" / adapter).read_text()))
    assert called == set(RATE_LIMITED_OPERATIONS)
    for rate in (float("nan"), float("inf"), 0.0, -1.0):
        with pytest.raises(ValueError, match="positive finite"):
            TokenBucket(rate)
