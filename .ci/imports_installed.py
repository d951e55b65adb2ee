"""Imports every module of the installed packages, then every package their sources import (also lazily).

Usage: python imports_installed.py ENTRY_POINTS_DIR PACKAGE... (run outside the checkout, in the
environment to check). The workloads in ENTRY_POINTS_DIR are skipped: local mode imports them from
there, not from the environment. Exits non-zero naming what is missing, so a dependency the extras
forgot fails CI.
"""

import ast
import importlib
import os
import pkgutil
import sys


def imported_names(directory):
    """Top-level names of every import in the package's sources, with the files that import them."""
    names = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".py"):
            continue
        path = os.path.join(directory, name)
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                names.setdefault(top, set()).add(name)
    return names


def main(entry_points, packages):
    workloads = {name[:-3] for name in os.listdir(entry_points) if name.endswith(".py")}
    missing = []
    for package_name in packages:
        package = importlib.import_module(package_name)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module("%s.%s" % (package_name, module.name))
        for top, files in sorted(imported_names(package.__path__[0]).items()):
            if top in sys.stdlib_module_names or top in packages or top in workloads:
                continue
            try:
                importlib.import_module(top)
            except ImportError as e:
                missing.append("%s (imported by %s: %s)" % (top, ", ".join(sorted(files)), e))
    if missing:
        sys.exit("not installed:\n  " + "\n  ".join(missing))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
