"""No import circle among assay's modules, and no import of a higher layer.

The graph is read from the source with `ast`: every ``import`` and ``from ... import`` of an
``assay`` module, at module level, inside functions and under ``if TYPE_CHECKING:`` alike,
plus ``importlib.import_module("assay....")`` with a literal name. ``from pkg import name``
points at the submodule ``pkg.name`` when there is one, else at ``pkg`` itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import assay

_SRC = Path(assay.__file__).parent

#: Layers from the bottom up: a module may import its own layer, a lower one, and the
#: modules of its own package; never a higher layer. A module belongs to the longest
#: prefix listed.
_LAYERS: tuple[tuple[str, ...], ...] = (
    ("assay", "assay._validation", "assay._stats", "assay._serial"),
    ("assay.groups",),
    ("assay.data", "assay.learners"),
    ("assay.engine",),
    ("assay.section",),
    ("assay.report",),  # the result types and figure helpers every section writes to
    ("assay.audit",),
    # Pillars: found by the audit through entry points, never imported by the core.
    ("assay.privacy.theory",),
    ("assay.privacy", "assay.fairness", "assay.multiplicity"),
    ("assay.privacy.membership",),
    ("assay.privacy.attribute", "assay.privacy.distribution", "assay.privacy.release",
     "assay.privacy.training"),
    ("assay.synth",),  # scores its releases with privacy.membership's estimates
    # Surfaces.
    ("assay.web",),
    ("assay.cli", "assay.__main__"),
)

#: Imports of a module's own package made inside a function, to look a name up on the
#: package when called (where tests and profilers replace it): the package has finished
#: loading long before, so they close no circle at import time.
_LATE_LOOKUPS = {
    ("assay.engine.fit", "assay.engine"): "population_fitter's fit: assay.engine.fit_population",
}


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in sorted(_SRC.rglob("*.py")):
        parts = ["assay", *path.relative_to(_SRC).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def _graph() -> dict[str, dict[str, tuple[int, bool]]]:
    """module -> {imported module: (line, whether the import is inside a function)}."""
    modules = _modules()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, dict[str, tuple[int, bool]]] = {m: {} for m in modules}
    for module, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text("utf-8"))
        package = module if is_package else module.rpartition(".")[0]
        in_function = {id(n) for f in ast.walk(tree)
                       if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
                       for n in ast.walk(f)}
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                         for a in node.names]
            elif (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module")
                  and node.args and isinstance(node.args[0], ast.Constant)
                  and isinstance(node.args[0].value, str)):
                names = [node.args[0].value]
            for name in names:
                target = known(name) if name.startswith("assay") else None
                if target and target != module:
                    edges[module].setdefault(target, (node.lineno, id(node) in in_function))
    return edges


def _circles(edges: dict[str, dict[str, tuple[int, bool]]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(edges[w])))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _layer(module: str) -> int:
    best, rank = "", -1
    for i, prefixes in enumerate(_LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > len(best):
                best, rank = p, i
    assert rank >= 0, f"{module} is in no layer of _LAYERS"
    return rank


def test_the_graph_sees_imports_at_every_level():
    edges = _graph()
    assert len(edges) > 100
    # A module-level import, a function-level one and one under TYPE_CHECKING.
    assert edges["assay.engine.fit"]["assay.engine.cache"][1] is False
    assert edges["assay.synth.section"]["assay.synth.run"][1] is True
    assert "assay.engine.plan" in edges["assay.engine"]
    # `from assay.engine import population` is the submodule, not the package.
    assert "assay.engine.population" in edges["assay.engine.cache"]
    assert "assay.engine" not in edges["assay.engine.cache"]


def test_the_circle_finder_finds_a_circle():
    edges = {"a": {"b": (1, False)}, "b": {"c": (1, True)}, "c": {"a": (1, False)},
             "d": {"a": (1, False)}}
    assert _circles(edges) == [["a", "b", "c"]]
    assert _circles({"a": {"b": (1, False)}, "b": {}}) == []


def test_no_import_circle():
    edges = _graph()
    for (module, package), why in _LATE_LOOKUPS.items():
        # Each allowed edge still exists and is still inside a function (else drop it here).
        assert edges[module][package][1] is True, (module, package, why)
        assert package == module.rpartition(".")[0]
        del edges[module][package]
    circles = _circles(edges)
    lines = [f"{a}:{edges[a][b][0]} -> {b}" for c in circles for a in c for b in edges[a]
             if b in c]
    assert not circles, "import circles:\n" + "\n".join(lines)


def test_no_upward_import():
    edges = _graph()
    upward = [f"{a}:{line} -> {b}" for a, targets in edges.items()
              for b, (line, _) in targets.items()
              if _layer(b) > _layer(a) and not b.startswith(a + ".")]
    assert not upward, "imports of a higher layer:\n" + "\n".join(upward)
