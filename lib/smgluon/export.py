"""The served model on disk: exported Gluon nets, written atomically.

The files are what the SageMaker MXNet serving container's default handler,
``MXNetModel`` and a workload's ``model_fn`` (:class:`smgluon.serving.BoundModel`) all load:
``model-symbol.json``, ``model-0000.params`` and ``model-shapes.json``, plus
any files of the workload's own (label names, catalogs). A workload of several
nets (dssm's two towers) exports each under its own name.
"""

import os
import shutil
import tempfile

from smgluon import files

__all__ = ["export_model", "MODEL_FILES"]

MODEL_FILES = ("model-symbol.json", "model-0000.params", "model-shapes.json")


def export_model(net, model_dir, example_inputs=None, input_shapes=None, extra_files=None):
    """Exports hybridized nets to ``model_dir``; nothing half-written is ever left there.

    The files are written to a temporary directory inside ``model_dir`` and then
    moved into place one by one.

    Args:
        net: the hybridized net, exported as ``model-symbol.json`` and ``model-0000.params``; or, for
            several nets, a dict of name → (net, example inputs), each exported as
            ``<name>-symbol.json`` and ``<name>-0000.params``.
        model_dir (str): destination directory (created if needed).
        example_inputs (list[mxnet.nd.NDArray]): for a single net, one forward pass with these builds
            the cached graph the export needs.
        input_shapes (list[dict]): the content of ``model-shapes.json``,
            e.g. ``[{"name": "data", "shape": [1, 784]}]``; None writes no such file.
        extra_files (dict[str, object]): file name → content written beside the model: text as it
            is, anything else as JSON.

    Returns:
        list[str]: the names of the files written.
    """
    nets = net if isinstance(net, dict) else {"model": (net, example_inputs)}
    os.makedirs(model_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-model-", dir=model_dir)
    try:
        names = []
        for name, (block, inputs) in nets.items():
            block(*inputs)  # the export needs a cached graph
            block.export(os.path.join(tmp, name), epoch=0)
            names += ["%s-symbol.json" % name, "%s-0000.params" % name]
        extra = {"model-shapes.json": input_shapes} if input_shapes is not None else {}
        extra.update(extra_files or {})
        for name, content in extra.items():
            if isinstance(content, str):
                files.write_text(os.path.join(tmp, name), content)
            else:
                files.write_json(os.path.join(tmp, name), content)
            names.append(name)
        for name in names:
            os.replace(os.path.join(tmp, name), os.path.join(model_dir, name))
        return names
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
