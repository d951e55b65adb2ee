"""The served model on disk: an exported Gluon net, written atomically.

The files are what the SageMaker MXNet serving container's default handler,
``MXNetModel`` and a workload's ``model_fn`` (:class:`smgluon.serving.BoundModel`) all load:
``model-symbol.json``, ``model-0000.params`` and ``model-shapes.json``, plus
any files of the workload's own (label names, catalogs).
"""

import os
import shutil
import tempfile

__all__ = ["export_model", "MODEL_FILES"]

MODEL_FILES = ("model-symbol.json", "model-0000.params", "model-shapes.json")


def export_model(net, model_dir, example_inputs, input_shapes, extra_files=None):
    """Exports a hybridized net to ``model_dir``; nothing half-written is ever left there.

    The files are written to a temporary directory inside ``model_dir`` and then
    moved into place one by one.

    Args:
        net (mxnet.gluon.HybridBlock): the hybridized net.
        model_dir (str): destination directory (created if needed).
        example_inputs (list[mxnet.nd.NDArray]): one forward pass with these builds the cached graph.
        input_shapes (list[dict]): the content of ``model-shapes.json``,
            e.g. ``[{"name": "data", "shape": [1, 784]}]``.
        extra_files (dict[str, str]): file name → text content, written beside the model.

    Returns:
        list[str]: the names of the files written.
    """
    from smgluon.metrics import write_json_atomic

    os.makedirs(model_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-model-", dir=model_dir)
    try:
        net(*example_inputs)  # the export needs a cached graph
        net.export(os.path.join(tmp, "model"), epoch=0)
        write_json_atomic(os.path.join(tmp, "model-shapes.json"), input_shapes)
        names = list(MODEL_FILES)
        for name, text in (extra_files or {}).items():
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                f.write(text)
            names.append(name)
        for name in names:
            os.replace(os.path.join(tmp, name), os.path.join(model_dir, name))
        return names
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
