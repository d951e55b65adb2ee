"""Executes the notebooks headless (nbclient), as CI and CodeBuild do.

Usage, from the repository root::

    .venv/bin/python notebooks/run.py                      # every notebook, local mode
    .venv/bin/python notebooks/run.py mnist_mlp --mode sagemaker --out reports/notebooks

``--mode sagemaker`` runs the same cells against Amazon SageMaker and needs
SAGEMAKER_ROLE and SAGEMAKER_BUCKET (and AWS credentials). Executed copies, with
their outputs, go to ``--out`` (never over the checked-in notebooks, which stay
output-free). Exit status 1 if any notebook fails; the failing cell's error is printed.
"""

import argparse
import os
import sys
import time

import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = ("local", "sagemaker")


def notebook_names():
    """The checked-in notebooks, by name (without .ipynb)."""
    return sorted(f[: -len(".ipynb")] for f in os.listdir(HERE) if f.endswith(".ipynb"))


def execute(name, mode="local", out_dir=None, timeout=1800, env=None):
    """Runs notebook ``name`` top to bottom in a fresh kernel of this interpreter.

    Args:
        name (str): notebook name, e.g. ``"mnist_mlp"``.
        mode (str): ``"local"`` or ``"sagemaker"`` (sets SMGLUON_MODE for the kernel).
        out_dir (str): where to write the executed copy; None writes none.
        timeout (int): seconds allowed per cell.
        env (dict): extra environment variables for the kernel.

    Returns:
        nbformat.NotebookNode: the executed notebook.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised; its message names the cell and the error.
    """
    from nbclient import NotebookClient

    if mode not in MODES:
        raise ValueError("mode must be one of %s, not %r" % (", ".join(MODES), mode))
    if mode == "sagemaker":
        missing = [k for k in ("SAGEMAKER_ROLE", "SAGEMAKER_BUCKET") if not (env or {}).get(k, os.environ.get(k))]
        if missing:
            raise SystemExit("--mode sagemaker needs %s in the environment (an IAM role ARN SageMaker can "
                             "assume and an S3 bucket name)" % " and ".join(missing))
    path = os.path.join(HERE, name + ".ipynb")
    if not os.path.exists(path):
        raise SystemExit("no notebook %r in %s (have: %s)" % (name, HERE, ", ".join(notebook_names())))
    nb = nbformat.read(path, as_version=4)
    saved = dict(os.environ)
    # The kernel inherits this process's environment and runs this interpreter (the project venv).
    os.environ.update(env or {})
    os.environ.update({"SMGLUON_MODE": mode, "MPLBACKEND": "Agg"})
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": HERE}})
        try:
            client.execute()
        finally:
            if out_dir:
                os.makedirs(out_dir, exist_ok=True)
                nbformat.write(nb, os.path.join(out_dir, name + ".ipynb"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return nb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="notebooks to run (default: all): %s" % ", ".join(notebook_names()))
    parser.add_argument("--mode", choices=MODES, default="local")
    parser.add_argument("--out", default=None, help="folder for the executed copies")
    args = parser.parse_args(argv)
    failed = []
    for name in args.names or notebook_names():
        tic = time.time()
        print("running %s (%s mode) ..." % (name, args.mode), flush=True)
        try:
            execute(name, args.mode, args.out)
        except Exception as exc:  # report every notebook, then fail
            failed.append(name)
            print("FAILED %s after %.0f s:\n%s" % (name, time.time() - tic, exc), flush=True)
        else:
            print("ok %s in %.0f s" % (name, time.time() - tic), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
