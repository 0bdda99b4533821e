"""Globs as the policy file writes them: validated when it is loaded, and indexed so matching does not grow with rules.

``glob_problem`` reads a glob the way :func:`fnmatch.fnmatchcase` does and says why it can never match (an
unclosed ``[`` is a literal ``[`` to fnmatch, so ``logs-[`` silently matches nothing) or names characters no target
can contain. :class:`PolicyIndex` answers "which rules and waivers may apply to this target" with dictionary
lookups (exact names, literal prefixes and suffixes of globs, tags, regions), so resolving every target of a fleet
against a policy of thousands of rules costs about the rules that match rather than rules x targets. The index only
narrows: the caller still checks each candidate in full, so it can never change which rules apply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from tlsguard.policy.model import Rule, Waiver

#: Bucket names are 3 to 63 lowercase letters, digits and hyphens
#: (https://www.alibabacloud.com/help/en/oss/user-guide/bucket-naming-conventions).
BUCKET_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_WILDCARDS = frozenset("*?[")


def glob_problem(glob: str, alphabet: frozenset[str] | None = None) -> str | None:
    """Why ``glob`` is malformed or can never match a name spelled from ``alphabet``; ``None`` when it is usable.

    Follows fnmatch's reading: ``[`` opens a set closed by the next ``]`` (a ``]`` right after ``[`` or ``[!`` is a
    member), ``a-z`` is a range, ``[!...]`` negates; there is no escape character.
    """
    if not glob:
        return "an empty glob matches nothing"
    position, length = 0, len(glob)
    while position < length:
        char = glob[position]
        position += 1
        if char in "*?":
            continue
        if char != "[":
            if alphabet is not None and char not in alphabet:
                return f"{char!r} cannot appear in a name it should match"
            continue
        end = position
        if end < length and glob[end] == "!":
            end += 1
        if end < length and glob[end] == "]":
            end += 1
        while end < length and glob[end] != "]":
            end += 1
        if end >= length:
            return f"'[' at position {position - 1} is never closed by ']' (fnmatch would read it as a literal '[')"
        problem = _set_problem(glob[position:end], alphabet)
        if problem:
            return problem
        position = end + 1
    return None


def _set_problem(members: str, alphabet: frozenset[str] | None) -> str | None:
    """A ``[...]`` set (without its brackets) that is empty, holds an empty range, or no usable character."""
    negated = members.startswith("!")
    body = members[1:] if negated else members
    ranges: list[tuple[str, str]] = []
    index = 0
    while index < len(body):
        if index + 2 < len(body) and body[index + 1] == "-":
            low, high = body[index], body[index + 2]
            if low > high:
                return f"the range {low}-{high} in [{members}] is empty"
            ranges.append((low, high))
            index += 3
        else:
            ranges.append((body[index], body[index]))
            index += 1
    if not ranges:
        return "[] is an empty set" if not negated else None
    if alphabet is not None and not negated and not any(low <= c <= high for low, high in ranges for c in alphabet):
        return f"[{members}] holds no character a name it should match can contain"
    return None


def literal_prefix(glob: str) -> str:
    """The characters before the first wildcard: every name the glob matches starts with them."""
    for index, char in enumerate(glob):
        if char in _WILDCARDS:
            return glob[:index]
    return glob


def literal_suffix(glob: str) -> str:
    """The characters after the last wildcard or bracket: every name the glob matches ends with them."""
    for index in range(len(glob) - 1, -1, -1):
        if glob[index] in "*?[]":
            return glob[index + 1:]
    return glob


class GlobIndex:
    """Positions of the globs that may match a name, found by lookups instead of trying every glob.

    A glob without wildcards is looked up exactly; one with a literal prefix (``logs-*``) by the name's prefixes of
    the lengths in use; one starting with a wildcard by its literal suffix (``*-prod``); only globs with wildcards
    at both ends (``*prod*``) are candidates for every name.
    """

    def __init__(self) -> None:
        self._exact: dict[str, list[int]] = {}
        self._prefixes: dict[str, list[int]] = {}
        self._suffixes: dict[str, list[int]] = {}
        self._prefix_lengths: set[int] = set()
        self._suffix_lengths: set[int] = set()
        self._everywhere: list[int] = []

    def add(self, glob: str, position: int) -> None:
        if not _WILDCARDS.intersection(glob):
            self._exact.setdefault(glob, []).append(position)
        elif prefix := literal_prefix(glob):
            self._prefixes.setdefault(prefix, []).append(position)
            self._prefix_lengths.add(len(prefix))
        elif suffix := literal_suffix(glob):
            self._suffixes.setdefault(suffix, []).append(position)
            self._suffix_lengths.add(len(suffix))
        else:
            self._everywhere.append(position)

    def candidates(self, name: str, into: set[int]) -> None:
        """Add to ``into`` the position of every glob that may match ``name`` (a superset of those that do)."""
        into.update(self._exact.get(name, ()))
        for size in self._prefix_lengths:
            if size <= len(name):
                into.update(self._prefixes.get(name[:size], ()))
        for size in self._suffix_lengths:
            if size <= len(name):
                into.update(self._suffixes.get(name[len(name) - size:], ()))
        into.update(self._everywhere)


class PolicyIndex:
    """Which rules and waivers of a policy may apply to a target, in policy order.

    Each rule is filed under its most selective criterion (every criterion of a selector must hold, so any one of
    them is a sound key): its names, else its globs, else its first tag, else its regions; a rule with none of these
    is a candidate for every bucket. Waivers are filed under their target glob.
    """

    def __init__(self, rules: Sequence[Rule], waivers: Sequence[Waiver]) -> None:
        self._rule_names = GlobIndex()
        self._rule_tags: dict[tuple[str, str], list[int]] = {}
        self._rule_regions: dict[str, list[int]] = {}
        self._rules_everywhere: list[int] = []
        for position, rule in enumerate(rules):
            selector = rule.selector
            if selector.names or selector.globs:
                for pattern in (*selector.names, *selector.globs):
                    self._rule_names.add(pattern, position)
            elif selector.tags:
                self._rule_tags.setdefault(selector.tags[0], []).append(position)
            elif selector.regions:
                for region in selector.regions:
                    self._rule_regions.setdefault(region, []).append(position)
            else:
                self._rules_everywhere.append(position)
        self._waivers = GlobIndex()
        for position, waiver in enumerate(waivers):
            self._waivers.add(waiver.target, position)

    def rules_for(self, name: str, region: str, tags: Mapping[str, str] | None) -> list[int]:
        """Positions of the rules that may select this bucket (check each with ``selector_matches``), in order."""
        found: set[int] = set(self._rules_everywhere)
        self._rule_names.candidates(name, found)
        found.update(self._rule_regions.get(region, ()))
        for key, value in (tags or {}).items():
            found.update(self._rule_tags.get((key, value), ()))
            found.update(self._rule_tags.get((key, "*"), ()))
        return sorted(found)

    def waivers_for(self, name: str) -> list[int]:
        """Positions of the waivers whose target glob may match ``name`` (check each with fnmatch), in order."""
        found: set[int] = set()
        self._waivers.candidates(name, found)
        return sorted(found)

