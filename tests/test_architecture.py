"""The layer rules of docs/architecture.md, checked on the source: no forbidden import between parts of kgemo, and
no import cycle inside a part (imports inside functions count too: a lazy import is still a dependency)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kgemo"

#: (part, part it must not import). Parts are kgemo's sub-packages and top-level modules.
FORBIDDEN = {
    ("graphs", "knowledge"), ("graphs", "encoders"), ("graphs", "pipeline"), ("graphs", "models"),
    ("graphs", "training"), ("knowledge", "graphs"), ("knowledge", "pipeline"), ("encoders", "graphs"),
    ("encoders", "knowledge"), ("encoders", "models"), ("data", "graphs"), ("data", "models"),
    ("data", "encoders"), ("data", "knowledge"), ("data", "training"), ("nn", "data"), ("nn", "graphs"),
    ("models", "training"), ("models", "pipeline"), ("metrics", "models"), ("graphs", "adapt"),
} | {("adapt", part) for part in ("data", "graphs", "knowledge", "encoders", "pipeline", "models", "training")} \
  | {(part, "cli") for part in ("data", "encoders", "knowledge", "graphs", "nn", "models", "training", "metrics",
                                "annotate", "pipeline", "adapt")}


def _imports(path: Path) -> set[tuple[str, ...]]:
    """Dotted kgemo module paths imported by ``path`` (absolute and relative, at any depth)."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("").parts   # ("kgemo", "graphs", "base")
    package = rel[:-1] if rel[-1] != "__init__" else rel[:-1]
    out: set[tuple[str, ...]] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                mod = base + tuple((node.module or "").split(".")) if node.module else base
                names = [mod + (a.name,) for a in node.names] if not node.module else [mod]
            else:
                names = [tuple(node.module.split("."))] if node.module else []
            out.update(n for n in names if n[:1] == ("kgemo",))
        elif isinstance(node, ast.Import):
            out.update(tuple(a.name.split(".")) for a in node.names if a.name.split(".")[0] == "kgemo")
    return out


def _modules() -> dict[tuple[str, ...], set[tuple[str, ...]]]:
    return {f.relative_to(PACKAGE.parent).with_suffix("").parts: _imports(f) for f in PACKAGE.rglob("*.py")}


def _part(mod: tuple[str, ...]) -> str | None:
    return mod[1] if len(mod) > 1 else None


def forbidden_arrows(modules) -> list[str]:
    bad = []
    for mod, targets in modules.items():
        for t in targets:
            pair = (_part(mod), _part(t))
            if pair in FORBIDDEN:
                bad.append(f"{'/'.join(mod)}.py imports {'.'.join(t)} ({pair[0]} -> {pair[1]} is forbidden)")
    return sorted(bad)


def cycles(modules) -> list[list[str]]:
    """Import cycles between the modules of one part (module = first three path components)."""
    def key(m):
        m = m[:3]
        return m[:-1] if m[-1] == "__init__" else m

    graph: dict[tuple, set[tuple]] = {}
    for mod, targets in modules.items():
        src = key(mod)
        for t in targets:
            dst = key(t)
            if len(src) == 3 and len(dst) == 3 and src[1] == dst[1] and src != dst:
                graph.setdefault(src, set()).add(dst)
    found, seen_sets = [], set()
    for start in graph:
        stack = [(start, [start])]
        visited = set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    cyc = frozenset(path)
                    if cyc not in seen_sets:
                        seen_sets.add(cyc)
                        found.append(["/".join(p) for p in path + [start]])
                elif nxt not in visited:
                    visited.add(nxt)
                    stack.append((nxt, path + [nxt]))
    return found


def test_no_forbidden_import_between_parts():
    assert forbidden_arrows(_modules()) == []


def test_no_import_cycle_inside_a_part():
    assert cycles(_modules()) == []


def test_the_checker_sees_what_it_should(tmp_path):
    # The rules are only worth something if a violation is found: feed the checks a made-up package.
    fake = {("kgemo", "graphs", "x"): {("kgemo", "knowledge", "conceptnet")},
            ("kgemo", "knowledge", "a"): {("kgemo", "knowledge", "b")},
            ("kgemo", "knowledge", "b"): {("kgemo", "knowledge", "a")}}
    assert forbidden_arrows(fake) == ["kgemo/graphs/x.py imports kgemo.knowledge.conceptnet "
                                      "(graphs -> knowledge is forbidden)"]
    assert len(cycles(fake)) == 1


@pytest.mark.parametrize("relative,expected", [
    ("from ..knowledge import ConceptNetKB", ("kgemo", "knowledge")),
    ("from .store import load_cache", ("kgemo", "graphs", "store")),
    ("from . import base", ("kgemo", "graphs", "base")),
    ("import kgemo.encoders", ("kgemo", "encoders")),
])
def test_imports_are_resolved(tmp_path, relative, expected, monkeypatch):
    f = PACKAGE / "graphs" / "base.py"
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: f"def f():\n    {relative}\n")
    assert _imports(f) == {expected}
