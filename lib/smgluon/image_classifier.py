"""Serving script for image classifiers brought from elsewhere: a model-zoo checkpoint, a Gluon export.

``smgluon package --image-classifier`` puts it in ``model.tar.gz`` (``code/``)
beside the model, whose directory then holds:

* ``model-symbol.json``, ``model-0000.params``: the graph and its weights;
* ``model-shapes.json``: the input, e.g. ``[{"name": "data", "shape": [1, 3, 224, 224]}]``
  (one or three channels);
* ``synset.txt`` (optional): the label of class *i* on line *i* + 1, the model
  zoo's convention (``n03272010 electric guitar``); without it the labels are
  the class numbers;
* ``image-classifier.json``: how pictures become inputs (:data:`DEFAULTS`):

  - ``channel_order``: ``"RGB"`` or ``"BGR"``, the order of the model's input
    channels (the MXNet model zoo's checkpoints and Gluon nets take RGB;
    models trained on OpenCV-decoded images often take BGR);
  - ``scale``, ``mean``, ``std``: each input value is ``(pixel * scale - mean) / std``,
    pixels on the 0-255 scale, ``mean`` and ``std`` one number or one per
    channel in the model's channel order (Gluon's model zoo: scale 1/255, mean
    0.485, 0.456, 0.406, std 0.229, 0.224, 0.225; the lab's Inception-BN:
    raw pixels, scale 1, mean 0, std 1);
  - ``resize``: the picture's shorter side is scaled to this many pixels
    (bilinear), then the centre is cropped to the input's height × width;
    default: the input's longer side, so the largest centred square is kept
    (ImageNet evaluation uses 256 for 224);
  - ``top_k``: how many classes an answer lists (default 5);
  - ``output``: ``"probabilities"`` when the graph ends in a softmax
    (``SoftmaxOutput``), ``"logits"`` when it does not (Gluon nets): a softmax
    is applied to logits. Read from the graph when not set.

Requests (one picture, or a batch of at most :data:`MAX_BATCH`):

* ``image/jpeg``, ``image/png``: one picture of any size and colour mode (grey,
  palette, RGBA: alpha is dropped; 16-bit). Pictures of more than 40
  megapixels, truncated or corrupt ones are refused before decoding
  (:mod:`smgluon.images`);
* ``application/json``: ``{"instances": [{"b64": "<base64 JPEG/PNG>"}, ...]}``
  for a batch of pictures, or decoded pixels (below) as an array or as
  ``"instances"``; the object may carry ``"top_k"`` and ``"probabilities"``;
* ``application/x-npy`` (or JSON arrays): decoded pixels on the 0-255 scale,
  RGB: one picture ``H×W`` (grey) or ``H×W×C`` (C = 1, 3 or 4), or a batch
  ``N×H×W×C``. They are resized, cropped and normalised like pictures, so a
  decoded JPEG sent as an array gets the JPEG's answer. With
  ``Content-Type: application/x-npy; preprocessed=true`` the array is the
  model's input itself (``N×C×H×W``, normalised), passed through unchanged.

Answer (``application/json``): ``{"predictions": [546], "labels": ["n03272010
electric guitar"], "top_k": [[{"class": 546, "label": ..., "probability":
0.65}, ...]]}``, plus ``"probabilities"`` (N × classes) on request;
``Accept: application/json; top_k=3; probabilities=true`` or the JSON body
choose. Every bad request is a 4xx answer naming the problem; the server
stays up.
"""

import base64
import binascii
import json
import os

import numpy as np

from smgluon import images, serving

__all__ = [
    "CONFIG_FILE",
    "LABEL_FILE",
    "DEFAULTS",
    "MAX_BATCH",
    "check_config",
    "graph_output",
    "read_labels",
    "preprocess",
    "model_fn",
    "transform_fn",
]

CONFIG_FILE = "image-classifier.json"
LABEL_FILE = "synset.txt"
SHAPES_FILE = "model-shapes.json"
DEFAULTS = {"channel_order": "RGB", "scale": 1.0, "mean": 0.0, "std": 1.0, "resize": None, "top_k": 5, "output": None}
MAX_BATCH = 64  # pictures per request: 64 inputs of 3x224x224 float32 are 38 MB
_SOFTMAX_OPS = ("SoftmaxOutput", "softmax", "SoftmaxActivation", "Softmax")
_BILINEAR = 1  # OpenCV's default, as cv2.resize in the lab


def _per_channel(name, value, channels):
    values = np.atleast_1d(np.asarray(value, dtype=np.float64)) if _numeric(value) else None
    if values is None or values.ndim != 1 or len(values) not in (1, channels) or not np.isfinite(values).all():
        raise ValueError("%s must be one number or %d numbers (one per channel), got %r" % (name, channels, value))
    return values


def _numeric(value):
    items = value if isinstance(value, (list, tuple)) else [value]
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items) and len(items) > 0


def check_config(config, input_shape, num_classes):
    """Validates an image classifier's options against its model; returns them complete.

    Args:
        config (dict): options (keys of :data:`DEFAULTS`); missing ones take the defaults.
        input_shape (sequence): the model input, ``(1, C, H, W)`` with C = 1 or 3.
        num_classes (int): the size of the model's output.

    Returns:
        dict: every option, ``mean``/``std`` as lists, ``resize`` and ``top_k`` resolved.

    Raises:
        ValueError: naming the option, its value and what is allowed.
    """
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError("unknown image classifier options %s; known: %s" % (unknown, sorted(DEFAULTS)))
    shape = tuple(input_shape)
    if len(shape) != 4 or shape[1] not in (1, 3) or min(shape[2:]) < 1:
        raise ValueError(
            "an image classifier takes pictures as (N, C, H, W) with 1 or 3 channels; "
            "this model's input is %s" % (shape,)
        )
    channels, height, width = shape[1:]
    full = dict(DEFAULTS, **config)
    order = str(full["channel_order"]).upper()
    if order not in ("RGB", "BGR"):
        raise ValueError("channel_order must be RGB or BGR, got %r" % full["channel_order"])
    scale = full["scale"]
    if not _numeric(scale) or isinstance(scale, (list, tuple)) or not 0 < scale < float("inf"):
        raise ValueError("scale must be a positive number, got %r" % (scale,))
    mean = _per_channel("mean", full["mean"], channels)
    std = _per_channel("std", full["std"], channels)
    if (std <= 0).any():
        raise ValueError("std must be positive, got %r" % (full["std"],))
    resize = full["resize"] if full["resize"] is not None else max(height, width)
    if isinstance(resize, bool) or not isinstance(resize, int) or resize < max(height, width):
        raise ValueError(
            "resize (the shorter side before the %dx%d centre crop) must be an integer of at least "
            "%d, got %r" % (width, height, max(height, width), full["resize"])
        )
    top_k = full["top_k"]
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError("top_k must be a positive integer, got %r" % (top_k,))
    if full["output"] not in (None, "probabilities", "logits"):
        raise ValueError("output must be 'probabilities' or 'logits', got %r" % (full["output"],))
    return {
        "channel_order": order,
        "scale": float(scale),
        "mean": mean.tolist(),
        "std": std.tolist(),
        "resize": resize,
        "top_k": min(top_k, num_classes),
        "output": full["output"],
    }


def graph_output(symbol_json):
    """``"probabilities"`` when the graph's first output is a softmax, else ``"logits"``.

    Args:
        symbol_json (str): the text of a ``*-symbol.json``.
    """
    graph = json.loads(symbol_json)
    node = graph["nodes"][graph["heads"][0][0]]
    return "probabilities" if node.get("op") in _SOFTMAX_OPS else "logits"


def read_labels(path, num_classes):
    """The lines of a synset file, one label per class.

    Raises:
        ValueError: when the file does not hold exactly ``num_classes`` non-empty lines.
    """
    with open(path, encoding="utf-8") as f:
        labels = [line.strip() for line in f.read().splitlines()]
    while labels and not labels[-1]:
        labels.pop()
    if len(labels) != num_classes or not all(labels):
        raise ValueError(
            "%s holds %d labels (non-empty lines); the model has %d classes: one line per class, "
            "in class order" % (path, len([x for x in labels if x]), num_classes)
        )
    return labels


def preprocess(pixels, input_shape, config):
    """Turns one decoded picture into the model's input.

    Args:
        pixels (numpy.ndarray): uint8-range values, (H, W) grey or (H, W, C) with C = 1, 3 (RGB) or 4 (RGBA).
        input_shape (sequence): ``(1, C, H, W)``.
        config (dict): from :func:`check_config`.

    Returns:
        numpy.ndarray: float32 (C, H, W).

    Raises:
        smgluon.serving.RequestError: for a picture so elongated that scaling it would exceed
            :data:`smgluon.images.MAX_PIXELS`.
    """
    import mxnet as mx

    channels, height, width = input_shape[1:]
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] == 4:
        pixels = pixels[:, :, :3]
    if channels == 3 and pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    elif channels == 1 and pixels.shape[2] == 3:
        # OpenCV's luma, as imdecode(flag=0) computes it for pictures
        pixels = np.rint(pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[:, :, None]
    short, long = sorted(pixels.shape[:2])
    if config["resize"] * (config["resize"] * long // short) > images.MAX_PIXELS:
        # a 1 x 40000 strip passes the size check but would be scaled to 224 x 8960000
        raise serving.RequestError(
            "the picture is too narrow (%dx%d): with its shorter side scaled to %d it would exceed %d pixels; "
            "crop it first" % (pixels.shape[1], pixels.shape[0], config["resize"], images.MAX_PIXELS)
        )
    image = mx.nd.array(np.clip(pixels, 0, 255), dtype=np.uint8)
    image = mx.image.resize_short(image, config["resize"], interp=_BILINEAR)
    image, _ = mx.image.center_crop(image, (width, height), interp=_BILINEAR)
    x = image.asnumpy().astype(np.float32)
    if config["channel_order"] == "BGR":
        x = x[:, :, ::-1]
    x = (x * config["scale"] - np.asarray(config["mean"], np.float32)) / np.asarray(config["std"], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def model_fn(model_dir):
    """Loads the model, its labels and options; one forward pass so the first request is not the slow one.

    Returns:
        smgluon.serving.BoundModel: with ``labels``, ``input_shape`` and ``config`` attributes.
    """
    serving.skip_request_metric_lines()
    with open(os.path.join(model_dir, SHAPES_FILE), encoding="utf-8") as f:
        (signature,) = json.load(f)
    input_shape = tuple(int(n) for n in signature["shape"])
    symbol_file = os.path.join(model_dir, "model-symbol.json")
    model = serving.BoundModel(symbol_file, os.path.join(model_dir, "model-0000.params"), input_name=signature["name"])
    num_classes = int(np.prod(model.predict(np.zeros((1,) + input_shape[1:], np.float32)).shape[1:]))
    config = {}
    if os.path.exists(os.path.join(model_dir, CONFIG_FILE)):
        with open(os.path.join(model_dir, CONFIG_FILE), encoding="utf-8") as f:
            config = json.load(f)
    config = check_config(config, input_shape, num_classes)
    if config["output"] is None:
        with open(symbol_file, encoding="utf-8") as f:
            config["output"] = graph_output(f.read())
    label_path = os.path.join(model_dir, LABEL_FILE)
    model.labels = read_labels(label_path, num_classes) if os.path.exists(label_path) else None
    model.input_shape, model.config, model.num_classes = input_shape, config, num_classes
    return model


def _flag(value, name):
    text = str(value).lower()
    if text not in ("true", "false"):
        raise serving.RequestError("%s must be true or false, got %r" % (name, value))
    return text == "true"


def _top_k(value, num_classes):
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) <= num_classes:
        raise serving.RequestError("top_k must be an integer from 1 to %d, got %r" % (num_classes, value))
    return int(text)


def _picture_from_b64(item, index):
    if not isinstance(item, dict) or set(item) != {"b64"} or not isinstance(item["b64"], str):
        raise serving.RequestError(
            'instance %d: a picture in JSON is {"b64": "<base64 of the JPEG/PNG bytes>"}' % index
        )
    try:
        return base64.b64decode(item["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise serving.RequestError("instance %d: the b64 value is not valid base64" % index) from None


def _pixel_pictures(array):
    """Decoded pixels as a list of (H, W, C) arrays (the checks are the client's errors)."""
    try:
        array = np.asarray(array, dtype=np.float32)
    except (TypeError, ValueError):
        raise serving.RequestError(
            "pixels must be an array of numbers (0-255), one picture H x W (x C) or a batch N x H x W x C"
        ) from None
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4)):
        array = array[None]
    if array.ndim == 3:
        array = array[:, :, :, None]
    if array.ndim != 4 or array.shape[3] not in (1, 3, 4) or 0 in array.shape[1:]:
        raise serving.RequestError(
            "pixels must be one picture H x W or H x W x C (C = 1, 3 or 4, RGB order) or a "
            "batch N x H x W x C; got shape %s" % (array.shape,)
        )
    if array.shape[1] * array.shape[2] > images.MAX_PIXELS:
        raise serving.RequestError(
            "the pictures are too large (%dx%d pixels, at most %d): scale them down first"
            % (array.shape[2], array.shape[1], images.MAX_PIXELS)
        )
    if array.size and (not np.isfinite(array).all() or array.min() < 0 or array.max() > 255):
        raise serving.RequestError(
            "pixel values must be finite and in 0-255 (multiply 0-1 pictures by 255), or "
            "send the model's input with Content-Type: application/x-npy; preprocessed=true"
        )
    return list(array)


def _preprocessed(array, input_shape):
    try:
        array = np.asarray(array, dtype=np.float32)
    except (TypeError, ValueError):
        raise serving.RequestError(
            "a preprocessed batch must be an array of numbers, N x %s" % " x ".join(str(n) for n in input_shape[1:])
        ) from None
    if array.shape == tuple(input_shape[1:]):
        array = array[None]
    if array.ndim != 4 or array.shape[1:] != tuple(input_shape[1:]):
        raise serving.RequestError(
            "a preprocessed batch must be N x %s (the model's input), got shape %s"
            % (" x ".join(str(n) for n in input_shape[1:]), array.shape)
        )
    if not np.isfinite(array).all():
        raise serving.RequestError("a preprocessed batch must hold finite numbers")
    return array


def _batch(model, data, content_type):
    """The request as the model's input batch, and the options its JSON body carries."""
    ctype, params = serving.media_type(content_type)
    preprocessed = _flag(params.get("preprocessed", "false"), "preprocessed")
    options = {}
    if ctype in images.IMAGE_TYPES:
        pictures = [data]
    elif ctype in ("application/json", "application/x-npy"):
        payload = serving.DECODERS[ctype](data)
        if isinstance(payload, dict):
            unknown = set(payload) - {"instances", "top_k", "probabilities"}
            if unknown or "instances" not in payload:
                raise serving.RequestError(
                    'a JSON object must be {"instances": [...], "top_k": 5, '
                    '"probabilities": false}; got keys %s' % sorted(payload)
                )
            options = {k: payload[k] for k in ("top_k", "probabilities") if k in payload}
            payload = payload["instances"]
        if preprocessed:
            pictures = None
        elif isinstance(payload, list) and payload and isinstance(payload[0], dict):
            pictures = [_picture_from_b64(item, i) for i, item in enumerate(payload)]
        else:
            pictures = _pixel_pictures(payload)
    else:
        raise serving.RequestError(
            "unsupported content type %r: send image/jpeg, image/png, application/json or "
            "application/x-npy" % content_type,
            415,
        )
    if pictures is None:
        batch = _preprocessed(payload, model.input_shape)
    else:
        if not pictures:
            raise serving.RequestError("the request holds no picture")
        if len(pictures) > MAX_BATCH:
            raise serving.RequestError(
                "%d pictures in one request; at most %d: split the batch" % (len(pictures), MAX_BATCH)
            )
        colour = model.input_shape[1] == 3
        decoded = [
            images.decode_image(p, colour=colour) if isinstance(p, (bytes, bytearray, str)) else p for p in pictures
        ]
        batch = np.stack([preprocess(p, model.input_shape, model.config) for p in decoded])
    if len(batch) > MAX_BATCH:
        raise serving.RequestError("%d inputs in one request; at most %d: split the batch" % (len(batch), MAX_BATCH))
    if len(batch) == 0:
        raise serving.RequestError("the request holds no picture")
    return batch, options


@serving.answer_request_errors
def transform_fn(model, data, input_content_type, output_content_type):
    """Classifies the pictures of one request (see the module's documentation for the formats).

    Args:
        model: what :func:`model_fn` returns.
        data (bytes or str): the request body.
        input_content_type (str): image/jpeg, image/png, application/json or application/x-npy
            (``; preprocessed=true`` for the model's own input).
        output_content_type (str): application/json, optionally ``; top_k=3; probabilities=true``.

    Returns:
        tuple(str, str): the JSON answer and its content type.

    Raises:
        smgluon.serving.RequestError: a client error (4xx) naming the problem.
    """
    params = serving.accept_json(output_content_type)
    batch, options = _batch(model, data, input_content_type)
    params.update(options)  # the JSON body's options win over the Accept header's
    top_k = _top_k(params["top_k"], model.num_classes) if "top_k" in params else model.config["top_k"]
    probabilities = _flag(params.get("probabilities", "false"), "probabilities")

    scores = model.predict(batch).reshape(len(batch), -1)
    probs = serving.softmax(scores) if model.config["output"] == "logits" else scores
    labels = model.labels or [str(c) for c in range(model.num_classes)]
    best = np.argsort(-probs, axis=1, kind="stable")[:, :top_k]
    answer = {
        "predictions": best[:, 0].astype(np.int64).tolist(),
        "labels": [labels[c] for c in best[:, 0]],
        "top_k": [
            [{"class": int(c), "label": labels[c], "probability": round(float(p[c]), 6)} for c in row]
            for row, p in zip(best, probs)
        ],
    }
    if probabilities:
        answer["probabilities"] = np.round(probs, 6).tolist()
    return json.dumps(answer), "application/json"
