"""The import graph: no circles, lib/ imports only what the containers have, every module imports.

The graph is read from the source (every ``import``, including those inside
functions), so a circle that only closes at run time is found too.
"""

import ast
import os
import subprocess
import sys

from conftest import REPO

PACKAGES = {
    "smgluon": os.path.join(REPO, "lib", "smgluon"),
    "smgluon_local": os.path.join(REPO, "local_mode", "smgluon_local"),
}
ENTRY_POINTS = os.path.join(REPO, "entry_points")
# What lib/smgluon may import inside the SageMaker containers besides the standard library
# (sagemaker_inference only where present: serving.py falls back without it).
LIB_ALLOWED = {"smgluon", "mxnet", "numpy", "json_logging", "sagemaker_inference"}


def _modules():
    """Module name → source path, for both packages and the entry points."""
    modules = {}
    for package, directory in PACKAGES.items():
        for name in sorted(os.listdir(directory)):
            if name.endswith(".py"):
                stem = name[:-3]
                modules[package if stem == "__init__" else "%s.%s" % (package, stem)] = os.path.join(directory, name)
    for name in sorted(os.listdir(ENTRY_POINTS)):
        if name.endswith(".py"):
            modules[name[:-3]] = os.path.join(ENTRY_POINTS, name)
    return modules


def _imports(path, modules):
    """(every imported top-level name, the project modules imported) of one source file."""
    tops, targets = set(), set()
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from package import module` imports the module; `from module import name` the module
            names = [node.module + "." + alias.name for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            tops.add(name.split(".")[0])
            if name in modules:
                targets.add(name)
    return tops, targets


def _graph():
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        _, targets = _imports(path, modules)
        # `from smgluon_local import cli` names both the package and the module: keep the module
        graph[name] = {t for t in targets if t != name and not any(o.startswith(t + ".") for o in targets)}
    return graph


def _cycles(graph):
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_imports_inside_functions():
    graph = _graph()
    assert "smgluon_local.commands" in graph["smgluon_local.cli"]  # `from smgluon_local import commands`
    assert "smgluon_local.session" in graph["smgluon_local.commands"]  # imported inside make_session
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles():
    cycles = _cycles(_graph())
    assert cycles == [], "modules that import each other (move what they share into a module both import): %s" % cycles


def test_lib_imports_only_the_standard_library_mxnet_numpy_and_json_logging():
    modules = _modules()
    for name, path in modules.items():
        if name.split(".")[0] != "smgluon":
            continue
        tops, _ = _imports(path, modules)
        extra = sorted(t for t in tops - LIB_ALLOWED if t not in sys.stdlib_module_names)
        assert not extra, "%s imports %s, which the SageMaker containers lack" % (name, extra)


def test_every_module_imports_in_a_fresh_interpreter():
    names = sorted(_modules())
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    path = [ENTRY_POINTS] + [os.path.dirname(directory) for directory in PACKAGES.values()]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    proc = subprocess.run([sys.executable, "-c", code] + names, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
