"""Layer test: which package of ``hardneg`` may import which, read from the source with ``ast``.

Every import of a hardneg module is collected, at module level and inside functions alike:
``import hardneg.x``, ``from hardneg.x import y``, relative forms (``from . import y``,
``from ..core import errors``), ``from hardneg import name`` (resolved through the public ``_API``
table to the module that defines ``name``) and ``importlib.import_module("hardneg.x")`` with a
literal (or an f-string with a literal ``hardneg.x.`` prefix). Three rules are checked:

(a) package arrows (``ALLOWED``); (b) no ``_private`` name is imported from another top-level
package; (c) the module graph has no cycle. ``hardneg/__init__.py`` and ``hardneg/_legacy.py``
are exempt as importers: they name modules only as strings, loaded lazily.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "hardneg"

#: importer layer -> layers it may import (its own layer is always allowed). ``mining`` is the
#: pure part of mining (masks, selection, ensembles, judges, mine()); ``mining.teachers`` are the
#: teachers, which encode, search and scale.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "data": {"core"},
    "encode": {"core"},
    "search": {"core"},
    "scale": {"core", "encode", "search"},
    "mining": {"core", "data"},
    "mining.teachers": {"core", "data", "encode", "search", "scale", "mining"},
    "training": {"core", "data", "encode"},
    "evaluation": {"core", "data", "encode", "search"},
    "analysis": {"core", "data"},
    "report": {"core", "analysis"},
    "compat": {"core", "data", "encode", "search", "scale", "mining", "mining.teachers"},
    "experiment": {"core", "data", "encode", "search", "scale", "mining", "mining.teachers",
                   "training", "evaluation", "analysis", "report", "compat"},
    "cli": {"core", "data", "encode", "search", "scale", "mining", "mining.teachers",
            "training", "evaluation", "analysis", "report", "experiment", "compat"},
    "__main__": {"cli"},
}
#: importers that only name modules as strings or lazily
EXEMPT = {"hardneg", "hardneg._legacy"}

#: (importer module, imported module) pairs the real tree has and the rules forbid, each with the
#: reason it is tolerated for now. Keep this empty; an entry is a bug report, not a permission.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    importer: str  # module doing the import, e.g. "hardneg.mining.mine"
    target: str  # module imported, e.g. "hardneg.core.errors"
    names: tuple[str, ...]  # names taken from it (``from target import a, b``), else ()
    file: str
    line: int
    dynamic: bool = False  # f"hardneg.cli.{name}": only the package is known, so no graph edge

    def where(self) -> str:
        return f"{self.file}:{self.line}"


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def layer(module: str) -> str:
    """``hardneg.mining.teachers.bm25`` -> ``mining.teachers``; ``hardneg.data.load`` -> ``data``."""
    parts = module.split(".")[1:]
    if not parts:
        return ROOT
    if parts[:2] == ["mining", "teachers"]:
        return "mining.teachers"
    return parts[0]


def top(module: str) -> str:
    """Top-level package: ``hardneg.mining.teachers.bm25`` -> ``mining``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def read_api(src: Path = SRC) -> dict[str, str]:
    """The public ``_API`` table (name -> defining module) of ``hardneg/__init__.py``."""
    tree = ast.parse((src / ROOT / "__init__.py").read_text())
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "_API" for t in targets):
            return ast.literal_eval(node.value)
    return {}


def _literal_prefix(node: ast.expr) -> tuple[str, bool] | None:
    """A string literal -> (value, True); an f-string -> (its literal head, False)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, True
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return str(node.values[0].value), False
    return None


def imports_in(source: str, module: str, file: str, *, package: bool, modules: set[str],
               api: dict[str, str]) -> list[Import]:
    """Every hardneg import in ``source`` (the text of ``module``), at any depth of the tree."""
    found: list[Import] = []
    here = module if package else module.rpartition(".")[0]  # package relative imports start from

    def add(target: str, names: tuple[str, ...], line: int, dynamic: bool = False) -> None:
        found.append(Import(module, target, names, file, line, dynamic))

    def from_import(base: str, names: list[str], line: int) -> None:
        for name in names:
            sub = f"{base}.{name}"
            if sub in modules:  # ``from hardneg.mining import teachers``: a submodule
                add(sub, (), line)
            elif base == ROOT and name in api:  # ``from hardneg import mine``: the lazy API
                add(api[name], (name,), line)
            else:
                add(base, (name,), line)

    for node in ast.walk(ast.parse(source, filename=file)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == ROOT or alias.name.startswith(ROOT + "."):
                    add(alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = here.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base == ROOT or base.startswith(ROOT + "."):
                from_import(base, [a.name for a in node.names], node.lineno)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if fname not in {"import_module", "__import__"}:
                continue
            lit = _literal_prefix(node.args[0])
            if lit is None:
                continue
            text, whole = lit
            if not whole:  # f"hardneg.cli.{name}": only the literal package head is known
                text = text.rpartition(".")[0]
            if text == ROOT or text.startswith(ROOT + "."):
                add(text, (), node.lineno, dynamic=not whole)
    return found


def _relpath(path: Path, src: Path) -> str:
    try:
        return str(path.relative_to(src.parent))
    except ValueError:
        return str(path)


def collect(src: Path = SRC, extra: dict[str, str] | None = None) -> tuple[set[str], list[Import]]:
    """All modules under ``src/hardneg`` and all their hardneg imports.

    ``extra`` maps a module name to a made-up source, added to (or replacing) the real tree: the
    self-tests use it to show the checks can fail.
    """
    files = {module_name(p, src): p for p in sorted((src / ROOT).rglob("*.py"))}
    modules = set(files) | set(extra or {})
    api = read_api(src)
    found: list[Import] = []
    for mod in sorted(modules):
        if extra and mod in extra:
            text, file, package = extra[mod], f"<fake {mod}>", False
        else:
            path = files[mod]
            text, file, package = path.read_text(), _relpath(path, src), is_package(path)
        found += imports_in(text, mod, file, package=package, modules=modules, api=api)
    return modules, found


def arrow_errors(found: list[Import], exceptions=KNOWN_EXCEPTIONS) -> list[str]:
    errors = []
    for imp in found:
        if imp.importer in EXEMPT:
            continue
        src_l, dst_l = layer(imp.importer), layer(imp.target)
        if dst_l == ROOT:
            # ``from hardneg import __version__``: the root package is always loaded first
            # anyway; only its dunders may be taken, everything else goes through _API above
            if all(n.startswith("__") for n in imp.names) and imp.names:
                continue
            errors.append(f"{imp.where()}: {imp.importer} -> {imp.target} {list(imp.names)} "
                          f"(import the defining module, not the hardneg root)")
            continue
        if dst_l == src_l or dst_l in ALLOWED.get(src_l, set()):
            continue
        if (imp.importer, imp.target) in exceptions:
            continue
        allowed = ", ".join(sorted(ALLOWED.get(src_l, set()))) or "nothing of ours"
        errors.append(f"{imp.where()}: forbidden arrow {src_l} -> {dst_l} "
                      f"({imp.importer} imports {imp.target}; {src_l} may import {allowed})")
    return errors


def private_errors(found: list[Import]) -> list[str]:
    errors = []
    for imp in found:
        if imp.importer in EXEMPT or top(imp.importer) == top(imp.target):
            continue
        private = lambda n: n.startswith("_") and not n.startswith("__")  # noqa: E731
        bad = [n for n in imp.names if private(n)]
        bad += [p for p in imp.target.split(".") if private(p)]
        if bad:
            errors.append(f"{imp.where()}: {imp.importer} imports private {', '.join(bad)} "
                          f"from {imp.target} (another package: {top(imp.importer)} -> {top(imp.target)})")
    return errors


def find_cycle(modules: set[str], found: list[Import]) -> list[Import] | None:
    """One import cycle between modules (as the imports that close it), or None."""
    graph: dict[str, list[Import]] = {m: [] for m in modules}
    for imp in found:
        if imp.dynamic or imp.importer in EXEMPT or imp.target in EXEMPT or imp.target not in modules:
            continue
        if imp.target != imp.importer:
            graph[imp.importer].append(imp)
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[Import] = []

    def visit(mod: str) -> list[Import] | None:
        state[mod] = 1
        for imp in graph[mod]:
            if state.get(imp.target) == 1:
                start = next((i for i, e in enumerate(stack) if e.importer == imp.target), len(stack))
                return stack[start:] + [imp]
            if imp.target not in state:
                stack.append(imp)
                cycle = visit(imp.target)
                if cycle:
                    return cycle
                stack.pop()
        state[mod] = 2
        return None

    for mod in sorted(graph):
        if mod not in state:
            cycle = visit(mod)
            if cycle:
                return cycle
    return None


def describe(cycle: list[Import]) -> str:
    return "import cycle: " + " -> ".join([cycle[0].importer] + [i.target for i in cycle]) + "\n" + "\n".join(
        f"  {i.where()}: {i.importer} -> {i.target}" for i in cycle)


# --------------------------------------------------------------------------- the real tree


def test_tree_is_found():
    modules, found = collect()
    assert {"hardneg.core.errors", "hardneg.mining.teachers.bm25", "hardneg.cli.main"} <= modules
    assert len(found) > 50
    assert set(ALLOWED) >= {layer(m) for m in modules} - {ROOT, "_legacy"}


def test_package_arrows():
    _, found = collect()
    errors = arrow_errors(found)
    assert not errors, "forbidden imports:\n" + "\n".join(errors)


def test_no_private_names_across_packages():
    _, found = collect()
    errors = private_errors(found)
    assert not errors, "private names imported across packages:\n" + "\n".join(errors)


def test_no_import_cycles():
    modules, found = collect()
    cycle = find_cycle(modules, found)
    assert cycle is None, describe(cycle)


def test_known_exceptions_are_still_needed():
    _, found = collect()
    pairs = {(i.importer, i.target) for i in found}
    assert not set(KNOWN_EXCEPTIONS) - pairs, "an exception no longer needed: remove it"


# --------------------------------------------------------------------------- the checker can fail


def test_checker_fails_on_forbidden_import_in_core():
    _, found = collect(extra={"hardneg.core.fake": "def f():\n    from hardneg.cli.main import main\n"})
    errors = [e for e in arrow_errors(found) if "hardneg.core.fake" in e]
    assert errors == ["<fake hardneg.core.fake>:2: forbidden arrow core -> cli (hardneg.core.fake imports "
                      "hardneg.cli.main; core may import nothing of ours)"]


def test_checker_sees_every_import_form():
    source = (
        "import hardneg.mining.mine\n"
        "from hardneg.training import config\n"
        "from ..evaluation.run import evaluate\n"
        "from hardneg import read_negatives, __version__\n"
        "def f():\n"
        "    import importlib\n"
        "    importlib.import_module('hardneg.scale.engine')\n"
        "    return importlib.import_module(f'hardneg.report.{f}')\n"
    )
    _, found = collect(extra={"hardneg.data.fake": source})
    got = {(i.target, i.line) for i in found if i.importer == "hardneg.data.fake"}
    assert got == {("hardneg.mining.mine", 1), ("hardneg.training.config", 2), ("hardneg.evaluation.run", 3),
                   ("hardneg.data.negatives", 4), ("hardneg", 4), ("hardneg.scale.engine", 7),
                   ("hardneg.report", 8)}
    errors = arrow_errors(found)
    for bad in ("data -> mining", "data -> training", "data -> evaluation", "data -> scale", "data -> report"):
        assert any(bad in e for e in errors), bad
    assert not any("data.negatives" in e or "-> hardneg " in e for e in errors)  # same layer; __version__


def test_checker_fails_on_private_name_and_cycle():
    extra = {"hardneg.search.fake_a": "from hardneg.core.errors import _hidden\nimport hardneg.search.fake_b\n",
             "hardneg.search.fake_b": "def g():\n    from hardneg.search import fake_a\n"}
    modules, found = collect(extra=extra)
    assert [e for e in private_errors(found) if "fake_a" in e] == [
        "<fake hardneg.search.fake_a>:1: hardneg.search.fake_a imports private _hidden from "
        "hardneg.core.errors (another package: search -> core)"]
    cycle = find_cycle(modules, [i for i in found if "fake" in i.importer])
    assert cycle is not None
    assert {i.importer for i in cycle} == {"hardneg.search.fake_a", "hardneg.search.fake_b"}
    assert "fake_b.py" not in describe(cycle) and "<fake hardneg.search.fake_b>:2" in describe(cycle)


def test_nothing_imports_cli_but_cli_and_main():
    extra = {"hardneg.experiment.fake": "from hardneg.cli import main\n"}
    _, found = collect(extra=extra)
    assert any("forbidden arrow experiment -> cli" in e for e in arrow_errors(found))
