"""The package's shape, checked against the "Layers" table in docs/architecture.md, its one description.

Every import of the package (at module level, under ``if TYPE_CHECKING:``, inside functions)
points down the table or sideways within a layer; module-level imports form no cycle;
in-function imports are rare and say why; the values layer stays free of matplotlib and Celery;
an enqueue-only import loads no matplotlib; nothing uses pickle.
"""

import ast
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import celery_animate

PACKAGE = Path(celery_animate.__file__).parent
ROOT_NAME = "celery_animate"
#: The page that holds the Layers table (a "## Layers" section), the one description of the layers.
TABLE_PAGE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
TABLE_NAME = "docs/architecture.md"

#: The package's own __init__ (lazy re-exports) sits above every layer.
TOP = 7

#: Third-party packages the values layer never imports: they are slow to load, or drag in a
#: worker's machinery, and values are what a client that only enqueues needs.
HEAVY = ("matplotlib", "PIL", "celery", "kombu", "pvio", "torch")

#: How many in-function imports of the package there may be. Each one hides a dependency from
#: a reader of the module's header, so a new one should be a decision: raise this with care.
MAX_IN_FUNCTION_IMPORTS = 1


@dataclass(frozen=True)
class Layer:
    number: int
    name: str
    #: Dotted paths below ``celery_animate``: a module, or a folder (a package) and all below it.
    entries: tuple[str, ...]
    #: Other module paths the row mentions in backticks (those with a dot or a slash).
    mentioned: tuple[str, ...]

    def __str__(self) -> str:
        return f"layer {self.number} ({self.name})"


TOP_LAYER = Layer(TOP, "the package's __init__", (), ())


def as_dotted(path: str) -> str:
    """``stores/`` or ``job/record`` or ``job.record`` -> ``stores``, ``job.record``."""
    return path.strip().rstrip("/").replace("/", ".")


def parse_layer_table(markdown: str) -> list[Layer]:
    """The rows of the table under the ``## Layers`` heading, in order.

    Raises AssertionError, naming what is wrong, when the section or its table is missing or
    malformed, so that the other tests fail with a message rather than a KeyError.
    """
    match = re.search(r"^##+ Layers\n(.*?)(?=^#)", markdown + "\n#", re.S | re.M)
    assert match, f"{TABLE_NAME} has no '## Layers' section"
    rows = [line for line in match.group(1).splitlines() if line.startswith("|")]
    assert len(rows) > 2, f"the Layers section of {TABLE_NAME} has no table"
    layers = []
    for row in rows[2:]:  # the header and the |---| line
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        assert len(cells) == 4, f"a Layers row needs 4 cells (#, layer, modules, what for): {row}"
        number, name, modules, purpose = cells
        entries = tuple(as_dotted(path) for path in re.findall(r"`([^`]+)`", modules))
        assert entries, f"a Layers row names no module in backticks: {row}"
        mentioned = tuple(as_dotted(path) for path in re.findall(r"`([^`]+)`", purpose)
                          if "." in path or "/" in path)
        layers.append(Layer(int(number), name, entries, mentioned))
    return layers


@cache
def layers() -> tuple[Layer, ...]:
    return tuple(parse_layer_table(TABLE_PAGE.read_text()))


def layer_of(module: str, table: tuple[Layer, ...] | None = None) -> Layer | None:
    """The layer of a dotted module name: the longest table entry that is a dotted prefix of it.

    ``celery_animate`` itself is :data:`TOP_LAYER`; None when no entry matches.
    """
    if module == ROOT_NAME:
        return TOP_LAYER
    relative = module.removeprefix(ROOT_NAME + ".")
    best: tuple[int, Layer] | None = None
    for layer in layers() if table is None else table:
        for entry in layer.entries:
            if (relative == entry or relative.startswith(entry + ".")) and (
                    best is None or len(entry) > best[0]):
                best = (len(entry), layer)
    return best[1] if best else None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_empty_marker(path: Path) -> bool:
    """A package ``__init__.py`` holding at most a docstring: it imports and defines nothing."""
    body = ast.parse(path.read_text()).body
    return path.name == "__init__.py" and all(
        isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body)


@dataclass(frozen=True)
class Import:
    line: int
    text: str  # the import statement's source, on one line
    target: str  # the module of the package it loads
    in_function: bool
    type_checking: bool
    commented: bool  # a comment on the statement's lines or on the line above


def targets(module: str, is_package: bool, node: ast.AST, known: set[str]) -> list[str]:
    """The modules of the package a statement loads (``from a import b``: ``a.b`` when a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == ROOT_NAME]
    if isinstance(node, ast.Call):  # importlib.import_module("celery_animate....")
        name = node.args[0].value
        return [name] if name.split(".")[0] == ROOT_NAME else []
    assert isinstance(node, ast.ImportFrom)
    if node.level == 0:
        if (node.module or "").split(".")[0] != ROOT_NAME:
            return []
        base = node.module
    else:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(parts[: len(parts) - (node.level - 1)])
        base = f"{base}.{node.module}" if node.module else base
    found = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known]
    # Names that are not submodules come from the module itself.
    if len(found) < len(node.names):
        found.append(base)
    return found


def is_import_module_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
            == "import_module" and len(node.args) == 1 and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str))


def find_imports(module: str, source: str, is_package: bool, known: set[str]) -> list[Import]:
    """Every import of the package in ``source``, wherever it sits in the module."""
    lines = source.splitlines()
    found: list[Import] = []

    def walk(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)) or is_import_module_call(node):
            commented = "#" in "".join(lines[node.lineno - 1: node.end_lineno]) or (
                node.lineno > 1 and lines[node.lineno - 2].lstrip().startswith("#"))
            text = " ".join(part.strip() for part in ast.get_source_segment(source, node).splitlines())
            for target in targets(module, is_package, node, known):
                found.append(Import(node.lineno, text, target, in_function, type_checking, commented))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_function = True
        for child in ast.iter_child_nodes(node):
            guarded = isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) and (
                child in node.body)
            walk(child, in_function, type_checking or guarded)

    walk(ast.parse(source), False, False)
    return found


@cache
def all_imports() -> dict[str, tuple[Import, ...]]:
    known = set(package_modules())
    return {module: tuple(find_imports(module, path.read_text(), path.name == "__init__.py", known))
            for module, path in package_modules().items()}


def direction_violations(module: str, found: list[Import] | tuple[Import, ...],
                         table: tuple[Layer, ...] | None = None) -> list[str]:
    """One sentence per import of ``module`` that points up the table (or at an unlisted module)."""
    here = layer_of(module, table)
    path = package_modules().get(module)
    where = path.relative_to(PACKAGE.parent.parent) if path else module
    out = []
    for imp in found:
        there = layer_of(imp.target, table)
        if here is None or there is None or there.number > here.number:
            kind = "in a function" if imp.in_function else (
                "under TYPE_CHECKING" if imp.type_checking else "at module level")
            out.append(f"{where}:{imp.line}: `{imp.text}` ({kind}) makes {module} in {here} import "
                       f"{imp.target} in {there}, a layer above it")
    return out


# The table itself -------------------------------------------------------------------------------

def test_the_table_lists_the_six_layers_in_order_with_each_entry_once():
    table = layers()
    assert [(layer.number, layer.name) for layer in table] == [
        (1, "values"), (2, "storage"), (3, "work"), (4, "celery"), (5, "clients"), (6, "commands")]
    entries = [entry for layer in table for entry in layer.entries]
    assert len(entries) == len(set(entries)), f"an entry is in the Layers table twice: {entries}"


def test_every_module_path_in_the_table_exists():
    for layer in layers():
        for path in (*layer.entries, *layer.mentioned):
            file = PACKAGE.joinpath(*path.split("."))
            assert file.with_suffix(".py").is_file() or (file / "__init__.py").is_file(), (
                f"{TABLE_NAME}'s Layers table names `{path}` ({layer}), which is not a module of "
                f"{ROOT_NAME}: remove it or fix its path")


def test_every_module_of_the_package_is_in_exactly_one_layer():
    for module, path in package_modules().items():
        if module == ROOT_NAME or is_empty_marker(path):
            continue  # the top of everything; a package folder that holds nothing itself
        relative = module.removeprefix(ROOT_NAME + ".")
        assert layer_of(module) is not None, (
            f"{path.relative_to(PACKAGE.parent.parent)} is in no layer: add `{relative}` (or its "
            f"folder) to the Layers table in {TABLE_NAME}")


def test_modules_fall_in_the_most_specific_entry_of_the_table():
    def name(module: str) -> str | None:
        layer = layer_of(f"{ROOT_NAME}.{module}")
        return layer.name if layer else None

    assert name("job.recovery") == "work" and name("job.record") == "storage"
    # New modules in a listed folder need no change to the table.
    assert name("encode.segments") == "work" and name("worker.tasks.base") == "celery"
    assert name("stores.sqlite") == "storage" and name("cli") == "commands"
    assert name("jobs") is None and name("job.new_thing") is None


def test_an_upward_import_is_reported_with_file_line_import_and_both_layers():
    """The checker itself: it must be able to fail."""
    known = set(package_modules())
    source = textwrap.dedent("""\
        from typing import TYPE_CHECKING

        from celery_animate.errors import InvalidArgument
        from celery_animate import keys, wire

        if TYPE_CHECKING:
            from celery_animate.client.render_job import RenderJob

        def later():
            from celery_animate.worker.app import app  # why: a test
            return app
        """)
    found = find_imports("celery_animate.ids", source, False, known)
    assert {imp.target for imp in found} == {
        "celery_animate.errors", "celery_animate.keys", "celery_animate.wire",
        "celery_animate.client.render_job", "celery_animate.worker.app"}
    hidden, inner = direction_violations("celery_animate.ids", found)
    assert hidden.startswith(
        "src/celery_animate/ids.py:7: `from celery_animate.client.render_job import RenderJob` "
        "(under TYPE_CHECKING)")
    assert "layer 1 (values)" in hidden and "layer 5 (clients)" in hidden
    assert inner.startswith(
        "src/celery_animate/ids.py:10: `from celery_animate.worker.app import app` (in a function)")
    assert "layer 1 (values)" in inner and "layer 4 (celery)" in inner
    # Within a layer, and downwards, is fine.
    assert not direction_violations("celery_animate.job.recovery", find_imports(
        "celery_animate.job.recovery", "from celery_animate.job import lifecycle\n", False, known))


# Direction --------------------------------------------------------------------------------------

def test_module_level_imports_point_down_the_layers():
    """Module-level imports, those under ``if TYPE_CHECKING:`` included."""
    violations = [v for module, found in all_imports().items() if module != ROOT_NAME
                  for v in direction_violations(module, [imp for imp in found if not imp.in_function])]
    assert not violations, f"imports pointing up the Layers table of {TABLE_NAME}:\n" + "\n".join(violations)


def test_in_function_imports_point_down_the_layers():
    violations = [v for module, found in all_imports().items() if module != ROOT_NAME
                  for v in direction_violations(module, [imp for imp in found if imp.in_function])]
    assert not violations, f"imports pointing up the Layers table of {TABLE_NAME}:\n" + "\n".join(violations)


def test_no_task_module_imports_another():
    """Tasks share their policy through ``worker.tasks.base`` alone."""
    tasks = f"{ROOT_NAME}.worker.tasks"
    shared = {tasks, f"{tasks}.base"}
    found = [f"{module} imports {imp.target} ({imp.text})"
             for module, imports in all_imports().items()
             if module.startswith(f"{tasks}.") and module not in shared
             for imp in imports if imp.target.startswith(f"{tasks}.") and imp.target not in shared]
    assert not found, found
    assert f"{tasks}.base" in all_imports(), "the tasks' shared policy moved: update this test"


def test_no_import_cycle_at_module_level():
    graph = {module: {imp.target for imp in found
                      if not imp.in_function and not imp.type_checking and imp.target != module}
             for module, found in all_imports().items()}
    # A package's __init__ may re-export from its own submodules: drop parent -> child edges.
    graph = {m: {d for d in deps if d in graph and not d.startswith(m + ".")} for m, deps in graph.items()}
    assert {"celery_animate.job.lifecycle", "celery_animate.worker.state"} <= graph[
        "celery_animate.worker.tasks.render"]
    assert "celery_animate.client.dispatch" in graph["celery_animate.client.animator"]
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail, node, dep]))
            if dep not in state:
                visit(dep, [*trail, node])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


def test_in_function_imports_of_the_package_are_few_and_say_why():
    inner = [(module, imp) for module, found in all_imports().items() for imp in found if imp.in_function]
    listed = [f"{module}:{imp.line}: {imp.text}" for module, imp in inner]
    assert len(inner) <= MAX_IN_FUNCTION_IMPORTS, listed
    for module, imp in inner:
        assert imp.commented, f"{module}:{imp.line}: an in-function import needs a comment saying why"


# What the values layer and an enqueue-only client load -------------------------------------------

def test_the_values_layer_imports_no_heavy_package_at_module_level():
    values = layers()[0]
    for module, path in package_modules().items():
        if layer_of(module) != values:
            continue
        for node in ast.parse(path.read_text()).body:  # module level; TYPE_CHECKING is an ast.If
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for name in names:
                assert name.split(".")[0] not in HEAVY, (
                    f"{path.relative_to(PACKAGE.parent.parent)}:{node.lineno}: the values layer imports "
                    f"{name}; import it in a higher layer ({TABLE_NAME}, Layers)")


def loaded_by(code: str) -> set[str]:
    """The top-level names in ``sys.modules`` after ``code`` runs in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def test_the_values_layer_loads_no_heavy_package():
    values = sorted(module for module in package_modules() if layer_of(module) == layers()[0])
    assert "celery_animate.errors" in values and "celery_animate.keys" in values
    loaded = loaded_by("\n".join(f"import {module}" for module in values))
    assert "celery_animate" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_a_client_that_only_enqueues_loads_no_matplotlib():
    loaded = loaded_by("from celery_animate import RenderJob, Settings")
    assert "redis" in loaded  # the import did happen
    assert "matplotlib" not in loaded


def test_no_pickle_anywhere():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert "import pickle" not in text and "pickle.loads" not in text, path
        for node in ast.walk(ast.parse(text)):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            pickles = {name.split(".")[0] for name in names} & {"pickle", "cPickle", "dill", "cloudpickle"}
            assert not pickles, f"{path}:{node.lineno}: {pickles}"
