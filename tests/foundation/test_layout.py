"""The package's layout follows the data's path: a module imports only from folders before it.

Order: foundation (errors, storage, cache, config, files) -> data -> preprocessing -> encoders -> layers ->
transfer -> training -> export -> models -> jobs -> cli. Imports inside functions count too,
so a cycle cannot hide behind one.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tfhub_transfer"
ORDER = ["errors", "storage", "cache", "config", "files", "data", "preprocessing", "encoders", "layers", "transfer",
         "training", "export", "models", "jobs", "cli"]
FOUNDATION = {"errors", "storage", "cache", "config", "files"}


def _modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts): p
            for p in PACKAGE.rglob("*.py")}


def _rank(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    return 0 if top in FOUNDATION else ORDER.index(top)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tfhub_transfer"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tfhub_transfer"))
    return found


MODULES = _modules()


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "tfhub_transfer.__init__"))
def test_imports_only_from_earlier_folders(module):
    late = sorted(dep for dep in _imports(MODULES[module])
                  if dep != "tfhub_transfer" and _rank(dep) > _rank(module))
    assert not late, f"{module} imports {late}, which come later in the data's path"


def test_no_import_cycles():
    graph = {}
    for module, path in MODULES.items():
        deps = set()
        for dep in _imports(path):
            deps.add(dep if dep in MODULES else f"{dep}.__init__")
        graph[module] = {d for d in deps if d in MODULES and d != module}
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for dep in graph[node]:
            assert state.get(dep) != 1, f"import cycle: {' -> '.join([*trail, node, dep])}"
            if dep not in state:
                visit(dep, [*trail, node])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


def test_every_sub_package_imports_in_dependency_order():
    import importlib

    for name in ORDER:
        importlib.import_module(f"tfhub_transfer.{name}")
