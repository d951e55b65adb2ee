"""``smgluon package``: any MXNet model as the ``model.tar.gz`` SageMaker's MXNet serving container loads.

A model trained elsewhere comes as a Module checkpoint (``PREFIX-symbol.json`` +
``PREFIX-EPOCH.params``, e.g. the model zoo's ``Inception-BN-symbol.json`` and
``Inception-BN-0126.params``), a Gluon export (the same two files), a trained
Module or HybridBlock in a notebook, or a model-zoo name. :func:`package_model`
writes the archive the default MXNet handler and ``MXNetModel`` expect, with
every file at its root:

* ``model-symbol.json``, ``model-0000.params`` (the epoch the handler loads is 0),
  ``model-shapes.json`` (``[{"name": "data", "shape": [1, ...]}]``);
* ``synset.txt`` when given (one label per class);
* ``code/``: the user's entry point, or with ``image_classifier=True``
  ``code/inference.py`` and the ``smgluon`` package (:mod:`smgluon.image_classifier`
  serves JPEG/PNG pictures) plus its options in ``image-classifier.json``.

Before the archive is written, the files are loaded back as the default
handler loads them and one forward pass runs; params that do not match the
graph, an input name the graph lacks, an impossible input shape, a synset of
the wrong length or a bad classifier option is a :class:`PackageError` naming
the fault and the fix. The archive is written under a temporary name and
renamed, so a failed run leaves nothing at ``output``.
"""

import contextlib
import glob
import io
import json
import os
import re
import shutil
import sys
import tempfile
import warnings

from smgluon_local.tarfiles import create_tar_gz

__all__ = ["PackageError", "package_model", "zoo_model", "add_package_command"]

MODEL_PREFIX = "model"  # the default handler loads model-symbol.json and model-0000.params
SHAPES_FILE = "model-shapes.json"
ENTRY_POINT = "inference.py"
_MAX_SIDE = 1024  # input sizes tried when reading a convolutional input's height and width from the graph
# Gluon's model zoo nets take RGB on the 0-1 scale normalised with the ImageNet statistics.
_ZOO_OPTIONS = {"channel_order": "RGB", "scale": 1 / 255.0, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
# Steps between the input and the first layer whose weight tells the input's size (Flatten keeps the count).
_PASS_THROUGH = {
    "_div_scalar",
    "_mul_scalar",
    "_plus_scalar",
    "_minus_scalar",
    "_rminus_scalar",
    "Cast",
    "cast",
    "identity",
    "_copy",
    "BatchNorm",
    "Dropout",
    "Flatten",
    "flatten",
}


class PackageError(ValueError):
    """The model cannot be packaged as given; the message names the fault and the fix."""


# ---------------------------------------------------------------- reading the source


def _params_file(prefix, epoch):
    if epoch is not None:
        path = "%s-%04d.params" % (prefix, int(epoch))
        if not os.path.isfile(path):
            raise PackageError("%s: no such file (epoch %d of %s)" % (path, int(epoch), prefix))
        return path
    found = sorted(
        p
        for p in glob.glob(glob.escape(prefix) + "-*.params")
        if re.fullmatch(r"\d{4}", p[len(prefix) + 1 : -len(".params")])
    )
    if not found:
        raise PackageError("no %s-NNNN.params beside %s-symbol.json: the weights are missing" % (prefix, prefix))
    if len(found) > 1:
        epochs = ", ".join(str(int(p[len(prefix) + 1 : -len(".params")])) for p in found)
        raise PackageError("%s has params of several epochs (%s): choose one with --epoch (epoch=)" % (prefix, epochs))
    return found[0]


def _checkpoint_prefix(path):
    if path.endswith("-symbol.json"):
        return path[: -len("-symbol.json")]
    if os.path.isdir(path):
        symbols = sorted(glob.glob(os.path.join(glob.escape(path), "*-symbol.json")))
        if len(symbols) != 1:
            raise PackageError(
                "%s holds %s *-symbol.json files; name the checkpoint as PREFIX (e.g. %s)"
                % (path, len(symbols) or "no", os.path.join(path, "Inception-BN"))
            )
        return symbols[0][: -len("-symbol.json")]
    return path


def _load_checkpoint(path, epoch):
    """Symbol and params of ``PREFIX``, ``PREFIX-symbol.json`` or a folder holding one checkpoint."""
    import mxnet as mx

    prefix = _checkpoint_prefix(os.fspath(path))
    symbol_file = prefix + "-symbol.json"
    if not os.path.isfile(symbol_file):
        raise PackageError(
            "%s: no such file; a checkpoint is PREFIX-symbol.json + PREFIX-EPOCH.params "
            "(pass PREFIX, the symbol file or their folder)" % symbol_file
        )
    params_file = _params_file(prefix, epoch)
    try:
        symbol = mx.sym.load(symbol_file)
    except mx.base.MXNetError as e:
        raise PackageError("%s is not an MXNet symbol file: %s" % (symbol_file, _first_line(e))) from None
    try:
        saved = mx.nd.load(params_file)
    except mx.base.MXNetError as e:
        raise PackageError("%s is not an MXNet params file: %s" % (params_file, _first_line(e))) from None
    if not isinstance(saved, dict) or not saved:
        raise PackageError("%s holds no named parameters" % params_file)
    plain = sorted(k for k in saved if not k.startswith(("arg:", "aux:")))
    if plain:
        raise PackageError(
            "%s holds parameters without the arg:/aux: prefixes of a checkpoint (%s, ...): it was "
            "written by save_parameters. Export the net with HybridBlock.export(), or pass the "
            "trained block itself" % (params_file, plain[0])
        )
    arg = {k[4:]: v for k, v in saved.items() if k.startswith("arg:")}
    aux = {k[4:]: v for k, v in saved.items() if k.startswith("aux:")}
    shapes = None
    for candidate in (prefix + "-shapes.json", os.path.join(os.path.dirname(prefix), SHAPES_FILE)):
        if os.path.isfile(candidate):
            shapes = candidate
            break
    return symbol, arg, aux, shapes, "%s + %s" % (symbol_file, os.path.basename(params_file))


def _from_module(module):
    if not module.binded or not module.params_initialized:
        raise PackageError("the Module has no parameters yet: train it (fit) or call bind() and set_params() first")
    if len(module.data_names) != 1:
        raise PackageError(
            "the Module has %d data inputs %s; the MXNet serving container feeds one"
            % (len(module.data_names), list(module.data_names))
        )
    arg, aux = module.get_params()
    (desc,) = module.data_shapes
    return module.symbol, arg, aux, (desc.name, (1,) + tuple(desc.shape[1:]))


def _from_block(block, input_shape, tmp):
    """Exports a HybridBlock into ``tmp`` (one forward pass on zeros first when it has no cached graph)."""
    import mxnet as mx

    prefix = os.path.join(tmp, "block")
    try:
        block.export(prefix, epoch=0)
    except (RuntimeError, AssertionError):
        if input_shape is None:
            raise PackageError(
                "the block has not run since hybridize(): pass input_shape (e.g. (1, 3, 224, 224)) "
                "so one forward pass can build its graph"
            ) from None
        try:
            block.hybridize()
            block(mx.nd.zeros(input_shape))
        except mx.base.MXNetError as e:
            raise PackageError(
                "the block cannot run on an input of shape %s: %s" % (tuple(input_shape), _first_line(e))
            ) from None
        except RuntimeError as e:  # deferred initialisation that never happened
            raise PackageError("the block cannot run: %s (initialize() or train it first)" % _first_line(e)) from None
        block.export(prefix, epoch=0)
    return prefix


def _first_line(error):
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    meaningful = [line for line in lines if line.startswith(("MXNetError", "Check failed", "Error"))]
    return (meaningful or lines or [type(error).__name__])[-1][:400]


# ---------------------------------------------------------------- checks


def _parse_shape(value):
    if isinstance(value, str):
        value = [v for v in re.split(r"[,x\s()\[\]]+", value) if v]
    try:
        shape = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise PackageError("the input shape must be integers such as 1,3,224,224, got %r" % (value,)) from None
    # the handler binds batch 1 (it replaces the first number anyway); 0 is MXNet's "any batch size"
    if not shape or min(shape[1:], default=1) < 1 or shape[0] < 0:
        raise PackageError("the input shape must be positive integers such as 1,3,224,224, got %r" % (value,))
    return (1,) + shape[1:]


def _inputs(symbol, arg, aux, input_name):
    """The graph's data input and label inputs; refuses params that do not belong to the graph."""
    arguments = symbol.list_arguments()
    free = [a for a in arguments if a not in arg]
    labels = [a for a in free if a.endswith("label") and a != input_name]
    candidates = [a for a in free if a not in labels]
    if input_name is None:
        input_name = "data" if "data" in arguments else (candidates[0] if len(candidates) == 1 else None)
        if input_name is None:
            raise PackageError(
                "the graph's input is not named 'data' and its inputs without params are %s: pass "
                "the input's name (--input-name)" % (candidates or "none")
            )
    if input_name not in arguments:
        raise PackageError(
            "the graph has no input named %r; its inputs without params are %s: pass --input-name "
            "with one of them" % (input_name, candidates or "none")
        )
    missing = [a for a in candidates if a != input_name]
    if missing:
        raise PackageError(
            "the params do not match the graph: no weights for %s (%d of %d arguments missing); "
            "the params belong to another net" % (missing[:5], len(missing), len(arguments))
        )
    if input_name in arg:
        raise PackageError(
            "the params hold a weight named %r, the graph's input: rename the input (--input-name)" % input_name
        )
    extra = sorted(set(arg) - set(arguments)) + sorted(set(aux) - set(symbol.list_auxiliary_states()))
    if extra:
        raise PackageError(
            "the params do not match the graph: %s are not in it (%d extra); the params belong to "
            "another net" % (extra[:5], len(extra))
        )
    missing_aux = sorted(set(symbol.list_auxiliary_states()) - set(aux))
    if missing_aux:
        raise PackageError(
            "the params do not match the graph: no auxiliary states (batch norm statistics) for %s" % missing_aux[:5]
        )
    return input_name, labels


def _shape_errors(symbol, input_name, shape, arg, aux):
    """Problems of ``shape`` as the graph's input: an impossible shape, or params of other shapes."""
    import mxnet as mx

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # infer_shape prints its arguments on failure
            arg_shapes, out_shapes, aux_shapes = symbol.infer_shape(**{input_name: shape})
    except mx.base.MXNetError as e:
        return "the input shape %s is impossible for this graph: %s" % (shape, _first_line(e)), None
    if arg_shapes is None:
        return "the graph's shapes cannot all be inferred from an input of shape %s" % (shape,), None
    if any(0 in out for out in out_shapes):
        # MXNet infers an empty dimension instead of failing, e.g. a 5x5 kernel on a 3x3 picture
        internals = symbol.get_internals()
        _, shapes, _ = internals.infer_shape_partial(**{input_name: shape})
        name, empty = next((n, s) for n, s in zip(internals.list_outputs(), shapes) if s and 0 in s)
        return (
            "the input shape %s is impossible for this graph: %s would be %s, empty"
            % (shape, name.replace("_output", ""), tuple(empty))
        ), None
    wrong = [
        (name, tuple(params[name].shape), tuple(need))
        for names, shapes, params in (
            (symbol.list_arguments(), arg_shapes, arg),
            (symbol.list_auxiliary_states(), aux_shapes, aux),
        )
        for name, need in zip(names, shapes)
        if name in params and tuple(params[name].shape) != tuple(need)
    ]
    if wrong:
        name, have, need = wrong[0]
        return (
            "the params do not match the graph with input %s: %s is %s, the graph needs %s (%d such); either "
            "the params belong to another net or the input shape is wrong" % (shape, name, have, need, len(wrong))
        ), None
    return None, tuple(out_shapes[0])


def _first_layer(symbol, input_name):
    """The first operator reading the input, skipping scalar and element-wise steps, and its nodes."""
    graph = json.loads(symbol.tojson())
    nodes = graph["nodes"]
    current = next(i for i, n in enumerate(nodes) if n["op"] == "null" and n["name"] == input_name)
    while True:
        readers = [i for i, n in enumerate(nodes) if any(inp[0] == current for inp in n.get("inputs", []))]
        if len(readers) != 1:
            return None, nodes
        node = nodes[readers[0]]
        if node["op"] not in _PASS_THROUGH or node["inputs"][0][0] != current:
            return node, nodes
        current = readers[0]


def _infer_input_shape(symbol, input_name, arg, aux):
    """The input shape read from the graph, or a PackageError saying why it cannot be."""
    attr = symbol.attr_dict().get(input_name, {}).get("__shape__")  # mx.sym.var("data", shape=...)
    if attr:
        with contextlib.suppress(PackageError):  # a partial shape such as (0, 3, -1, -1): look further
            return _parse_shape(attr)
    node, nodes = _first_layer(symbol, input_name)
    hint = "pass the input shape, e.g. --input-shape 1,3,224,224 (input_shape=(1, 3, 224, 224))"
    if node is not None and node["op"] in ("Reshape", "reshape"):
        # e.g. a Gluon net's x.reshape((-1, 1, 28, 28)): every size after the batch is fixed
        target = [int(n) for n in re.findall(r"-?\d+", node.get("attrs", {}).get("shape", ""))]
        if len(target) > 1 and min(target[1:]) > 0:
            return (1,) + tuple(target[1:])
    weight = None
    if node is not None and node["op"] in ("FullyConnected", "Convolution"):
        weight_name = nodes[node["inputs"][1][0]]["name"]
        weight = arg.get(weight_name)
    if weight is not None and node["op"] == "FullyConnected":
        return (1, int(weight.shape[1]))
    if weight is None or node["op"] != "Convolution" or len(weight.shape) != 4:
        raise PackageError(
            "the input shape cannot be read from the graph (its first layer is %s): %s"
            % (node["op"] if node else "not a single operator", hint)
        )
    groups = int(node.get("attrs", {}).get("num_group", 1))
    channels = int(weight.shape[1]) * groups
    fits = []
    for side in range(1, _MAX_SIDE + 1):
        shape = (1, channels, side, side)
        if _shape_errors(symbol, input_name, shape, arg, aux)[0] is None:
            fits.append(side)
            if len(fits) == 2:
                raise PackageError(
                    "the graph takes %d-channel pictures of several sizes (%dx%d, %dx%d, ...): %s"
                    % (channels, fits[0], fits[0], fits[1], fits[1], hint)
                )
    if not fits:
        raise PackageError(
            "no square input of %d channels up to %dx%d fits the graph's params: %s"
            % (channels, _MAX_SIDE, _MAX_SIDE, hint)
        )
    return (1, channels, fits[0], fits[0])


def _run_as_the_handler(model_dir, input_name, labels, shape):
    """Loads the written files as the default MXNet handler does and runs one forward pass on zeros."""
    import collections

    import mxnet as mx

    symbol, arg, aux = mx.model.load_checkpoint(os.path.join(model_dir, MODEL_PREFIX), 0)
    try:
        module = mx.mod.Module(symbol=symbol, context=mx.cpu(), data_names=[input_name], label_names=labels or None)
        with warnings.catch_warnings():  # no label shapes: inference needs none
            warnings.simplefilter("ignore", UserWarning)
            module.bind(for_training=False, data_shapes=[(input_name, shape)])
        module.set_params(arg, aux, allow_missing=False)
        module.forward(collections.namedtuple("Batch", ["data"])([mx.nd.zeros(shape)]), is_train=False)
        output = module.get_outputs()[0].asnumpy()
    except mx.base.MXNetError as e:
        raise PackageError("the packaged model does not run: %s" % _first_line(e)) from None
    import numpy as np

    if not np.isfinite(output).all():
        raise PackageError("the forward pass on zeros gives NaN or infinite outputs: the params are broken")
    return output.shape


# ---------------------------------------------------------------- writing


def _write_code(code_dir, entry_point, image_classifier):
    os.makedirs(code_dir)
    if image_classifier:
        with open(os.path.join(code_dir, ENTRY_POINT), "w", encoding="utf-8") as f:
            f.write(
                '"""Serving entry point written by smgluon package: see smgluon/image_classifier.py."""\n\n'
                "from smgluon.image_classifier import model_fn, transform_fn  # noqa: F401\n"
            )
        import smgluon

        shutil.copytree(
            os.path.dirname(os.path.abspath(smgluon.__file__)),
            os.path.join(code_dir, "smgluon"),
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        return ENTRY_POINT
    if not os.path.isfile(entry_point) or not entry_point.endswith(".py"):
        raise PackageError("%s: the entry point must be an existing .py file" % entry_point)
    shutil.copy2(entry_point, code_dir)
    return os.path.basename(entry_point)


def package_model(
    source=None,
    output="model.tar.gz",
    epoch=None,
    input_shape=None,
    input_name=None,
    synset=None,
    entry_point=None,
    image_classifier=False,
    classifier_options=None,
    zoo=None,
):
    """Writes ``output``, a model.tar.gz for ``MXNetModel`` and the default MXNet handler.

    Args:
        source: a checkpoint (``PREFIX``, ``PREFIX-symbol.json`` or the folder holding one
            checkpoint, from ``Module.save_checkpoint`` or ``HybridBlock.export``), a trained
            ``mxnet.mod.Module`` or a ``HybridBlock``. Leave it out with ``zoo``.
        output (str): the archive to write (replaced atomically if it exists), or a folder to write
            ``model.tar.gz`` in.
        epoch (int): the checkpoint's epoch (default: the only ``PREFIX-NNNN.params``).
        input_shape (sequence or str): e.g. ``(1, 3, 224, 224)`` or ``"1,3,224,224"``; read from the
            graph when it can be (a Module's bound shape, a FullyConnected or Convolution first layer
            that fixes it, a ``*-shapes.json`` beside the checkpoint), else required.
        input_name (str): the graph's data input (default ``data``, or its only input without params).
        synset (str): a label file, one line per class (``synset.txt``).
        entry_point (str): a serving script put in ``code/`` (``MXNetModel(entry_point=...)``).
        image_classifier (bool): put :mod:`smgluon.image_classifier` in ``code/`` instead.
        classifier_options (dict): its options (``channel_order``, ``scale``, ``mean``, ``std``,
            ``resize``, ``top_k``, ``output``).
        zoo (str): a Gluon model-zoo name (``resnet18_v1``): pretrained weights through MXNet's
            model store (see :func:`zoo_model`), packaged as an image classifier.

    Returns:
        dict: ``path``, ``input_name``, ``input_shape``, ``output_shape``, ``files``, ``entry_point``.

    Raises:
        PackageError: naming what is wrong with the model or an option; nothing is written then.
    """
    if zoo is not None:
        if source is not None:
            raise PackageError("pass either a model or a zoo name, not both")
        source, zoo_shape, zoo_options = zoo_model(zoo)
        input_shape = input_shape or zoo_shape
        image_classifier = image_classifier or entry_point is None
        classifier_options = dict(zoo_options, **(classifier_options or {}))
    if source is None:
        raise PackageError("nothing to package: pass a checkpoint, a Module, a HybridBlock or a zoo name")
    if entry_point and image_classifier:
        raise PackageError("pass either an entry point or image_classifier=True: both would be the serving script")
    if classifier_options and not image_classifier:
        raise PackageError("classifier options are for image_classifier=True (--image-classifier)")
    if synset is not None and not os.path.isfile(synset):
        raise PackageError("%s: no such synset file" % synset)
    import mxnet as mx

    from smgluon import image_classifier as classifier

    output = os.path.abspath(os.fspath(output))
    if os.path.isdir(output):  # a folder: the archive goes inside it, under SageMaker's name
        output = os.path.join(output, "model.tar.gz")
    os.makedirs(os.path.dirname(output), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-package-", dir=os.path.dirname(output))
    try:
        shapes_file, given_shape = None, _parse_shape(input_shape) if input_shape is not None else None
        if isinstance(source, mx.mod.BaseModule):
            symbol, arg, aux, (name, shape) = _from_module(source)
            input_name, given_shape = input_name or name, given_shape or shape
            origin = "the Module"
        else:
            if isinstance(source, mx.gluon.HybridBlock):
                source, input_name = _from_block(source, given_shape, tmp), input_name or "data"
                epoch = 0
            elif isinstance(source, mx.gluon.Block):
                raise PackageError("a Block that is not a HybridBlock has no graph to export: make it a HybridBlock")
            elif not isinstance(source, (str, os.PathLike)):
                raise PackageError(
                    "cannot package a %s: pass a checkpoint path, a Module or a HybridBlock" % type(source).__name__
                )
            symbol, arg, aux, shapes_file, origin = _load_checkpoint(source, epoch)
        input_name, labels = _inputs(symbol, arg, aux, input_name)
        if given_shape is None and shapes_file:
            with open(shapes_file, encoding="utf-8") as f:
                given_shape = _parse_shape(next(s["shape"] for s in json.load(f) if s["name"] == input_name))
        shape = given_shape or _infer_input_shape(symbol, input_name, arg, aux)
        error, out_shape = _shape_errors(symbol, input_name, shape, arg, aux)
        if error:
            raise PackageError(error)

        model_dir = os.path.join(tmp, "model")
        os.makedirs(model_dir)
        mx.model.save_checkpoint(os.path.join(model_dir, MODEL_PREFIX), 0, symbol, arg, aux, remove_amp_cast=False)
        with open(os.path.join(model_dir, SHAPES_FILE), "w", encoding="utf-8") as f:
            json.dump([{"name": input_name, "shape": list(shape)}], f)
        out_shape = _run_as_the_handler(model_dir, input_name, labels, shape)
        num_classes = int(out_shape[1]) if len(out_shape) == 2 else None
        if synset is not None:
            if num_classes is None:
                raise PackageError(
                    "a synset names classes, but the model's output has shape %s, not (1, classes)" % (out_shape,)
                )
            try:
                names = classifier.read_labels(synset, num_classes)
            except ValueError as e:
                raise PackageError(str(e)) from None
            with open(os.path.join(model_dir, classifier.LABEL_FILE), "w", encoding="utf-8") as f:
                f.write("\n".join(names) + "\n")
        script = None
        if image_classifier:
            if num_classes is None:
                raise PackageError("an image classifier's output is (1, classes); this model's is %s" % (out_shape,))
            try:
                config = classifier.check_config(dict(classifier_options or {}), shape, num_classes)
            except ValueError as e:
                raise PackageError(str(e)) from None
            with open(os.path.join(model_dir, classifier.CONFIG_FILE), "w", encoding="utf-8") as f:
                json.dump(config, f, indent=1)
        if image_classifier or entry_point:
            script = _write_code(os.path.join(model_dir, "code"), entry_point, image_classifier)
            if image_classifier:
                # the serving script loads what was written, as the endpoint will
                _check_classifier_loads(model_dir)
        files = sorted(os.listdir(model_dir))
        create_tar_gz(model_dir, output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "path": output,
        "source": origin,
        "input_name": input_name,
        "input_shape": shape,
        "output_shape": tuple(out_shape),
        "files": files,
        "entry_point": script,
    }


def _check_classifier_loads(model_dir):
    from smgluon import image_classifier

    try:
        image_classifier.model_fn(model_dir)
    except ValueError as e:
        raise PackageError("the image classifier cannot load the model: %s" % e) from None


def zoo_model(name):
    """A pretrained Gluon model-zoo net, fetched through MXNet's model store (``$MXNET_HOME/models``).

    Args:
        name (str): a name ``mxnet.gluon.model_zoo.vision.get_model`` knows, e.g. ``resnet18_v1``.

    Returns:
        tuple: the HybridBlock, its input shape and its classifier options (ImageNet's
        normalisation; shorter side 256 for 224 inputs).

    Raises:
        PackageError: for an unknown name, or when the weights cannot be fetched (offline).
    """
    from mxnet.gluon.model_zoo import vision

    side = 299 if name.startswith("inception") else 224
    try:
        net = vision.get_model(name, pretrained=True)
    except ValueError as e:
        raise PackageError(str(e).strip().splitlines()[0]) from None
    except (OSError, RuntimeError, AssertionError) as e:
        raise PackageError(
            "could not fetch the pretrained weights of %s through MXNet's model store (%s): this "
            "machine appears to be offline. Fetch them where you are online (they are kept in "
            "$MXNET_HOME/models, default ~/.mxnet/models) or package a checkpoint you have" % (name, _first_line(e))
        ) from None
    return net, (1, 3, side, side), dict(_ZOO_OPTIONS, resize=side * 8 // 7)


# ---------------------------------------------------------------- command line


def _numbers(text):
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise PackageError("expected numbers separated by commas, got %r" % text) from None
    return values[0] if len(values) == 1 else values


def cmd_package(args):
    """``smgluon package``: write a model.tar.gz and say what is in it."""
    options = {}
    if args.bgr:
        options["channel_order"] = "BGR"
    for key in ("scale", "mean", "std"):
        value = getattr(args, key)
        if value is not None:
            options[key] = _numbers(value)
    for key in ("resize", "top_k"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.source is None and args.zoo is None:
        raise PackageError("pass a checkpoint (PREFIX, PREFIX-symbol.json or its folder) or --zoo NAME")
    result = package_model(
        args.source,
        args.output,
        epoch=args.epoch,
        input_shape=args.input_shape,
        input_name=args.input_name,
        synset=args.synset,
        entry_point=args.entry_point,
        image_classifier=args.image_classifier,
        classifier_options=options or None,
        zoo=args.zoo,
    )
    print("smgluon: packaged %s" % (result["source"] if args.zoo is None else "zoo model " + args.zoo), file=sys.stderr)
    print(
        "input %s %s, output %s"
        % (result["input_name"], "x".join(map(str, result["input_shape"])), "x".join(map(str, result["output_shape"])))
    )
    print("files: %s" % ", ".join(result["files"]))
    print("model: %s" % result["path"])
    if result["entry_point"]:
        print("serve it: smgluon serve %s" % os.path.relpath(result["path"]))
    return 0


def add_package_command(sub):
    """Registers ``smgluon package`` on the command line's subparsers."""
    p = sub.add_parser(
        "package",
        help="package an MXNet checkpoint, Gluon export or zoo model as model.tar.gz",
        description="Write the model.tar.gz that MXNetModel and the SageMaker MXNet serving "
        "container load, after loading it and running one forward pass.",
    )
    p.add_argument(
        "source",
        nargs="?",
        metavar="CHECKPOINT",
        help="PREFIX (PREFIX-symbol.json + PREFIX-EPOCH.params), the symbol file, or its folder",
    )
    p.add_argument(
        "-o", "--output", default="model.tar.gz", help="the archive, or a folder for it (default: ./model.tar.gz)"
    )
    p.add_argument("--epoch", type=int, help="the params' epoch (default: the only PREFIX-NNNN.params)")
    p.add_argument(
        "--input-shape",
        metavar="N,C,H,W",
        help="the input's shape, e.g. 1,3,224,224 (default: read from the graph when it fixes it)",
    )
    p.add_argument("--input-name", help="the graph's data input (default: data)")
    p.add_argument("--synset", metavar="FILE", help="class labels, one line per class (synset.txt)")
    p.add_argument("--entry-point", metavar="SCRIPT.py", help="a serving script to put in code/")
    p.add_argument(
        "--image-classifier",
        action="store_true",
        help="serve JPEG/PNG pictures with smgluon's image classifier script (top-k labels)",
    )
    p.add_argument(
        "--zoo",
        metavar="NAME",
        help="a Gluon model-zoo net with pretrained weights from MXNet's model store (needs the network "
        "unless cached), e.g. resnet18_v1",
    )
    g = p.add_argument_group("image classifier options (with --image-classifier or --zoo)")
    g.add_argument("--bgr", action="store_true", help="the model takes BGR channels (default: RGB)")
    g.add_argument("--scale", help="pixels (0-255) are multiplied by this first (e.g. 0.00392156862745098)")
    g.add_argument("--mean", help="subtracted after scaling: one number or one per channel, e.g. 0.485,0.456,0.406")
    g.add_argument("--std", help="divides after the mean: one number or one per channel")
    g.add_argument("--resize", type=int, help="shorter side before the centre crop (default: the input's side)")
    g.add_argument("--top-k", type=int, help="classes listed per picture (default: 5)")
    p.set_defaults(func=cmd_package)
