"""The layers of the architecture card, read from the source (an AST scan: nothing is imported).

zoo.models is the bottom layer: it imports zoo.errors and itself, nothing else, not even lazily
inside a function or through importlib. zoo.pretrained is generic: it never imports the registry,
a family module, a task, the training engine or what sits above them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ZOO = Path(__file__).resolve().parents[1] / "zoo"

# zoo.preprocessing: the one table of preprocessing modes, which itself imports nothing of zoo.
MODELS_MAY_IMPORT = ("zoo.errors", "zoo.models", "zoo.preprocessing")
PRETRAINED_MUST_NOT_IMPORT = ("zoo.registry", "zoo.models", "zoo.tasks", "zoo.training", "zoo.data", "zoo.inference",
                              "zoo.evaluation", "zoo.exporting", "zoo.optimize", "zoo.explain", "zoo.benchmark",
                              "zoo.cli", "zoo.tune")


def zoo_imports(source: str, module: str) -> list[tuple[int, str]]:
    """(line, module) of every zoo module that `source` (the text of `module`) imports: import
    statements anywhere (also inside functions), `from zoo import name` as zoo.name, relative
    imports resolved, and importlib.import_module / __import__ calls (an f-string by its prefix)."""
    package = module if module.endswith(".__init__") else module.rpartition(".")[0]
    package = package.removesuffix(".__init__")
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.append((node.lineno, arg.value))
                elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
                    found.append((node.lineno, str(arg.values[0].value) + "*"))
                else:
                    found.append((node.lineno, "<computed name>"))
    return sorted((line, name) for line, name in found if name == "zoo" or name.startswith(("zoo.", "<")))


def _imports_of(path: Path) -> list[tuple[int, str]]:
    module = ".".join(path.relative_to(ZOO.parent).with_suffix("").parts)
    return zoo_imports(path.read_text(encoding="utf-8"), module)


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _files(folder: str) -> list[Path]:
    return sorted((ZOO / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _files("models"), ids=lambda p: p.name)
def test_models_import_nothing_above_them(path):
    # An f-string import counts by its literal prefix: "zoo.models.*" stays inside the package.
    bad = [(line, name) for line, name in _imports_of(path)
           if not _within(name.removesuffix("*").rstrip("."), MODELS_MAY_IMPORT)]
    assert not bad, f"{path.relative_to(ZOO.parent)} imports {bad}: zoo.models may import only {MODELS_MAY_IMPORT}"


@pytest.mark.parametrize("path", _files("pretrained"), ids=lambda p: str(p.relative_to(ZOO / "pretrained")))
def test_pretrained_never_imports_the_registry_or_a_family(path):
    bad = [(line, name) for line, name in _imports_of(path)
           if _within(name.removesuffix("*").rstrip("."), PRETRAINED_MUST_NOT_IMPORT) or name.startswith("<")
           or name in ("zoo*", "zoo.*")]
    assert not bad, f"{path.relative_to(ZOO.parent)} imports {bad}: zoo.pretrained is generic"


def test_the_scan_sees_every_way_of_importing():
    source = (
        "import importlib\n"
        "def f(name):\n"
        "    from zoo.registry import build\n"
        "    from zoo import registry, build as b\n"
        "    import zoo.tasks.detection\n"
        "    importlib.import_module('zoo.training')\n"
        "    importlib.import_module(f'zoo.inference{name}')\n"
        "    importlib.import_module(name)\n"
        "    from ..registry import get_spec\n"
        "    from . import common\n"
    )
    names = {name for _, name in zoo_imports(source, "zoo.models.resnet")}
    assert names == {"zoo.registry.build", "zoo.registry", "zoo.build", "zoo.tasks.detection", "zoo.training",
                     "zoo.inference*", "<computed name>", "zoo.registry.get_spec", "zoo.models.common"}
    assert {n for n in names if _within(n.removesuffix("*"), MODELS_MAY_IMPORT)} == {"zoo.models.common"}
    init = {name for _, name in zoo_imports("from . import spec\n", "zoo.models.__init__")}
    assert init == {"zoo.models.spec"}
