"""Request decoding and client errors for an entry point's ``transform_fn``.

In the SageMaker MXNet serving container, an exception raised by
``transform_fn`` becomes an HTTP 500 unless it is one of the inference
toolkit's error types, which carry their own status code. :class:`RequestError`
is that type when the toolkit is present (the serving container, local mode)
and a plain ``ValueError`` elsewhere (a notebook), so entry points raise it for
every malformed payload and the server answers 4xx with the message.

The toolkit also appends the Python traceback to that message in the response
body; :func:`answer_request_errors` wraps a ``transform_fn`` so the client gets
the status code and the message alone.
"""

import collections
import functools
import http
import inspect
import io
import json
import logging
import math

import numpy as np

__all__ = [
    "RequestError",
    "answer_request_errors",
    "skip_request_metric_lines",
    "media_type",
    "accept_json",
    "decode_json",
    "decode_npy",
    "decode_csv",
    "BoundModel",
    "predict",
    "softmax",
    "encode_npy",
    "DECODERS",
]

try:  # present in the serving container; optional everywhere else
    from sagemaker_inference.errors import GenericInferenceToolkitError as _ToolkitError
except ImportError:  # pragma: no cover - depends on the environment

    class _ToolkitError(Exception):
        def __init__(self, status_code, message=None, phrase=None):
            self.status_code = status_code
            self.message = message or "Invalid Request"
            self.phrase = phrase or self.message
            super().__init__(status_code, self.message, self.phrase)


class RequestError(_ToolkitError, ValueError):
    """A bad request: the server answers ``status_code`` (4xx) with the message.

    Args:
        message (str): what is wrong and how to fix it.
        status_code (int): 400 for a malformed payload, 415 for an unsupported
            content type, 406 for an unsupported accept type.
    """

    def __init__(self, message, status_code=400):
        super().__init__(status_code, message, message)

    def __str__(self):
        return self.message


def answer_request_errors(transform_fn):
    """Decorator for an entry point's ``transform_fn``: a :class:`RequestError` is answered
    with its 4xx status and its message alone, as ``text/plain``.

    The inference toolkit's own answer to an error carries the right status code but
    puts the Python traceback into the body after the message. The toolkit passes the
    model server's request context to a ``transform_fn`` that takes a fifth parameter
    (sagemaker-inference 1.10, the pinned version); the decorated function takes it,
    sets the status on it and returns the message. Called without a context (from a
    notebook, a test, or a toolkit that does not pass one) it raises the
    :class:`RequestError`, so behaviour elsewhere is unchanged. Other exceptions pass
    through to the toolkit (HTTP 500).

    Args:
        transform_fn (callable): ``transform_fn(model, data, input_content_type, output_content_type)``.

    Returns:
        callable: ``transform_fn(model, data, input_content_type, output_content_type, context=None)``.
    """

    def transform_fn_with_context(model, data, input_content_type, output_content_type, context=None):
        try:
            return transform_fn(model, data, input_content_type, output_content_type)
        except RequestError as error:
            if context is None:
                raise
            # The reason phrase goes into the status line: the standard one, never user text.
            context.set_response_status(code=error.status_code, phrase=_reason_phrase(error.status_code))
            return error.message, "text/plain; charset=utf-8"

    signature = inspect.signature(transform_fn_with_context)
    functools.update_wrapper(transform_fn_with_context, transform_fn)
    # The toolkit counts inspect.signature()'s parameters, on every request, to decide whether
    # to pass the context. A stored __signature__ is what signature() returns (instead of
    # following __wrapped__ to the 4-parameter original), and it skips re-deriving it each time.
    transform_fn_with_context.__signature__ = signature
    return transform_fn_with_context


def _reason_phrase(status_code):
    try:
        return http.HTTPStatus(status_code).phrase
    except ValueError:
        return "Client Error"


def skip_request_metric_lines():
    """Stops multi-model-server's worker from logging a metric line for every request.

    After each request the worker logs ``[METRICS]PredictionTime...`` to its stdout;
    the Java frontend reads the line back, parses it and passes it to its
    MODEL_METRICS logger, which the SageMaker containers' log configuration (and
    local mode's) sets to WARN: the line is thrown away. Raising the worker's
    ``mms.service`` logger to WARNING skips it (its warnings and errors still go
    out), and with it a good part of the server's CPU time per small request
    (bench/results/serving.md). Call it from ``model_fn``; elsewhere it only
    changes that one logger's level.
    """
    logging.getLogger("mms.service").setLevel(logging.WARNING)


def media_type(header):
    """Splits a Content-Type or Accept header into its media type and parameters.

    Args:
        header (str): e.g. ``"application/json; probabilities=true"``.

    Returns:
        tuple(str, dict): ``("application/json", {"probabilities": "true"})``.
    """
    parts = [p.strip() for p in (header or "").split(";")]
    params = {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"')
    return parts[0].lower(), params


def accept_json(header):
    """Checks that a request accepts the JSON every workload answers with; returns the header's parameters.

    Args:
        header (str): the Accept header (None or empty: anything).

    Returns:
        dict: its parameters, e.g. ``{"probabilities": "true"}``.

    Raises:
        RequestError: 406 for any other media type.
    """
    accept, params = media_type(header or "application/json")
    if accept not in ("application/json", "*/*"):
        raise RequestError("unsupported accept type %r: this model answers application/json" % accept, 406)
    return params


def _text(data):
    if isinstance(data, (bytes, bytearray)):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError("the payload is not UTF-8 text") from None
    return data


def decode_json(data):
    """Parses a JSON payload.

    Raises:
        RequestError: for invalid JSON, with the position of the fault.
    """
    try:
        return json.loads(_text(data))
    except ValueError as e:
        raise RequestError("invalid JSON payload: %s" % e) from None
    except RecursionError:  # arrays or objects nested thousands of levels deep
        raise RequestError("the JSON payload nests arrays or objects too deeply to parse") from None


def decode_npy(data):
    """Parses a NumPy ``.npy`` payload (what the SDK's NumpySerializer sends).

    The header's shape and dtype are checked against the bytes that follow before
    anything is allocated, so a header claiming a huge array is a client error, not
    an allocation the server cannot make.

    Raises:
        RequestError: for anything that is not a numeric .npy array.
    """
    if isinstance(data, str):
        data = data.encode("latin-1")
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = _NPY_HEADER_READERS.get(version)
        if read_header is None:
            raise ValueError("unsupported .npy format version %d.%d" % version)
        shape, _, dtype = read_header(stream)
    except (ValueError, OSError, EOFError, SyntaxError) as e:
        raise RequestError("invalid application/x-npy payload: %s" % e) from None
    if not np.issubdtype(dtype, np.number):
        raise RequestError("the .npy array must be numeric, got dtype %s" % dtype)
    declared = math.prod(shape) * dtype.itemsize
    if declared != len(data) - stream.tell():
        raise RequestError(
            "invalid application/x-npy payload: its header declares shape %s of %s (%d bytes of data), "
            "but %d bytes follow" % (shape, dtype, declared, len(data) - stream.tell())
        )
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise RequestError("invalid application/x-npy payload: %s" % e) from None


_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def decode_csv(data):
    """Parses a CSV payload of numbers: one row per line.

    Raises:
        RequestError: for a non-numeric cell or ragged rows.
    """
    rows = [line for line in _text(data).splitlines() if line.strip()]
    if not rows:
        raise RequestError("empty text/csv payload")
    try:
        values = [[float(cell) for cell in row.split(",")] for row in rows]
    except ValueError as e:
        raise RequestError("invalid text/csv payload: %s" % e) from None
    if len({len(r) for r in values}) != 1:
        raise RequestError("text/csv rows have different lengths: %s" % sorted({len(r) for r in values}))
    return np.asarray(values, dtype=np.float32)


class BoundModel:
    """An exported model bound for inference on the CPU: what ``model_fn`` returns for fast serving.

    Loads ``<prefix>-symbol.json`` and ``<prefix>-0000.params`` (what
    ``HybridBlock.export`` writes) and binds one MXNet executor per input shape,
    sharing the parameters. A request then costs a copy into the bound input, one
    forward pass and one read-back: fewer Python and engine calls than creating an
    NDArray and calling a hybridized ``SymbolBlock``, for the same scores (what it
    saves per request: bench/results/serving.md). Not thread-safe: the model
    server gives each worker its own copy.

    Args:
        symbol_file (str): the exported ``*-symbol.json``.
        params_file (str): the exported ``*-NNNN.params``.
        input_name (str): the symbol's data input (default ``"data"``).
        max_shapes (int): executors kept, one per input shape, least recently used
            evicted (default 4: one-image requests plus a few batch sizes).
    """

    def __init__(self, symbol_file, params_file, input_name="data", max_shapes=4):
        import mxnet as mx  # imported here: decoding payloads needs only numpy

        self._mx = mx
        self.symbol = mx.sym.load(symbol_file)
        self.input_name = input_name
        self.max_shapes = max_shapes
        saved = mx.nd.load(params_file)
        self.arg_params = {k[4:]: v for k, v in saved.items() if k.startswith("arg:")}
        self.aux_params = {k[4:]: v for k, v in saved.items() if k.startswith("aux:")}
        arguments = self.symbol.list_arguments()
        if input_name not in arguments:
            raise ValueError("%s has no input %r; its arguments: %s" % (symbol_file, input_name, arguments))
        missing = sorted(set(arguments) - set(self.arg_params) - {input_name})
        # A Module checkpoint's loss head (SoftmaxOutput) keeps its label input; inference ignores it.
        self.label_names = [name for name in missing if name.endswith("label")]
        missing = [name for name in missing if name not in self.label_names]
        if missing:
            raise ValueError("%s lacks parameters of %s: %s" % (params_file, symbol_file, missing))
        self._executors = collections.OrderedDict()

    def _executor(self, shape):
        executor = self._executors.pop(shape, None)
        if executor is None:
            mx = self._mx
            args = dict(self.arg_params)
            args[self.input_name] = mx.nd.empty(shape, ctx=mx.cpu())
            if self.label_names:
                arg_shapes, _, _ = self.symbol.infer_shape(**{self.input_name: shape})
                shapes = dict(zip(self.symbol.list_arguments(), arg_shapes))
                args.update({name: mx.nd.zeros(shapes[name], ctx=mx.cpu()) for name in self.label_names})
            executor = self.symbol.bind(mx.cpu(), args=args, aux_states=dict(self.aux_params), grad_req="null")
            while len(self._executors) >= self.max_shapes:
                self._executors.popitem(last=False)
        self._executors[shape] = executor  # most recently used last
        return executor

    def predict(self, batch):
        """Scores of a batch.

        Args:
            batch (numpy.ndarray): inputs, converted to float32.

        Returns:
            numpy.ndarray: the model's first output.
        """
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        executor = self._executor(batch.shape)
        executor.arg_dict[self.input_name]._sync_copyfrom(batch)  # what `x[:] = batch` ends in
        executor.forward(is_train=False)
        return executor.outputs[0].asnumpy()


def predict(model, batch):
    """Scores of a float32 NumPy batch from a :class:`BoundModel` or any Gluon block (a net trained in a notebook).

    Returns:
        numpy.ndarray
    """
    if isinstance(model, BoundModel):
        return model.predict(batch)
    import mxnet as mx

    return model(mx.nd.array(batch, dtype=np.float32)).asnumpy()


def softmax(scores):
    """Row-wise softmax of NumPy scores (float32), computed stably."""
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def encode_npy(array):
    """Serialises an array as .npy bytes."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


DECODERS = {
    "application/json": decode_json,
    "application/x-npy": decode_npy,
    "text/csv": decode_csv,
}
