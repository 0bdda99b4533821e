"""Load ``tlsguard.yaml``: bounded bytes, UTF-8, YAML with line numbers, JSON Schema, guardrails, then the model.

Every error is a :class:`~tlsguard.errors.ConfigError` naming the file, the line and the field
(``tlsguard.yaml:14: rules[1].tls_versions: ...``), on one line, and every input is refused in bounded time and
memory before it can cost more: the size (``MAX_POLICY_BYTES``), the encoding (UTF-8, with or without a BOM), the
nesting (``MAX_DEPTH``), the values once aliases are expanded (``MAX_NODES``: an alias bomb stops there), the length
of numbers, then every number and list of the schema (docs/configuration.md, "Limits of the policy file").
"""

from __future__ import annotations

import codecs
import datetime as dt
import fnmatch
import itertools
import json
import math
import os
import re
import reprlib
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlsguard.errors import ConfigError
from tlsguard.model import Mode, TargetKind, TargetRef
from tlsguard.policy.matching import BUCKET_NAME_CHARACTERS, glob_problem
from tlsguard.policy.model import (
    DEFAULT_PROPAGATION_SECONDS,
    MODERN_VERSIONS,
    AlertSettings,
    ChannelSpec,
    CipherMode,
    CipherPolicy,
    Desired,
    EncryptionAlgorithm,
    EncryptionPolicy,
    Guard,
    HeartbeatSettings,
    Policy,
    Posture,
    Route,
    RouteMatch,
    Rule,
    Selector,
    TlsVersion,
    VerifySettings,
    Waiver,
)
from tlsguard.policy.suites import TLS12_SUITES, TLS13_SUITES

if TYPE_CHECKING:
    import yaml

SCHEMA_PATH = Path(__file__).with_name("policy.schema.json")
#: KMS key ids: the UUID form, the ``key-...`` form, optionally inside a key ARN.
KMS_KEY_ID = re.compile(
    r"^(acs:kms:[a-z0-9-]+:\d+:key/)?"
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|key-[a-z0-9]{12,40})$"
)
Path_ = tuple[Any, ...]

#: The largest policy file tlsguard reads: a generous production figure (the example policy is 3 KB; 1 MiB holds
#: about 10,000 rules). A larger file is refused before it is parsed.
MAX_POLICY_BYTES = 1024 * 1024
#: How deep mappings and lists may nest. The schema's deepest field is six levels down
#: (``alerts.routes[0].match.check[0]``); deeper input is refused as soon as the parser reaches it.
MAX_DEPTH = 32
#: Values (YAML nodes: keys, scalars, lists, mappings) the document may hold with every alias expanded. A policy of
#: 10,000 rules filling ``MAX_POLICY_BYTES`` holds about 125,000; each value costs about 25 us and 500 bytes to parse
#: and validate, so this bounds a load to seconds and ~100 MB whatever the file spells. Anchors and aliases keep
#: working; an alias bomb (a few lines that expand to millions of values) stops here, before anything is built.
MAX_NODES = 200_000
#: Characters of one number: far more than any bound of the schema needs, far fewer than int() spends time on.
MAX_NUMBER_CHARACTERS = 40
#: Schema errors looked at to report the one with the lowest line (a file of many errors stays cheap).
MAX_SCHEMA_ERRORS = 1000
#: What YAML 1.1 allows in a stream (yaml.reader.Reader.NON_PRINTABLE): anything else is refused with its line.
_NOT_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_OTHER_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"), (codecs.BOM_UTF16_LE, "UTF-16"),
               (codecs.BOM_UTF16_BE, "UTF-16"))
_STR, _MERGE = "tag:yaml.org,2002:str", "tag:yaml.org,2002:merge"
_brief_repr = reprlib.Repr()
_brief_repr.maxstring, _brief_repr.maxother, _brief_repr.maxlist, _brief_repr.maxdict, _brief_repr.maxlevel = (
    60, 60, 4, 4, 2)


def _brief(value: Any) -> str:
    """A short one-line repr for messages: a 900 KB value must not become a 900 KB error."""
    return _brief_repr.repr(value)


@lru_cache(maxsize=1)
def policy_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


def _format_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _too_large(size: int, file: str) -> ConfigError:
    return ConfigError(f"the policy file is {size:,} bytes, over the limit of {MAX_POLICY_BYTES:,} bytes", file=file)


def decode_policy(data: bytes, file: str) -> str:
    """The text of a policy file: at most ``MAX_POLICY_BYTES``, UTF-8 with or without a BOM, nothing else."""
    if len(data) > MAX_POLICY_BYTES:
        raise _too_large(len(data), file)
    for bom, encoding in _OTHER_BOMS:
        if data.startswith(bom):
            raise ConfigError(f"the policy file is not UTF-8 text (byte 0 starts a {encoding} byte-order mark): "
                              "save it as UTF-8", file=file, line=1)
    offset = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[offset:].decode("utf-8")
        invalid = len(data)
    except UnicodeDecodeError as exc:
        invalid = offset + exc.start
    nul = data.find(b"\x00", offset, invalid)
    byte = nul if nul >= 0 else invalid
    if byte < len(data):
        what = "NUL, as in UTF-16 or UTF-32" if nul >= 0 else f"0x{data[byte]:02x}"
        raise ConfigError(f"the policy file is not UTF-8 text (byte {byte} is {what}): save it as UTF-8",
                          file=file, line=data.count(b"\n", 0, byte) + 1)
    return text


class _Bounds:
    """What composing one document has cost so far; refuses the node that would exceed a bound."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.depth = 0
        self.nodes = 0
        self.aliased = 0  # values that aliases repeat
        self.sizes: dict[int, int] = {}  # id(anchored node) -> its size with aliases expanded, once complete

    def refuse(self, message: str, mark: Any) -> ConfigError:
        return ConfigError(message, file=self.file, line=mark.line + 1 if mark is not None else None)

    def count(self, nodes: int, mark: Any, *, alias: bool = False) -> None:
        self.nodes += nodes
        self.aliased += nodes if alias else 0
        if self.nodes > MAX_NODES:
            how = f" once its aliases are expanded ({self.aliased:,} repeated by aliases)" if self.aliased else ""
            raise self.refuse(f"the document holds more than {MAX_NODES:,} values{how}", mark)


@lru_cache(maxsize=1)
def _loader_class() -> type[Any]:
    """A YAML loader: libyaml's parser when present, PyYAML's composer under :class:`_Bounds`, safe constructors.

    The composer is PyYAML's own, in Python, so that depth and alias expansion are checked node by node before
    anything is built; libyaml only tokenizes and parses (the slow part), and never recurses.
    """
    from yaml.composer import Composer
    from yaml.constructor import ConstructorError, SafeConstructor
    from yaml.events import AliasEvent
    from yaml.resolver import Resolver

    class BoundedComposer(Composer):
        bounds: _Bounds

        def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
            event = self.peek_event()  # type: ignore[attr-defined]
            bounds = self.bounds
            if isinstance(event, AliasEvent):
                target = self.anchors.get(event.anchor)
                if target is not None:
                    if id(target) not in bounds.sizes:
                        raise bounds.refuse(f"the alias *{event.anchor} refers to a node that contains it",
                                            event.start_mark)
                    bounds.count(bounds.sizes[id(target)], event.start_mark, alias=True)
                return super().compose_node(parent, index)
            bounds.depth += 1
            if bounds.depth > MAX_DEPTH:
                raise bounds.refuse(f"mappings and lists nest more than {MAX_DEPTH} levels deep", event.start_mark)
            bounds.count(1, event.start_mark)
            before = bounds.nodes
            node = super().compose_node(parent, index)
            bounds.depth -= 1
            if event.anchor is not None:
                bounds.sizes[id(node)] = bounds.nodes - before + 1
            return node

    try:
        from yaml._yaml import CParser
    except ImportError:  # PyYAML without libyaml: the pure-Python scanner and parser (slower, same answers)
        from yaml.parser import Parser
        from yaml.reader import Reader
        from yaml.scanner import Scanner

        class PyParser(Reader, Scanner, Parser):
            def __init__(self, text: str) -> None:
                Reader.__init__(self, text)
                Scanner.__init__(self)
                Parser.__init__(self)

        parser: type[Any] = PyParser
    else:
        parser = CParser

    class Loader(BoundedComposer, parser, SafeConstructor, Resolver):  # type: ignore[misc]
        """Bounded composition; timestamps stay text (the schema checks dates); numbers bounded and finite."""

        def __init__(self, text: str, bounds: _Bounds) -> None:
            parser.__init__(self, text)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            Composer.__init__(self)
            self.bounds = bounds

    def as_text(loader: Any, node: yaml.Node) -> Any:
        return loader.construct_scalar(node)

    def number_text(loader: Any, node: yaml.Node) -> str:
        text = str(loader.construct_scalar(node))
        if len(text) > MAX_NUMBER_CHARACTERS:
            raise ConstructorError(None, None, f"a number of {len(text):,} characters (at most "
                                               f"{MAX_NUMBER_CHARACTERS})", node.start_mark)
        return text

    def bounded_int(loader: Any, node: yaml.Node) -> Any:
        number_text(loader, node)
        return loader.construct_yaml_int(node)

    def finite_float(loader: Any, node: yaml.Node) -> Any:
        text = number_text(loader, node)
        number = loader.construct_yaml_float(node)
        if not math.isfinite(number):
            raise ConstructorError(None, None, f"{text} is not a finite number", node.start_mark)
        return number

    def refused_tag(loader: Any, node: yaml.Node) -> Any:
        raise ConstructorError(None, None, f"the tag {_short_tag(node.tag)} has no place in a policy file",
                               node.start_mark)

    Loader.add_constructor("tag:yaml.org,2002:timestamp", as_text)
    Loader.add_constructor("tag:yaml.org,2002:int", bounded_int)
    Loader.add_constructor("tag:yaml.org,2002:float", finite_float)
    for tag in ("binary", "set", "omap", "pairs"):
        Loader.add_constructor(f"tag:yaml.org,2002:{tag}", refused_tag)
    return Loader


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def _yaml_message(exc: Any) -> str:
    """One line from a PyYAML error: its problem, and its context with the context's line."""
    problem = (str(getattr(exc, "problem", None) or exc).splitlines() or [type(exc).__name__])[0]
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context:
        line = f"line {context_mark.line + 1}" if context_mark is not None else ""
        if problem.startswith("but ") or problem.endswith("occurrence"):  # the problem continues the context
            problem = f"{context} ({line}), {problem}" if line else f"{context}, {problem}"
        else:
            problem = f"{problem} ({context}, {line})" if line else f"{problem} ({context})"
    return f"invalid YAML: {' '.join(problem.split())}"


class _Located:
    """Parsed YAML data plus its node tree, to find the line of any path when an error needs it."""

    def __init__(self, file: str, text: str) -> None:
        import yaml

        self.file = file
        if len(text) > MAX_POLICY_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_POLICY_BYTES:
            raise ConfigError(f"the policy is over the limit of {MAX_POLICY_BYTES:,} bytes", file=file)
        text = text.removeprefix("\ufeff")
        bad = _NOT_PRINTABLE.search(text)
        if bad:
            start = text.rfind("\n", 0, bad.start()) + 1
            raise ConfigError(f"the character U+{ord(bad.group()):04X} (column {bad.start() - start + 1}) is not "
                              "allowed in YAML", file=file, line=text.count("\n", 0, bad.start()) + 1)
        loader = _loader_class()(text, _Bounds(file))
        self.root: yaml.Node | None = None
        try:
            self.root = loader.get_single_node()
            if self.root is not None:
                self._check_keys(self.root)
                self.data = loader.construct_document(self.root)
            else:
                self.data = None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            path = self._path_at(mark) if isinstance(exc, yaml.constructor.ConstructorError) and mark else None
            if path is not None:  # a value YAML parsed but tlsguard will not build: name its field
                raise ConfigError(" ".join(str(exc.problem).split()), file=file, line=line,
                                  field=_format_path(path)) from None
            raise ConfigError(_yaml_message(exc), file=file, line=line) from None
        except yaml.YAMLError as exc:
            raise ConfigError(_yaml_message(exc), file=file) from None
        finally:
            loader.dispose()

    def _check_keys(self, root: yaml.Node) -> None:
        """Every mapping key is text and appears once (each node visited once, however often aliases repeat it)."""
        import yaml

        seen_nodes: set[int] = set()
        stack: list[tuple[yaml.Node, Path_]] = [(root, ())]
        while stack:
            node, path = stack.pop()
            if id(node) in seen_nodes:
                continue
            seen_nodes.add(id(node))
            if isinstance(node, yaml.MappingNode):
                keys: set[str] = set()
                for key_node, value_node in node.value:
                    line = key_node.start_mark.line + 1
                    if not isinstance(key_node, yaml.ScalarNode):
                        raise ConfigError("a mapping or list used as a key: keys must be text", file=self.file,
                                          line=line, field=_format_path(path))
                    if key_node.tag not in (_STR, _MERGE):
                        raise ConfigError(f"the key {_brief(key_node.value)} is not text (YAML reads it as "
                                          f"{_short_tag(key_node.tag)}): quote it", file=self.file, line=line,
                                          field=_format_path(path))
                    key = key_node.value
                    if key in keys:
                        raise ConfigError(f"duplicate key {_brief(key)}", file=self.file, line=line,
                                          field=_format_path((*path, key)))
                    keys.add(key)
                    stack.append((value_node, (*path, key)))
            elif isinstance(node, yaml.SequenceNode):
                stack.extend((item, (*path, index)) for index, item in enumerate(node.value))

    def _path_at(self, mark: Any) -> Path_ | None:
        """The path of the value that starts at ``mark`` (a depth-first search of the bounded node tree)."""
        import yaml

        seen_nodes: set[int] = set()
        stack: list[tuple[yaml.Node, Path_]] = [(self.root, ())] if self.root is not None else []
        while stack:
            node, path = stack.pop()
            if node.start_mark.index == mark.index:  # parents are popped before children: the outermost wins
                return path
            if id(node) in seen_nodes:
                continue
            seen_nodes.add(id(node))
            if isinstance(node, yaml.MappingNode):
                stack.extend((value, (*path, key.value)) for key, value in node.value)
            elif isinstance(node, yaml.SequenceNode):
                stack.extend((item, (*path, index)) for index, item in enumerate(node.value))
        return None

    def line(self, path: Path_) -> int | None:
        """The line of the deepest node of ``path`` that exists (found by walking the node tree)."""
        import yaml

        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in path:
            child = None
            if isinstance(node, yaml.MappingNode):
                child = next((value for key, value in node.value
                              if isinstance(key, yaml.ScalarNode) and key.value == part), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                child = node.value[part]
            if child is None:
                break
            node = child
            line = node.start_mark.line + 1
        return line

    def error(self, message: str, path: Path_) -> ConfigError:
        return ConfigError(message, file=self.file, line=self.line(path), field=_format_path(path))


def load_policy(path: str | Path) -> Policy:
    """Read, validate and build a policy file (never more than ``MAX_POLICY_BYTES`` + 1 bytes are read)."""
    file = Path(path)
    try:
        with file.open("rb") as stream:
            data = stream.read(MAX_POLICY_BYTES + 1)
            if len(data) > MAX_POLICY_BYTES:
                raise _too_large(max(len(data), os.fstat(stream.fileno()).st_size), str(file))
    except OSError as exc:
        raise ConfigError(f"cannot read policy file: {exc.strerror or exc}", file=str(file)) from None
    return parse_policy_bytes(data, str(file))


def parse_policy_bytes(data: bytes, file: str = "tlsguard.yaml") -> Policy:
    """:func:`parse_policy` of a file's bytes (an OSS object, a packaged file): size and encoding checked first."""
    return parse_policy(decode_policy(data, file), file)


def parse_policy(text: str, file: str = "tlsguard.yaml") -> Policy:
    """Validate ``text`` against the schema and the guardrails; build the :class:`Policy`."""
    import jsonschema

    located = _Located(file, text)
    data = located.data
    if not isinstance(data, dict):
        raise ConfigError("the policy file must be a mapping with 'version' and 'defaults'", file=file, line=1)
    validator = jsonschema.Draft202012Validator(policy_schema(), format_checker=jsonschema.FormatChecker())
    errors = sorted(itertools.islice(validator.iter_errors(data), MAX_SCHEMA_ERRORS),
                    key=lambda e: (located.line(tuple(e.absolute_path)) or 0))
    if errors:
        first = errors[0]
        raise located.error(_schema_message(first), tuple(first.absolute_path))
    return _build(data, located)


def _schema_message(error: Any) -> str:
    """One short line per JSON Schema error: the offending value shown briefly, the bound it breaks."""
    kind, bound, value = error.validator, error.validator_value, error.instance
    if kind == "additionalProperties":
        known = error.schema.get("properties", {})
        extra = [key for key in value if key not in known] if isinstance(value, dict) else []
        return f"unknown field: {', '.join(_brief(key) for key in extra[:3])}"
    if kind == "uniqueItems":
        return "the same item appears twice"
    if kind == "enum":
        return f"{_brief(value)} is not one of: {', '.join(str(v) for v in bound)}"
    if kind in ("anyOf", "oneOf") and error.context and all(e.validator == "enum" for e in error.context):
        allowed = [str(v) for e in error.context for v in e.validator_value]
        return f"{_brief(value)} is not one of: {', '.join(allowed)}"
    if kind == "oneOf":
        return "give exactly one of the alternatives " + " / ".join(
            ", ".join(option.get("required", ())) or "?" for option in bound)
    if kind == "const":
        return f"{_brief(value)} must be {bound!r}"
    if kind == "type":
        return f"{_brief(value)} is not of type {bound if isinstance(bound, str) else ' or '.join(bound)}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        relation = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kind]
        return f"{_brief(value)} is out of range: must be {relation} {bound}"
    if kind in ("maxLength", "minLength"):
        return f"{_brief(value)} has {len(value):,} characters: {'at most' if kind == 'maxLength' else 'at least'} " \
               f"{bound}"
    if kind in ("maxItems", "minItems", "maxProperties", "minProperties"):
        noun = "items" if kind.endswith("Items") else "entries"
        return f"{len(value):,} {noun}: {'at most' if kind.startswith('max') else 'at least'} {bound}"
    if kind == "pattern":
        return f"{_brief(value)} does not match {bound}"
    return " ".join(str(error.message).split())[:200]

def _posture(raw: dict[str, Any], located: _Located, path: Path_) -> Posture:
    versions = None
    if "tls_versions" in raw:
        versions = frozenset(TlsVersion(v) for v in raw["tls_versions"])
    cipher = None
    if "cipher_suites" in raw:
        spec = raw["cipher_suites"]
        mode = CipherMode(spec["mode"])
        if mode is not CipherMode.CUSTOM and (spec.get("tls12") or spec.get("tls13")):
            raise located.error("tls12/tls13 lists need mode 'custom'", (*path, "cipher_suites", "mode"))
        cipher = CipherPolicy(mode, tuple(spec.get("tls12", ())), tuple(spec.get("tls13", ())))
    encryption = None
    if "encryption" in raw:
        spec = raw["encryption"]
        algorithm = EncryptionAlgorithm(spec["algorithm"])
        if algorithm is not EncryptionAlgorithm.KMS and (spec.get("kms_key_id") or spec.get("kms_data_encryption")):
            raise located.error("kms_key_id and kms_data_encryption need algorithm KMS", (*path, "encryption"))
        encryption = EncryptionPolicy(algorithm, spec.get("kms_key_id", ""), spec.get("kms_data_encryption", ""))
    return Posture(versions, cipher, raw.get("https_only"), encryption)


def overlay(base: Posture, top: Posture) -> Posture:
    """``top``'s managed parts replace ``base``'s."""
    return Posture(
        top.tls_versions if top.tls_versions is not None else base.tls_versions,
        top.cipher if top.cipher is not None else base.cipher,
        top.https_only if top.https_only is not None else base.https_only,
        top.encryption if top.encryption is not None else base.encryption,
    )


def guardrail_problems(posture: Posture) -> list[tuple[str, str]]:
    """(field, problem) for every way ``posture`` would weaken a bucket; empty when it is safe."""
    problems: list[tuple[str, str]] = []
    versions = posture.tls_versions
    if versions is not None and not versions & MODERN_VERSIONS:
        problems.append(("tls_versions", "leaves the bucket without TLS 1.2 or TLS 1.3"))
    cipher = posture.cipher
    if cipher is not None and cipher.mode is CipherMode.CUSTOM:
        if not cipher.tls12 and not cipher.tls13:
            problems.append(("cipher_suites", "custom cipher suites with an empty list"))
        unknown = [s for s in cipher.tls12 if s not in TLS12_SUITES]
        unknown += [s for s in cipher.tls13 if s not in TLS13_SUITES]
        if unknown:
            problems.append(("cipher_suites", f"unknown cipher suite names: {', '.join(unknown)}"))
        effective = versions if versions is not None else frozenset(TlsVersion)
        usable = (TlsVersion.TLS12 in effective and cipher.tls12) or (TlsVersion.TLS13 in effective and cipher.tls13)
        if (cipher.tls12 or cipher.tls13) and not usable:
            problems.append(("cipher_suites", "custom cipher suites without TLS 1.2/1.3 suites for an enabled version"))
    encryption = posture.encryption
    if encryption is not None and encryption.kms_key_id and not KMS_KEY_ID.match(encryption.kms_key_id):
        problems.append(("encryption.kms_key_id", f"malformed KMS key id {encryption.kms_key_id!r}"))
    return problems


def _build(data: dict[str, Any], located: _Located) -> Policy:
    defaults = _posture(data["defaults"], located, ("defaults",))
    for field, problem in guardrail_problems(defaults):
        raise located.error(f"guardrail: {problem}", ("defaults", *field.split(".")))
    rules: list[Rule] = []
    for index, raw in enumerate(data.get("rules", [])):
        path: Path_ = ("rules", index)
        posture = _posture(raw, located, path)
        insecure = raw.get("allow_insecure", {}).get("reason", "")
        if not insecure:
            for field, problem in guardrail_problems(overlay(defaults, posture)):
                raise located.error(f"guardrail: {problem} (set allow_insecure with a reason to accept this)",
                                    (*path, *field.split(".")))
        match = raw["match"]
        for field in ("names", "globs"):
            for position, pattern in enumerate(match.get(field, ())):
                _check_glob(pattern, located, (*path, "match", field, position), BUCKET_NAME_CHARACTERS)
        selector = Selector(
            names=frozenset(match.get("names", ())), globs=tuple(match.get("globs", ())),
            regions=frozenset(match.get("regions", ())), tags=tuple(sorted(match.get("tags", {}).items())),
        )
        rules.append(Rule(raw["name"], selector, posture, Mode(raw["mode"]) if "mode" in raw else None,
                          insecure, located.line(path)))
    waivers = []
    for index, raw in enumerate(data.get("waivers", [])):
        field = "target" if "target" in raw else "bucket"
        _check_glob(raw[field], located, ("waivers", index, field))
        try:
            expires = dt.date.fromisoformat(raw["expires"])
        except ValueError as exc:
            raise located.error(f"invalid date {raw['expires']!r}", ("waivers", index, "expires")) from exc
        waivers.append(Waiver(raw.get("target") or raw["bucket"], raw["reason"], expires,
                              frozenset(_canonical_check(c) for c in raw.get("checks", ())),
                              frozenset(TargetKind(k) for k in raw.get("kinds", ()))))
    guard_raw = data.get("guard", {})
    guard = Guard(
        max_remediations=guard_raw.get("max_remediations", Guard.max_remediations),
        window_minutes=guard_raw.get("window_minutes", Guard.window_minutes),
        own_principals=tuple(guard_raw.get("own_principals", Guard.own_principals)),
    )
    from tlsguard.certs.policy import cdn_policy_from_mapping, cert_policy_from_mapping

    certificates = data.get("certificates") or {}
    try:
        cert_policy = cert_policy_from_mapping(certificates, source=located.file)
        cdn_policy = cdn_policy_from_mapping(certificates.get("cdn_https"), source=located.file)
    except ConfigError as exc:
        path = ("certificates", *[p for p in exc.field.split(".")[1:] if p])
        raise located.error(exc.reason, path) from None
    verify_raw = data.get("verify", {})
    default_window = float(verify_raw.get("propagation_minutes", DEFAULT_PROPAGATION_SECONDS / 60)) * 60
    windows = {kind: float(verify_raw.get("per_kind", {}).get(kind.value, default_window / 60)) * 60
               for kind in TargetKind}
    verify = VerifySettings(windows, int(verify_raw.get("attempts_before_alert", 3)))
    alert_settings = _alert_settings(data.get("alerts", {}), located)
    heartbeat_raw = data.get("heartbeat", {})
    heartbeat = HeartbeatSettings(bool(heartbeat_raw.get("enabled", True)),
                                  float(heartbeat_raw.get("max_lag_minutes", HeartbeatSettings.max_lag_minutes)))
    state = data.get("state", {})
    return Policy(
        defaults=defaults, mode=Mode(data.get("mode", "enforce")), rules=tuple(rules), waivers=tuple(waivers),
        state_bucket=state.get("bucket", ""), state_prefix=state.get("prefix", "tlsguard/"), guard=guard,
        rate_limits=tuple(sorted((k, float(v)) for k, v in data.get("rate_limits", {}).items())),
        source=located.file, certificates=cert_policy, cdn_https=cdn_policy, verify=verify,
        alerts=alert_settings, heartbeat=heartbeat,
    )


#: What each channel type needs from the environment (checked when the policy is loaded, values when a run starts).
_CHANNEL_NEEDS = {"dingtalk": ("url_env",), "wecom": ("url_env",), "lark": ("url_env",), "slack": ("url_env",),
                  "email": ("smtp_host", "from", "to"), "webhook": ()}


def _alert_settings(raw: dict[str, Any], located: _Located) -> AlertSettings:
    """``alerts:``: channels (unique names, what each type needs), routes naming known channels, language."""
    channels: list[ChannelSpec] = []
    for index, item in enumerate(raw.get("channels", [])):
        path: Path_ = ("alerts", "channels", index)
        missing = [key for key in _CHANNEL_NEEDS[item["type"]] if key not in item]
        if missing:
            raise located.error(f"a {item['type']} channel needs {', '.join(missing)}", path)
        if item["type"] == "webhook" and "url_env" not in item:
            raise located.error("a webhook channel needs url_env", path)
        if any(c.name == item["name"] for c in channels):
            raise located.error(f"duplicate channel name {item['name']!r}", (*path, "name"))
        options = {k: v for k, v in item.items() if k not in ("name", "type", "url_env", "secret_env")}
        channels.append(ChannelSpec(item["name"], item["type"], item.get("url_env", ""), item.get("secret_env", ""),
                                    options=options))
    if "webhook" in raw:  # the earlier single-webhook form: a channel named "webhook"
        hook = raw["webhook"]
        if any(c.name == "webhook" for c in channels):
            raise located.error("alerts.webhook and a channel named 'webhook' cannot both be given", ("alerts",))
        channels.append(ChannelSpec("webhook", "webhook", secret_env=hook.get("secret_env", "TLSGUARD_WEBHOOK_SECRET"),
                                    url=hook["url"], options={k: v for k, v in hook.items()
                                                              if k in ("timeout_seconds", "attempts")}))
    names = {c.name for c in channels}
    routes: list[Route] = []
    for index, item in enumerate(raw.get("routes", [])):
        unknown = [name for name in item["channels"] if name not in names]
        if unknown:
            raise located.error(f"unknown channel {unknown[0]!r} (channels: {', '.join(sorted(names)) or 'none'})",
                                ("alerts", "routes", index, "channels"))
        match = item.get("match", {})
        for glob in match.get("target", []):
            _check_glob(glob, located, ("alerts", "routes", index, "match", "target"))
        routes.append(Route(RouteMatch(frozenset(match.get("severity", [])),
                                       frozenset(_canonical_check(c) if c not in ("live", "target") else c
                                                 for c in match.get("check", [])),
                                       frozenset(match.get("kind", [])), tuple(match.get("target", []))),
                            tuple(item["channels"])))
    return AlertSettings(tuple(sorted(float(h) for h in raw.get("reminder_hours", (24, 72, 168)))),
                         raw.get("language", "en"), tuple(channels), tuple(routes),
                         float(raw.get("outbox_hours", 24.0)))


def _check_glob(glob: str, located: _Located, path: Path_, alphabet: frozenset[str] | None = None) -> None:
    """A glob that is malformed or can never match (``logs-[``, ``[z-a]``, ``Logs-*`` for a bucket) is refused."""
    problem = glob_problem(glob, alphabet)
    if problem:
        raise located.error(f"invalid glob {_brief(glob)}: {problem}", path)


def _canonical_check(check_id: str) -> str:
    from tlsguard.checks import REGISTRY

    return REGISTRY.canonical(check_id)


def selector_matches(selector: Selector, bucket: str, region: str, tags: dict[str, str] | None) -> bool:
    if selector.names and bucket not in selector.names:
        return False
    if selector.globs and not any(fnmatch.fnmatchcase(bucket, g) for g in selector.globs):
        return False
    if selector.regions and region not in selector.regions:
        return False
    if selector.tags:
        tags = tags or {}
        return all(key in tags and (value == "*" or tags[key] == value) for key, value in selector.tags)
    return True


def resolve(policy: Policy, target: TargetRef, tags: dict[str, str] | None, today: dt.date,
            mode_override: Mode | None = None) -> Desired:
    """The desired state of one target (rules select buckets; domains take the certificates section)."""
    mode = policy.mode
    names: list[str] = []
    posture = Posture()
    refusal = ""
    if target.kind is TargetKind.OSS_BUCKET:
        posture = policy.defaults
        insecure_ok = False
        for position in policy.index.rules_for(target.name, target.region, tags):
            rule = policy.rules[position]
            if selector_matches(rule.selector, target.name, target.region, tags):
                posture = overlay(posture, rule.posture)
                mode = rule.mode or mode
                names.append(rule.name)
                insecure_ok = insecure_ok or bool(rule.allow_insecure_reason)
        if not insecure_ok:
            problems = guardrail_problems(posture)
            if problems:
                refusal = "combined rules break a guardrail: " + "; ".join(f"{f}: {p}" for f, p in problems)
    if mode_override is not None:
        mode = mode_override
    waived: list[tuple[str, str]] = []
    expired: list[str] = []
    for position in policy.index.waivers_for(target.name):
        waiver = policy.waivers[position]
        if waiver.kinds and target.kind not in waiver.kinds:
            continue
        if not fnmatch.fnmatchcase(target.name, waiver.target):
            continue
        checks = sorted(waiver.checks) or ["*"]
        if waiver.active(today):
            waived.extend((check, waiver.reason) for check in checks)
        else:
            label = ", ".join(sorted(waiver.checks)) or "all checks"
            expired.append(f"{label}: {waiver.reason} (expired {waiver.expires.isoformat()})")
    is_domain = target.kind is not TargetKind.OSS_BUCKET
    return Desired(target, mode, posture, policy.certificates if is_domain else None,
                   policy.cdn_https if target.kind is TargetKind.CDN_DOMAIN else None, tuple(names), tuple(waived),
                   tuple(expired), refusal, policy.verify.window(target.kind))
