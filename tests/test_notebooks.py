"""notebooks/: generated from notebooks/build.py, stored without outputs, and executed headless in local mode."""

import importlib.util
import os

import nbformat
import pytest
from conftest import REPO, SHARED_DATA

NOTEBOOKS_DIR = os.path.join(REPO, "notebooks")


def _load(name, filename):
    spec = importlib.util.spec_from_file_location(name, os.path.join(NOTEBOOKS_DIR, filename))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILD = _load("notebooks_build", "build.py")
NAMES = sorted(BUILD.NOTEBOOKS)


def test_every_notebook_is_generated_and_every_generated_one_is_checked_in():
    on_disk = sorted(f[: -len(".ipynb")] for f in os.listdir(NOTEBOOKS_DIR) if f.endswith(".ipynb"))
    assert on_disk == NAMES, "run: .venv/bin/python notebooks/build.py"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_matches_its_source_and_has_no_outputs(name):
    path = os.path.join(NOTEBOOKS_DIR, name + ".ipynb")
    with open(path) as f:
        text = f.read()
    assert text == BUILD.render(name), "%s is stale: run .venv/bin/python notebooks/build.py" % path
    nb = nbformat.reads(text, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_headless_in_local_mode(name, tmp_path):
    run = _load("notebooks_run", "run.py")
    env = {"SMGLUON_SHARED_DATA": SHARED_DATA, "SMGLUON_LOCAL_ROOT": str(tmp_path / "local")}
    nb = run.execute(name, "local", out_dir=str(tmp_path), env=env, timeout=900)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
