"""The package's shape: module-level imports form no cycle, and in-function imports are rare."""

import ast
from pathlib import Path

import celery_animate

PACKAGE = Path(celery_animate.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    if node.level == 0:
        bases = [node.module] if node.module and node.module.startswith("celery_animate") else []
    else:
        parts = module.split(".")
        parts = parts if is_package else parts[:-1]
        base = ".".join(parts[: len(parts) - (node.level - 1)])
        bases = [f"{base}.{node.module}" if node.module else base]
    # `from . import lifecycle` imports the submodule lifecycle.
    out = []
    for base in bases:
        out.append(base)
        if node.module is None:
            out += [f"{base}.{alias.name}" for alias in node.names]
    return out


def imports():
    """{module: (module-level imports of the package, in-function imports as (line, source))}."""
    result = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        tree = ast.parse(path.read_text())
        source = path.read_text().splitlines()
        top, inner = set(), []
        for node in tree.body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.ImportFrom):
                top.update(resolve(module, path.name == "__init__.py", node))
        for func in ast.walk(tree):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(func):
                    if isinstance(node, ast.ImportFrom) and (
                            node.level or (node.module or "").startswith("celery_animate")):
                        inner.append((path.name, node.lineno, source[node.lineno - 1]))
        result[module] = (top, inner)
    return result


def test_no_import_cycle_at_module_level():
    graph = {module: {dep for dep in deps if dep in imports_ and dep != module}
             for imports_ in [imports()] for module, (deps, _) in imports_.items()}
    # A package's __init__ may re-export from its own submodules: drop parent -> child edges.
    graph = {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in graph.items()}
    assert {"celery_animate.job.lifecycle", "celery_animate.worker.state"} <= graph["celery_animate.worker.tasks.render"]
    assert "celery_animate.client.dispatch" in graph["celery_animate.client.animator"]
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for dep in graph[node]:
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail, node, dep]))
            if dep not in state:
                visit(dep, [*trail, node])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


def test_in_function_imports_of_the_package_are_few_and_say_why():
    inner = [entry for _, found in imports().values() for entry in found]
    assert len(inner) <= 5, inner
    for name, line, text in inner:
        assert "#" in text, f"{name}:{line}: an in-function import needs a comment saying why"


def test_no_pickle_anywhere():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert "import pickle" not in text and "pickle.loads" not in text, path
