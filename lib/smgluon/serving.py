"""Request decoding and client errors for an entry point's ``transform_fn``.

In the SageMaker MXNet serving container, an exception raised by
``transform_fn`` becomes an HTTP 500 unless it is one of the inference
toolkit's error types, which carry their own status code. :class:`RequestError`
is that type when the toolkit is present (the serving container, local mode)
and a plain ``ValueError`` elsewhere (a notebook), so entry points raise it for
every malformed payload and the server answers 4xx with the message.
"""

import io
import json

import numpy as np

__all__ = ["RequestError", "media_type", "decode_json", "decode_npy", "decode_csv", "encode_npy", "DECODERS"]

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


def decode_npy(data):
    """Parses a NumPy ``.npy`` payload (what the SDK's NumpySerializer sends).

    Raises:
        RequestError: for anything that is not a numeric .npy array.
    """
    if isinstance(data, str):
        data = data.encode("latin-1")
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise RequestError("invalid application/x-npy payload: %s" % e) from None
    if not np.issubdtype(array.dtype, np.number):
        raise RequestError("the .npy array must be numeric, got dtype %s" % array.dtype)
    return array


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
