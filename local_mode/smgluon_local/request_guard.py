"""Answers malformed requests with a 4xx and a one-line message before the inference toolkit decodes them.

The SageMaker inference toolkit turns a request into the entry point's arguments
itself, and some bodies fail there, outside any handler a workload can write:
it decodes ``application/json`` and ``text/csv`` bodies as UTF-8 (other bytes:
500 with a traceback), and a JSON array nested thousands of levels deep exceeds
Python's recursion limit in whatever parses it (500). A body over SageMaker's
payload limit is refused by the model server's frontend before any Python runs,
with an empty 413, and the connection is closed mid-upload when the client asked
for ``Connection: close`` (the client sees a reset).

:func:`check` finds those faults first, in the worker, so the handler service
(:mod:`smgluon_local.handler_service`) answers them itself. Good requests are
passed on untouched. The size limit is SageMaker's: ``SAGEMAKER_MAX_PAYLOAD_IN_MB``
(6 MB when unset, as for a real endpoint's InvokeEndpoint). :func:`frontend_limit`
is the larger cap the model server's frontend is given, so bodies up to twice
the limit reach :func:`check` and get a message.

This module runs inside the model server's workers: standard library only, and
nothing from ``smgluon`` (a model's ``code/`` may ship an older copy of it).
"""

import http
import os
import re

__all__ = [
    "MAX_PAYLOAD_ENV",
    "DEFAULT_MAX_PAYLOAD_MB",
    "MAX_JSON_DEPTH",
    "RequestRejected",
    "max_payload_bytes",
    "frontend_limit",
    "json_depth_exceeds",
    "check",
    "answer",
]

MAX_PAYLOAD_ENV = "SAGEMAKER_MAX_PAYLOAD_IN_MB"
DEFAULT_MAX_PAYLOAD_MB = 6  # InvokeEndpoint's payload limit
# Far deeper than any workload's payload ({"instances": [[[[...]]]]} is 5), far below Python's recursion limit.
MAX_JSON_DEPTH = 100
# Media types the inference toolkit decodes as UTF-8 before the entry point sees them, and other JSON texts.
_TEXT_TYPES = ("application/json", "text/csv", "application/jsonlines")
_JSON_TYPES = ("application/json", "application/jsonlines")
# A JSON string (skipped whole, so brackets inside it do not count), a bracket, or the quote
# opening a string that never ends (the rest of the text is that string: nothing more to count).
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|["\[\]{}]', re.DOTALL)


class RequestRejected(Exception):
    """A request the guard answers itself: ``status`` (4xx) and a one-line ``message``."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def max_payload_bytes(environ=None):
    """The request size limit in bytes: ``SAGEMAKER_MAX_PAYLOAD_IN_MB`` MB (default 6).

    Raises:
        ValueError: when the variable is not a positive whole number of MB.
    """
    environ = os.environ if environ is None else environ
    text = str(environ.get(MAX_PAYLOAD_ENV) or DEFAULT_MAX_PAYLOAD_MB).strip()
    if not text.isdigit() or int(text) < 1:
        raise ValueError(
            "%s=%r: give the request size limit as a whole number of MB, e.g. %d"
            % (MAX_PAYLOAD_ENV, text, DEFAULT_MAX_PAYLOAD_MB)
        )
    return int(text) * 1024 * 1024


def frontend_limit(environ=None):
    """The model server frontend's own request size cap: twice :func:`max_payload_bytes`.

    Bodies between the two get the guard's 413 with a message; the frontend refuses
    larger ones itself (an empty 413).
    """
    return 2 * max_payload_bytes(environ)


def _media_type(header):
    parts = (header or "").split(";")
    params = {}
    for part in parts[1:]:
        key, _, value = part.partition("=")
        params[key.strip().lower()] = value.strip().strip('"').lower()
    return parts[0].strip().lower(), params


def json_depth_exceeds(body, limit=MAX_JSON_DEPTH):
    """Whether a JSON text nests arrays and objects more than ``limit`` levels deep.

    Reads the text as far as the first level too deep; brackets inside strings do not
    count. Malformed JSON is not judged here (the parser reports it).

    Args:
        body (bytes): the JSON text.
        limit (int): the deepest nesting allowed.
    """
    if body.count(b"[") + body.count(b"{") <= limit:  # cannot be deeper: the usual case, no scan
        return False
    depth = 0
    for token in _JSON_TOKEN.finditer(body):
        char = token.group()
        if char in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif char in (b"]", b"}"):
            depth -= 1
        elif char == b'"':
            break  # an unterminated string: malformed, and no bracket after it counts
    return False


def check(body, content_type, limit=None):
    """Rejects a request body the toolkit or the parsers would fail on with a server error.

    Args:
        body (bytes): the request body.
        content_type (str): its Content-Type header.
        limit (int): the size limit in bytes (default: :func:`max_payload_bytes`).

    Raises:
        RequestRejected: 413 for a body over the limit; 400 for text that is not
            UTF-8 or JSON nested deeper than :data:`MAX_JSON_DEPTH`.
    """
    limit = max_payload_bytes() if limit is None else limit
    body = body or b""
    if len(body) > limit:
        raise RequestRejected(
            413,
            "the request body is %d bytes; the limit is %d bytes (%s=%d): send smaller batches"
            % (len(body), limit, MAX_PAYLOAD_ENV, limit // (1024 * 1024)),
        )
    if isinstance(body, str):
        body = body.encode("utf-8", errors="surrogatepass")
    media_type, params = _media_type(content_type)
    if media_type in _TEXT_TYPES and params.get("charset", "utf-8") in ("utf-8", "utf8"):
        if not body.isascii():
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as e:
                raise RequestRejected(
                    400, "the %s body is not UTF-8 text (byte %d: %s)" % (media_type, e.start, e.reason)
                ) from None
    if media_type in _JSON_TYPES and json_depth_exceeds(body):
        raise RequestRejected(400, "the JSON body nests arrays or objects more than %d levels deep" % MAX_JSON_DEPTH)


def answer(error, context, index=0):
    """Sets a rejected request's status and content type on the model server's context; returns the body.

    The reason phrase in the status line is the standard one, never user text.
    """
    phrase = http.HTTPStatus(error.status).phrase
    context.set_response_status(code=error.status, phrase=phrase)
    context.set_response_content_type(index, "text/plain; charset=utf-8")
    return error.message
