"""The handlers stay thin: each parses the bytes FC hands over and calls one use case (issue 13, item 10)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from tlsguard.functions import handlers

pytestmark = pytest.mark.unit

HANDLERS_PY = Path(handlers.__file__)
MAX_LINES = 40
HANDLERS = ("sweep", "check", "on_change", "webhook", "cert_renewal", "failed")


def definitions() -> dict[str, ast.FunctionDef]:
    tree = ast.parse(HANDLERS_PY.read_text())
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_every_deployed_handler_is_defined_and_exported() -> None:
    found = definitions()
    assert set(HANDLERS) <= set(found) and set(HANDLERS) <= set(handlers.__all__)
    entry_points = {p.parent.name for p in (HANDLERS_PY.parents[3] / "functions").glob("*/index.py")}
    assert entry_points == set(HANDLERS)


@pytest.mark.parametrize("name", HANDLERS)
def test_a_handler_is_at_most_forty_lines(name: str) -> None:
    node = definitions()[name]
    assert node.end_lineno is not None
    length = node.end_lineno - node.lineno + 1
    assert length <= MAX_LINES, f"handlers.{name} is {length} lines; move the work into functions/service.py"


@pytest.mark.parametrize("name", HANDLERS)
def test_a_handler_only_parses_and_calls_the_service(name: str) -> None:
    node = definitions()[name]
    called = {f"{c.func.value.id}.{c.func.attr}" for c in ast.walk(node)
              if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and isinstance(c.func.value, ast.Name)}
    assert any(call.startswith("service.") for call in called), f"handlers.{name} calls no use case: {called}"
    loops = [n for n in ast.walk(node) if isinstance(n, (ast.For, ast.While, ast.AsyncFor, ast.comprehension))]
    assert not loops, f"handlers.{name} loops over something: that work belongs in the service"

