"""Batch transform (CreateTransformJob) with the same model server and handlers as endpoints.

A transform job starts the model's server (:class:`~smgluon_local.container.ProcessContainer`,
as ``deploy()`` does, with SageMaker's batch variables in its environment), reads
every input file, splits it into records (``SplitType``), packs records into
requests (``BatchStrategy``, ``MaxPayloadInMB``), posts them to ``/invocations``
(``MaxConcurrentTransforms`` at a time) and writes ``<input file name>.out`` under
``S3OutputPath``, as SageMaker's batch transform does. ``DataProcessing``
(``InputFilter``, ``JoinSource``, ``OutputFilter``) follows SageMaker's data
processing: JSONPath over CSV records (as arrays of fields) or JSON records.

Each ``.out`` is written to the job's directory first and moved (or uploaded) to
the output path only once its input file is done, so a failed or stopped job
never leaves a half-written ``.out``. The job runs in a background thread;
``describe_transform_job`` reports ``InProgress``, ``Completed``, ``Failed`` (with
``FailureReason``), ``Stopping`` or ``Stopped``.
"""

import atexit
import concurrent.futures
import copy
import csv
import datetime
import gzip
import io
import json
import logging
import os
import re
import shutil
import sys
import threading
import weakref
from urllib.parse import urlparse

import urllib3
from botocore.exceptions import ClientError
from sagemaker.local.local_session import LocalSagemakerClient

from smgluon_local.job_status import COMPLETED, FAILED, IN_PROGRESS, STOPPED, STOPPING, check_job_status
from smgluon_local.storage import fetch_to_dir, require_credentials, uri_to_local_path

logger = logging.getLogger(__name__)

__all__ = [
    "JsonPath",
    "JsonPathError",
    "DataProcessing",
    "TransformClientMixin",
    "TransformSessionMixin",
    "TransformJob",
    "TransformFailed",
    "read_records",
    "pack_requests",
]

# SageMaker's API limits and defaults (CreateTransformJob).
MAX_PAYLOAD_LIMIT_MB = 100
DEFAULT_MAX_PAYLOAD_MB = 6
DEFAULT_INVOCATION_TIMEOUT_S = 600
DEFAULT_INVOCATION_RETRIES = 3
MB = 1024 * 1024
CSV_TYPES = ("text/csv",)
JSON_TYPES = ("application/json",)
JSON_LINES_TYPES = ("application/jsonlines", "application/x-jsonlines", "application/json-lines")
# The key SageMaker's join puts the model's answer under, and the input when it is not a JSON object.
OUTPUT_KEY, INPUT_KEY = "SageMakerOutput", "SageMakerInput"


def _validation_error(operation, message):
    return ClientError({"Error": {"Code": "ValidationException", "Message": message}}, operation)


def _media_type(content_type):
    return (content_type or "").split(";")[0].strip().lower()


# ---------------------------------------------------------------------------------------------
# JSONPath: the subset SageMaker's data processing accepts.


class JsonPathError(ValueError):
    """A JSONPath expression SageMaker would refuse, or one that selects nothing in a record."""


_TOKEN = re.compile(
    r"""\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_\-]*)|(?P<quoted>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
                        |(?P<int>-?\d+)|(?P<punct>[.\[\]*:,$]))""",
    re.VERBOSE,
)


class JsonPath:
    """A compiled JSONPath expression, as SageMaker's ``InputFilter``/``OutputFilter``.

    Supported, as in SageMaker's data processing: ``$`` (the root), ``.name`` and
    ``['name']`` (a child), ``['a','b']`` (several children: an object of those
    keys), ``[i]`` (an index, negative from the end), ``[i,j]`` (a list of
    elements), ``[start:end]`` (a slice, either end optional) and ``*`` (every child).
    Recursive descent (``..``) and filter expressions (``?()``) are not supported.

    Args:
        expression (str): The expression, starting with ``$``.

    Raises:
        JsonPathError: For syntax SageMaker does not accept.
    """

    def __init__(self, expression):
        self.expression = expression
        self.steps = self._parse(expression)

    def _fail(self, why):
        raise JsonPathError(
            "JSONPath %r: %s. SageMaker supports $, .name, ['name','name'], [index,index], "
            "[start:end] and *" % (self.expression, why)
        )

    def _tokens(self, text):
        tokens, pos = [], 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m:
                self._fail("unexpected %r at position %d" % (text[pos], pos))
            kind = m.lastgroup
            value = m.group(kind)
            if kind == "quoted":
                value = value[1:-1].replace("\\'", "'").replace('\\"', '"')
            elif kind == "int":
                value = int(value)
            tokens.append((kind, value))
            pos = m.end()
        return tokens

    def _parse(self, expression):
        if not isinstance(expression, str) or not expression.strip().startswith("$"):
            self._fail("it must start with $")
        if ".." in expression.replace("'..'", ""):
            self._fail("recursive descent (..) is not supported")
        if "?" in expression or "@" in expression:
            self._fail("filter expressions are not supported")
        tokens = self._tokens(expression.strip())[1:]
        steps, i = [], 0
        while i < len(tokens):
            kind, value = tokens[i]
            if (kind, value) == ("punct", "."):
                i += 1
                if i >= len(tokens):
                    self._fail("a name must follow '.'")
                kind, value = tokens[i]
                if kind == "name" or (kind == "int"):
                    steps.append(("key", str(value)))
                elif (kind, value) == ("punct", "*"):
                    steps.append(("all", None))
                elif (kind, value) == ("punct", "["):
                    continue  # $.a.['b','c']: SageMaker's documented form
                else:
                    self._fail("a name must follow '.'")
                i += 1
            elif (kind, value) == ("punct", "["):
                end = next((j for j in range(i + 1, len(tokens)) if tokens[j] == ("punct", "]")), None)
                if end is None:
                    self._fail("'[' without ']'")
                steps.append(self._bracket(tokens[i + 1 : end]))
                i = end + 1
            else:
                self._fail("unexpected %r" % (value,))
        return steps

    def _bracket(self, inner):
        if not inner:
            self._fail("empty []")
        if inner == [("punct", "*")]:
            return ("all", None)
        if any(t == ("punct", ":") for t in inner):
            bounds, current = [], None
            for kind, value in inner:
                if (kind, value) == ("punct", ":"):
                    bounds.append(current)
                    current = None
                elif kind == "int" and current is None:
                    current = value
                else:
                    self._fail("a slice takes integers: [start:end]")
            bounds.append(current)
            if len(bounds) != 2:
                self._fail("a slice is [start:end] (steps are not supported)")
            return ("slice", tuple(bounds))
        items = inner[0::2]
        if any(t != ("punct", ",") for t in inner[1::2]) or len(inner) % 2 == 0:
            self._fail("separate the items in [] with commas")
        kinds = {kind for kind, _ in items}
        if kinds == {"int"}:
            values = [value for _, value in items]
            return ("index", values[0]) if len(values) == 1 else ("indices", values)
        if kinds == {"quoted"}:
            values = [value for _, value in items]
            if any("." in v for v in values) and len(values) > 1:
                self._fail("children in [] cannot be nested paths")
            return ("key", values[0]) if len(values) == 1 else ("keys", values)
        self._fail("[] takes quoted names or integers, not both")

    def apply(self, document):
        """The part of ``document`` (parsed JSON, or a CSV record as a list of fields) the path selects.

        Raises:
            JsonPathError: If a key or index it names is missing.
        """
        return self._apply(document, self.steps)

    def _apply(self, value, steps):
        if not steps:
            return value
        (kind, arg), rest = steps[0], steps[1:]
        if kind == "key":
            if not isinstance(value, dict) or arg not in value:
                raise JsonPathError("JSONPath %r: no key %r in %s" % (self.expression, arg, _short(value)))
            return self._apply(value[arg], rest)
        if kind == "keys":
            return {key: self._apply(value, [("key", key)] + rest) for key in arg}
        if kind == "all":
            items = list(value.values()) if isinstance(value, dict) else value
            if not isinstance(items, list):
                raise JsonPathError(
                    "JSONPath %r: * needs an array or object, not %s" % (self.expression, _short(value))
                )
            return [self._apply(item, rest) for item in items]
        if not isinstance(value, list):
            raise JsonPathError("JSONPath %r: an index needs an array, not %s" % (self.expression, _short(value)))
        if kind == "slice":
            return [self._apply(item, rest) for item in value[slice(*arg)]]
        indices = [arg] if kind == "index" else arg
        for index in indices:
            if not -len(value) <= index < len(value):
                raise JsonPathError(
                    "JSONPath %r: index %d is out of range for %d elements" % (self.expression, index, len(value))
                )
        if kind == "index":
            return self._apply(value[arg], rest)
        return [self._apply(value[index], rest) for index in indices]


def _short(value, limit=80):
    text = json.dumps(value) if not isinstance(value, bytes) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# ---------------------------------------------------------------------------------------------
# Records, requests and data processing.


class TransformFailed(Exception):
    """The job fails with this FailureReason."""


def read_records(path, split_type, compression=None):
    """The records of one input file, in order.

    Args:
        path (str): Local file.
        split_type (str): ``Line`` (a record per line, line ends removed, empty lines
            skipped) or None (the whole file is one record).
        compression (str): ``Gzip`` or None.

    Yields:
        bytes: Each record.
    """
    opener = gzip.open if compression == "Gzip" else open
    with opener(path, "rb") as f:
        if split_type != "Line":
            yield f.read()
            return
        for line in f:
            line = line.rstrip(b"\r\n")
            if line:
                yield line


def pack_requests(records, strategy, max_payload_bytes):
    """Groups records into request bodies, as SageMaker's BatchStrategy and MaxPayloadInMB do.

    Args:
        records (iterable of bytes): The file's records (after any input filter).
        strategy (str): ``SingleRecord`` (one record a request) or ``MultiRecord`` (as
            many records, newline-separated, as fit in ``max_payload_bytes``).
        max_payload_bytes (int): Largest request body; 0 for no limit.

    Yields:
        tuple: ``(first record number (1-based), list of records)``.

    Raises:
        TransformFailed: For a record larger than ``max_payload_bytes``.
    """
    batch, size, first = [], 0, 1
    for number, record in enumerate(records, 1):
        if max_payload_bytes and len(record) > max_payload_bytes:
            raise TransformFailed(
                "ClientError: Too much data for max payload size: record %d is %d bytes, over MaxPayloadInMB=%d "
                "(%d bytes). Raise max_payload (at most %d MB), or split the input into smaller records "
                "(split_type='Line')."
                % (number, len(record), max_payload_bytes // MB, max_payload_bytes, MAX_PAYLOAD_LIMIT_MB)
            )
        added = len(record) + (1 if batch else 0)
        if batch and (strategy == "SingleRecord" or (max_payload_bytes and size + added > max_payload_bytes)):
            yield first, batch
            batch, size, first = [], 0, number
            added = len(record)
        batch.append(record)
        size += added
    if batch:
        yield first, batch


def _record_format(media_type):
    if media_type in CSV_TYPES:
        return "csv"
    if media_type in JSON_TYPES:
        return "json"
    if media_type in JSON_LINES_TYPES:
        return "jsonlines"
    return None


def _units(record, fmt):
    """The rows data processing works on: lines for CSV and JSON Lines, the document for JSON."""
    if fmt == "json":
        return [record]
    return [line for line in record.replace(b"\r\n", b"\n").split(b"\n") if line]


def _parse_unit(unit, fmt, what):
    text = unit.decode("utf-8")
    if fmt == "csv":
        return next(csv.reader([text]))
    try:
        return json.loads(text)
    except ValueError as e:
        raise TransformFailed("ClientError: %s is not valid JSON (%s): %s" % (what, e, _short(text))) from None


def _dump_unit(value, fmt):
    if fmt == "csv":
        fields = value if isinstance(value, list) else [value]
        if any(isinstance(f, (dict, list)) for f in fields):
            raise TransformFailed("ClientError: a CSV filter must select fields, not %s" % _short(value))
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(fields)
        return out.getvalue().encode("utf-8")
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


class DataProcessing:
    """SageMaker's DataProcessing: InputFilter, JoinSource and OutputFilter.

    Args:
        config (dict): The request's DataProcessing (may be empty).
        content_type (str): The input's content type.
        accept (str): The output's content type (None: the model server's answer says).

    Raises:
        JsonPathError: For a filter SageMaker would refuse.
        ValueError: For content types data processing cannot read.
    """

    def __init__(self, config, content_type, accept):
        config = config or {}
        self.input_filter = self._path(config.get("InputFilter"))
        self.output_filter = self._path(config.get("OutputFilter"))
        self.join = (config.get("JoinSource") or "None") == "Input"
        if (config.get("JoinSource") or "None") not in ("Input", "None"):
            raise ValueError("JoinSource must be 'Input' or 'None', not %r" % config.get("JoinSource"))
        self.in_format = _record_format(_media_type(content_type))
        self.accept = accept
        if self.input_filter and self.in_format is None:
            raise ValueError(
                "input_filter needs CSV or JSON input (content_type text/csv, application/json or "
                "application/jsonlines), not %r" % content_type
            )
        if self.join and self.in_format is None:
            raise ValueError(
                "join_source='Input' needs CSV or JSON input (content_type text/csv, application/json "
                "or application/jsonlines), not %r" % content_type
            )
        if accept is not None:
            self.output_format(accept)

    def output_format(self, content_type):
        """The output's record format, checked against what the join and output filter need.

        Raises:
            ValueError: For an output data processing cannot read.
        """
        fmt = _record_format(_media_type(content_type))
        if self.per_record_output and fmt is None:
            raise ValueError(
                "join_source and output_filter need CSV or JSON output (accept text/csv, "
                "application/json or application/jsonlines), not %r" % content_type
            )
        if self.join and (self.in_format == "csv") != (fmt == "csv"):
            raise ValueError(
                "join_source='Input' joins CSV with CSV or JSON with JSON; the input is %s and the "
                "output %r" % (self.in_format.upper(), content_type)
            )
        return fmt

    @staticmethod
    def _path(expression):
        if expression in (None, "", "$"):
            return None
        return JsonPath(expression)

    @property
    def per_record_output(self):
        """Whether outputs must be matched with input rows (a join or an output filter)."""
        return self.join or self.output_filter is not None

    def filter_input(self, record, number):
        """The record as sent to the model (InputFilter applied to each of its rows)."""
        if self.input_filter is None:
            return record
        rows = []
        for unit in _units(record, self.in_format):
            try:
                value = self.input_filter.apply(_parse_unit(unit, self.in_format, "record %d" % number))
            except JsonPathError as e:
                raise TransformFailed("ClientError: input_filter on record %d: %s" % (number, e)) from None
            rows.append(_dump_unit(value, self.in_format))
        return b"\n".join(rows)

    def process_output(self, records, first, body, content_type):
        """The output rows for a request: the model's rows, each joined with its input and filtered.

        Args:
            records (list of bytes): The request's input records, unfiltered.
            first (int): Number of the first record.
            body (bytes): The model's answer.
            content_type (str): The answer's content type (used when no Accept was given).

        Returns:
            bytes: Newline-separated output rows.

        Raises:
            TransformFailed: If the answer does not match the records, or a filter selects nothing.
        """
        try:
            out_format = self.output_format(self.accept or content_type)
        except ValueError as e:
            raise TransformFailed("ClientError: %s" % e) from None
        inputs = [unit for record in records for unit in _units(record, self.in_format or out_format)]
        outputs = self._output_units(body, len(inputs), first, out_format)
        rows = []
        for i, (source, result) in enumerate(zip(inputs, outputs)):
            what = (
                "record %d" % (first + i)
                if len(inputs) == len(records)
                else "row %d of records %d-%d" % (i + 1, first, first + len(records) - 1)
            )
            value = _parse_unit(result, out_format, "the model's answer to " + what)
            if self.join:
                value = self._join(_parse_unit(source, self.in_format, what), value)
            if self.output_filter is not None:
                try:
                    value = self.output_filter.apply(value)
                except JsonPathError as e:
                    raise TransformFailed("ClientError: output_filter on %s: %s" % (what, e)) from None
            rows.append(_dump_unit(value, out_format))
        return b"\n".join(rows)

    @staticmethod
    def _output_units(body, expected, first, out_format):
        if out_format == "json" and expected > 1:
            try:
                answer = json.loads(body.decode("utf-8"))
            except ValueError:
                answer = None
            units = (
                [json.dumps(item).encode("utf-8") for item in answer]
                if isinstance(answer, list)
                else _units(body, "jsonlines")
            )
        else:
            units = _units(body, out_format)
        if len(units) != expected:
            raise TransformFailed(
                "ClientError: the model answered %d rows for the %d rows of records %d-%d; join_source and "
                "output_filter need one output row per input row (use strategy='SingleRecord', or a model that "
                "answers one row per input row)" % (len(units), expected, first, first + expected - 1)
            )
        return units

    def _join(self, source, result):
        if self.in_format == "csv":
            return list(source) + (result if isinstance(result, list) else [result])
        if isinstance(source, dict):
            return dict(source, **{OUTPUT_KEY: result})
        return {INPUT_KEY: source, OUTPUT_KEY: result}


# ---------------------------------------------------------------------------------------------
# Input listing and output publishing.


def _input_files(uri, data_type, download_dir, session):
    """``[(local path, path relative to the output path)]`` for an S3Prefix input.

    An ``s3://`` URI is a key prefix, as on SageMaker: ``s3://b/in/data`` matches
    ``in/data.csv`` and ``in/data/x.csv``. Outputs keep the key below the prefix
    (``x.csv``), or below the prefix's folder when the prefix ends inside a name
    (``data.csv``). A ``file://`` URI or a path is a file or a folder.
    """
    if data_type == "ManifestFile":
        return _manifest_files(uri, download_dir, session)
    path = uri_to_local_path(uri, session.local_s3)
    if path is None:  # real S3: the SDK downloads every object under the prefix
        path = fetch_to_dir(uri, download_dir, session.local_s3, session)
    elif urlparse(uri).scheme == "s3" and not uri.endswith("/"):
        return _prefix_files(uri, path)
    if os.path.isfile(path):
        return [(path, os.path.basename(path))]
    files = [(full, os.path.relpath(full, path)) for full in _walk(path)] if os.path.isdir(path) else []
    if not files:
        raise _no_input(uri)
    return sorted(files)  # in key order, as S3 lists them


def _walk(top):
    for root, dirs, filenames in os.walk(top):
        dirs.sort()
        for filename in sorted(filenames):
            yield os.path.join(root, filename)


def _prefix_files(uri, path):
    folder, prefix = os.path.split(path)
    files = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if not name.startswith(prefix):
            continue
        top = os.path.join(folder, name)
        for full in [top] if os.path.isfile(top) else _walk(top):
            below_folder = os.path.relpath(full, folder)
            below_prefix = below_folder[len(prefix) :]
            files.append((full, below_prefix[1:] if below_prefix.startswith(os.sep) else below_folder))
    if not files:
        raise _no_input(uri)
    return sorted(files)


def _fetch(uri, download_dir, session):
    try:
        return fetch_to_dir(uri, download_dir, session.local_s3, session)
    except FileNotFoundError as e:
        raise TransformFailed("ClientError: %s" % e) from None


def _manifest_files(uri, download_dir, session):
    """The files a manifest lists: ``[{"prefix": "s3://b/p/"}, "relative/key", ...]``, as SageMaker reads it.

    Outputs keep each listed key's relative path.
    """
    manifest = _fetch(uri, os.path.join(download_dir, "manifest"), session)
    if os.path.isdir(manifest):  # downloaded from real S3
        manifest = next(iter(_walk(manifest)), manifest)
    try:
        with open(manifest) as f:
            entries = json.load(f)
        prefix = entries[0]["prefix"]
        keys = entries[1:]
        if not all(isinstance(key, str) for key in keys):
            raise TypeError("entries after the first must be strings")
    except (OSError, ValueError, TypeError, KeyError, IndexError) as e:
        raise TransformFailed(
            'ClientError: the manifest %s is not a JSON array [{"prefix": "s3://..."}, '
            '"relative/key", ...]: %s' % (uri, e)
        ) from None
    files = []
    for key in keys:
        key_uri = prefix.rstrip("/") + "/" + key.lstrip("/")
        path = _fetch(key_uri, os.path.join(download_dir, "keys", os.path.dirname(key.lstrip("/"))), session)
        if os.path.isdir(path):  # downloaded from real S3
            path = os.path.join(path, os.path.basename(key))
        if not os.path.isfile(path):
            raise TransformFailed("ClientError: %s, listed in the manifest %s, does not exist" % (key_uri, uri))
        files.append((path, os.path.normpath(key.lstrip("/"))))
    if not files:
        raise TransformFailed("ClientError: the manifest %s lists no files" % uri)
    return files


def _no_input(uri):
    return TransformFailed(
        'ClientError: No S3 objects found under S3 URL "%s" given in input data source. '
        "Check that the data is there (a file, a folder or a key prefix)." % uri
    )


def _publish(local_file, output_uri, relative, session):
    """Move a finished ``.out`` to the output path (a rename, or one upload), so it appears whole.

    Returns:
        str: Where it went.
    """
    parsed = urlparse(output_uri)
    if parsed.scheme == "s3":
        key = "/".join(p for p in (parsed.path.strip("/"), relative.replace(os.sep, "/")) if p)
        if not session.local_s3.owns(parsed.netloc):
            require_credentials(session.boto_session, output_uri)
        session.s3_resource.Object(parsed.netloc, key).upload_file(local_file)
        return "s3://%s/%s" % (parsed.netloc, key)
    dest = os.path.join(uri_to_local_path(output_uri, session.local_s3), relative)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = os.path.join(os.path.dirname(dest), ".%s.partial" % os.path.basename(dest))
    shutil.copyfile(local_file, tmp)
    os.replace(tmp, dest)
    return dest


# ---------------------------------------------------------------------------------------------
# The job.


def _records_named(first, count):
    return "record %d" % first if count == 1 else "records %d-%d" % (first, first + count - 1)


_RUNNING = weakref.WeakSet()


@atexit.register
def _stop_running_jobs():
    # A job's model server cannot outlive the process that started it.
    for job in list(_RUNNING):
        try:
            job.stop()
            job.wait(30)
        except Exception:  # interpreter shutdown: best effort
            pass


class TransformJob:
    """One transform job: validated at creation, run in a background thread.

    Args:
        client (ProcessSagemakerClient): Describes the model.
        request (dict): The CreateTransformJob request.

    Raises:
        botocore.exceptions.ClientError: ``ValidationException`` for a request
            SageMaker would refuse or one ProcessSession cannot run.
    """

    OP = "CreateTransformJob"

    def __init__(self, client, request):
        self.client = client
        self.session = client.sagemaker_session
        self.request = copy.deepcopy(request)
        self.name = request["TransformJobName"]
        self.model = client.describe_model(request["ModelName"])["PrimaryContainer"]
        self._validate()
        self.status = IN_PROGRESS
        self.failure_reason = None
        self.creation_time = datetime.datetime.now()
        self.start_time = None
        self.end_time = None
        self.container = None
        self.outputs = []
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = None
        self.job_dir = os.path.join(self.session.root_dir, "transform-jobs", re.sub(r"[^A-Za-z0-9._-]", "-", self.name))
        self.log_path = os.path.join(self.job_dir, "transform.log")

    def _fail_request(self, message):
        raise _validation_error(self.OP, message)

    def _validate(self):
        r = self.request
        self.strategy = r.get("BatchStrategy") or "MultiRecord"
        if self.strategy not in ("SingleRecord", "MultiRecord"):
            self._fail_request("BatchStrategy must be 'SingleRecord' or 'MultiRecord', not %r" % self.strategy)
        payload = r.get("MaxPayloadInMB")
        self.max_payload_mb = DEFAULT_MAX_PAYLOAD_MB if payload is None else payload
        if not isinstance(self.max_payload_mb, int) or not 0 <= self.max_payload_mb <= MAX_PAYLOAD_LIMIT_MB:
            self._fail_request(
                "MaxPayloadInMB must be an integer from 0 to %d, not %r" % (MAX_PAYLOAD_LIMIT_MB, payload)
            )
        concurrency = r.get("MaxConcurrentTransforms")
        self.concurrency = concurrency or 1
        if not isinstance(self.concurrency, int) or self.concurrency < 1:
            self._fail_request("MaxConcurrentTransforms must be a positive integer, not %r" % concurrency)
        if self.concurrency * self.max_payload_mb > MAX_PAYLOAD_LIMIT_MB:
            self._fail_request(
                "MaxConcurrentTransforms * MaxPayloadInMB must not exceed %d MB (%d * %d)"
                % (MAX_PAYLOAD_LIMIT_MB, self.concurrency, self.max_payload_mb)
            )
        transform_input = r.get("TransformInput") or {}
        source = (transform_input.get("DataSource") or {}).get("S3DataSource") or {}
        self.input_uri = source.get("S3Uri")
        self.data_type = source.get("S3DataType", "S3Prefix")
        if not self.input_uri:
            self._fail_request("TransformInput.DataSource.S3DataSource.S3Uri is required")
        if self.data_type not in ("S3Prefix", "ManifestFile"):
            self._fail_request(
                "S3DataType must be 'S3Prefix' or 'ManifestFile' (AugmentedManifestFile is not "
                "supported for transform jobs), not %r" % self.data_type
            )
        self.split_type = transform_input.get("SplitType") or "None"
        if self.split_type in ("RecordIO", "TFRecord"):
            self._fail_request(
                "SplitType %r is not supported by ProcessSession; use 'Line' or 'None'" % self.split_type
            )
        if self.split_type not in ("Line", "None"):
            self._fail_request(
                "SplitType must be 'Line' or 'None' (or RecordIO/TFRecord on SageMaker), not %r" % self.split_type
            )
        if self.max_payload_mb == 0 and self.split_type != "None":
            self._fail_request(
                "MaxPayloadInMB=0 (no limit) needs SplitType 'None'; set max_payload to 1-%d MB" % MAX_PAYLOAD_LIMIT_MB
            )
        self.compression = transform_input.get("CompressionType") or "None"
        if self.compression not in ("None", "Gzip"):
            self._fail_request("CompressionType must be 'None' or 'Gzip', not %r" % self.compression)
        self.content_type = transform_input.get("ContentType")
        output = r.get("TransformOutput") or {}
        self.output_uri = output.get("S3OutputPath")
        if not self.output_uri:
            self._fail_request("TransformOutput.S3OutputPath is required")
        for uri in (self.input_uri, self.output_uri):
            if urlparse(uri).scheme not in ("file", "s3", ""):
                self._fail_request("%s: unsupported URI scheme; use file:// or s3://" % uri)
        self.accept = output.get("Accept")
        self.assemble_with = output.get("AssembleWith") or "None"
        if self.assemble_with not in ("Line", "None"):
            self._fail_request("AssembleWith must be 'Line' or 'None', not %r" % self.assemble_with)
        try:
            self.processing = DataProcessing(r.get("DataProcessing"), self.content_type, self.accept)
        except ValueError as e:  # JsonPathError too
            self._fail_request("DataProcessing: %s" % e)
        client_config = r.get("ModelClientConfig") or {}
        self.timeout = client_config.get("InvocationsTimeoutInSeconds", DEFAULT_INVOCATION_TIMEOUT_S)
        if not isinstance(self.timeout, int) or not 1 <= self.timeout <= 3600:
            self._fail_request(
                "ModelClientConfig.InvocationsTimeoutInSeconds must be an integer from 1 to 3600, "
                "not %r" % (self.timeout,)
            )
        self.max_retries = client_config.get("InvocationsMaxRetries", DEFAULT_INVOCATION_RETRIES)
        if not isinstance(self.max_retries, int) or not 0 <= self.max_retries <= 3:
            self._fail_request(
                "ModelClientConfig.InvocationsMaxRetries must be an integer from 0 to 3, not %r" % (self.max_retries,)
            )
        if (r.get("TransformResources") or {}).get("InstanceCount", 1) > 1:
            logger.warning("Transform job %s: InstanceCount > 1 runs as one local model server.", self.name)

    def environment(self):
        """The model server's environment: the model's, SageMaker's batch variables, then the job's."""
        env = dict(self.model.get("Environment") or {})
        env.update(
            {
                "SAGEMAKER_BATCH": "true",
                "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(self.max_payload_mb),
                "SAGEMAKER_BATCH_STRATEGY": {"SingleRecord": "SINGLE_RECORD", "MultiRecord": "MULTI_RECORD"}[
                    self.strategy
                ],
                "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": str(self.concurrency),
            }
        )
        if self.max_payload_mb == 0:
            env.pop("SAGEMAKER_MAX_PAYLOAD_IN_MB")
        env.update(self.request.get("Environment") or {})
        return env

    # -- running ---------------------------------------------------------------------------

    def start(self):
        """Start the job in the background; returns at once."""
        os.makedirs(self.job_dir, exist_ok=True)
        open(self.log_path, "w").close()
        _RUNNING.add(self)
        self._thread = threading.Thread(target=self._run, name="transform-" + self.name, daemon=True)
        self._thread.start()

    def log(self, message):
        """Append a line to the job's log (and to the session's ``log_stream`` object, live)."""
        line = "[sagemaker logs]: %s\n" % message
        with open(self.log_path, "a") as f:
            f.write(line)
        stream = self.session.log_stream
        if stream not in (None, False):
            stream.write(line)
            stream.flush()

    def _run(self):
        from smgluon_local.container import ProcessContainer

        self.start_time = datetime.datetime.now()
        try:
            self.log(
                "MaxConcurrentTransforms=%d, MaxPayloadInMB=%d, BatchStrategy=%s"
                % (self.concurrency, self.max_payload_mb, self.environment()["SAGEMAKER_BATCH_STRATEGY"])
            )
            files = _input_files(self.input_uri, self.data_type, os.path.join(self.job_dir, "input"), self.session)
            resources = self.request.get("TransformResources") or {}
            self.container = ProcessContainer(
                resources.get("InstanceType", "local"), 1, self.model.get("Image"), self.session
            )
            if not self._stop.is_set():
                self.container.serve(self.model.get("ModelDataUrl"), self.environment(), endpoint_name=self.name)
            for path, relative in files:
                if self._stop.is_set():
                    break
                self._transform_file(path, relative)
            self.status = STOPPED if self._stop.is_set() else COMPLETED
        except TransformFailed as e:
            self.failure_reason = str(e)
            self.status = FAILED
        except Exception as e:  # model server start-up, storage: the job fails with the reason
            self.failure_reason = "%s: %s" % (type(e).__name__, e)
            self.status = FAILED
        finally:
            try:
                if self.status == FAILED:
                    self.log("Failed: %s" % self.failure_reason)
                    self._log_model_server_tail()
                if self.container is not None:
                    self.container.stop_serving()
                shutil.rmtree(os.path.join(self.job_dir, "output"), ignore_errors=True)
                if self.status == STOPPED:
                    self.log("Stopped")
            finally:  # whatever happened, waiters must learn that the job ended
                self.end_time = datetime.datetime.now()
                _RUNNING.discard(self)
                self._done.set()

    def _log_model_server_tail(self):
        server = self.container.server if self.container is not None else None
        if server is not None and server.process is not None:
            tail = server._log_tail(30).rstrip()
            if tail:
                self.log("model server log (%s), last lines:\n%s" % (server.log_path, tail))

    def _requests(self, path):
        records = read_records(path, self.split_type, self.compression if self.compression == "Gzip" else None)
        filtered = (
            (number, record, self.processing.filter_input(record, number)) for number, record in enumerate(records, 1)
        )
        # pack_requests works on what is sent; the originals are kept for the join.
        originals = {}

        def sent():
            for number, record, body in filtered:
                originals[number] = record
                yield body

        for first, batch in pack_requests(sent(), self.strategy, self.max_payload_mb * MB):
            yield first, [originals.pop(first + i) for i in range(len(batch))], b"\n".join(batch)

    def _invoke(self, http, body, relative, first, count):
        """POST one request; a 5xx answer or no answer is retried up to InvocationsMaxRetries times."""
        headers = {}
        if self.content_type:
            headers["Content-Type"] = self.content_type
        if self.accept:
            headers["Accept"] = self.accept
        which = _records_named(first, count)
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries or self._stop.is_set()
            try:
                response = http.request(
                    "POST",
                    self.container.server.url + "/invocations",
                    body=body,
                    headers=headers,
                    timeout=self.timeout,
                    retries=False,
                )
            except (urllib3.exceptions.HTTPError, OSError) as e:
                if last:
                    raise TransformFailed(
                        "ClientError: %s: %s: no answer from the model server: %s" % (relative, which, e)
                    ) from None
                self.log(
                    "%s: %s: no answer from the model server (%s); retry %d of %d"
                    % (relative, which, e, attempt + 1, self.max_retries)
                )
                continue
            if response.status < 500 or last:
                return response.status, response.data, response.headers.get("Content-Type")
            self.log(
                "%s: %s: Bad HTTP status received from algorithm: %d; retry %d of %d"
                % (relative, which, response.status, attempt + 1, self.max_retries)
            )

    def _transform_file(self, path, relative):
        out_relative = relative + ".out"
        staging = os.path.join(self.job_dir, "output", out_relative)
        os.makedirs(os.path.dirname(staging), exist_ok=True)
        http = urllib3.PoolManager(maxsize=self.concurrency)
        records = requests = 0
        with open(staging, "wb") as out, concurrent.futures.ThreadPoolExecutor(
            self.concurrency, thread_name_prefix="transform"
        ) as pool:
            pending = []

            def drain(limit):
                nonlocal records
                while len(pending) > limit:
                    first, batch, future = pending.pop(0)
                    self._write(out, relative, first, batch, *future.result())
                    records += len(batch)

            try:
                for first, batch, body in self._requests(path):
                    if self._stop.is_set():
                        break
                    pending.append((first, batch, pool.submit(self._invoke, http, body, relative, first, len(batch))))
                    requests += 1
                    drain(self.concurrency)  # at most MaxConcurrentTransforms requests in flight
                drain(0)
            except TransformFailed as e:
                if relative in str(e):
                    raise
                raise TransformFailed("%s (input %s)" % (e, relative)) from None
            finally:
                for *_, future in pending:
                    future.cancel()
        if self._stop.is_set():
            return
        dest = _publish(staging, self.output_uri, out_relative, self.session)
        os.remove(staging)
        self.outputs.append(dest)
        self.log("%s: %d records in %d requests, written to %s" % (relative, records, requests, dest))

    def _write(self, out, relative, first, batch, status, data, content_type):
        if not 200 <= status < 300:
            which = _records_named(first, len(batch))
            # The handler service answers with the error's message and its traceback: keep the message.
            message = data.decode("utf-8", errors="replace").split("Traceback (most recent call last)")[0]
            message = " ".join(message.split())  # one line, as SageMaker's FailureReason
            raise TransformFailed(
                "ClientError: %s: %s: Bad HTTP status received from algorithm: %d: %s%s"
                % (relative, which, status, message, self._load_error_hint())
            )
        if self.processing.per_record_output:
            data = self.processing.process_output(batch, first, data, content_type)
        out.write(data)
        # A newline after each answer that lacks one; one ending in a newline gets no blank line after it.
        if self.assemble_with == "Line" and not data.endswith(b"\n"):
            out.write(b"\n")

    def _load_error_hint(self):
        # The handler service keeps a model_fn error to itself and answers every request 503
        # "Prediction failed"; the model server's log has the error.
        server = self.container.server if self.container else None
        if server is None:
            return ""
        hint = ""
        if server.load_error:
            hint += ". The model server could not load the model: %s" % server.load_error.strip().splitlines()[-1]
        if os.path.isdir(server.model_dir) and not [n for n in os.listdir(server.model_dir) if n != "code"]:
            hint += (
                ". The model archive %s holds no model files (the training job saved nothing to "
                "SM_MODEL_DIR)" % self.model.get("ModelDataUrl")
            )
        return hint

    # -- API -------------------------------------------------------------------------------

    @property
    def done(self):
        """bool: whether the job ended."""
        return self._done.is_set()

    def wait(self, timeout=None):
        """Block until the job ended (or ``timeout`` seconds); returns whether it ended."""
        return self._done.wait(timeout)

    def stop(self):
        """StopTransformJob: finish the requests in flight, write nothing more, end as Stopped."""
        self._stop.set()

    def describe(self):
        """DescribeTransformJob's answer."""
        status = self.status
        if status == IN_PROGRESS and self._stop.is_set():
            status = STOPPING
        r = self.request
        response = {
            "TransformJobName": self.name,
            "TransformJobArn": "arn:aws:sagemaker:local:000000000000:transform-job/%s" % self.name.lower(),
            "TransformJobStatus": status,
            "ModelName": r["ModelName"],
            "MaxConcurrentTransforms": self.concurrency,
            "MaxPayloadInMB": self.max_payload_mb,
            "BatchStrategy": self.strategy,
            "Environment": dict(r.get("Environment") or {}),
            "TransformInput": copy.deepcopy(r["TransformInput"]),
            "TransformOutput": copy.deepcopy(r["TransformOutput"]),
            "TransformResources": copy.deepcopy(r.get("TransformResources") or {}),
            "CreationTime": self.creation_time,
        }
        for key in ("DataProcessing", "ModelClientConfig", "ExperimentConfig"):
            if r.get(key):
                response[key] = copy.deepcopy(r[key])
        if self.start_time:
            response["TransformStartTime"] = self.start_time
        if self.end_time:
            response["TransformEndTime"] = self.end_time
        if self.failure_reason:
            response["FailureReason"] = self.failure_reason
        return response


class TransformClientMixin:
    """CreateTransformJob, DescribeTransformJob and StopTransformJob for the process client."""

    def create_transform_job(
        self,
        TransformJobName,
        ModelName,
        TransformInput,
        TransformOutput,  # noqa: N803
        TransformResources,
        **kwargs,
    ):
        """Start a transform job (CreateTransformJob); it runs in the background.

        Returns:
            dict: ``{"TransformJobArn": ...}``.

        Raises:
            botocore.exceptions.ClientError: ``ValidationException`` for a bad request
                (the message says what to change), an unknown model or a name in use.
        """
        existing = LocalSagemakerClient._transform_jobs.get(TransformJobName)
        if existing is not None:
            raise _validation_error(
                TransformJob.OP,
                "Job name must be unique within an AWS account and region, "
                "and a job with this name (%s) already exists" % TransformJobName,
            )
        for key in ("BatchDataCaptureConfig", "ExperimentConfig"):
            if kwargs.get(key):
                logger.warning("%s is ignored by ProcessSession.", key)
        request = dict(
            kwargs,
            TransformJobName=TransformJobName,
            ModelName=ModelName,
            TransformInput=TransformInput,
            TransformOutput=TransformOutput,
            TransformResources=TransformResources,
        )
        job = TransformJob(self, request)
        LocalSagemakerClient._transform_jobs[TransformJobName] = job
        job.start()
        return {"TransformJobArn": job.describe()["TransformJobArn"]}

    def transform_job(self, TransformJobName, operation="DescribeTransformJob"):  # noqa: N803
        """The :class:`TransformJob` of that name.

        Raises:
            botocore.exceptions.ClientError: ``ValidationException`` if there is none.
        """
        job = LocalSagemakerClient._transform_jobs.get(TransformJobName)
        if not isinstance(job, TransformJob):
            raise _validation_error(operation, "Could not find local transform job %s" % TransformJobName)
        return job

    def describe_transform_job(self, TransformJobName):  # noqa: N803
        """DescribeTransformJob."""
        return self.transform_job(TransformJobName).describe()

    def stop_transform_job(self, TransformJobName):  # noqa: N803
        """StopTransformJob: the job ends as Stopped once the requests in flight are answered.

        Raises:
            botocore.exceptions.ClientError: ``ValidationException`` if the job is
                unknown or has ended.
        """
        job = self.transform_job(TransformJobName, "StopTransformJob")
        if job.done:
            raise _validation_error(
                "StopTransformJob", "The transform job %s is not running (status %s)" % (TransformJobName, job.status)
            )
        job.stop()


class TransformSessionMixin:
    """The session side: ``Transformer.wait()`` follows the job's log and raises if it failed."""

    def logs_for_transform_job(self, job_name, wait=False, poll=10):
        """Print a transform job's log; with ``wait``, follow it until the job ends.

        Raises:
            sagemaker.exceptions.UnexpectedStatusException: With ``wait``, if the job
                did not complete (the message has its FailureReason).
        """
        from smgluon_local.job_log import follow_log

        job = self.sagemaker_client.transform_job(job_name)
        stream = sys.stdout if self.log_stream is None else None
        try:
            follow_log(job.log_path, stream, (lambda: job.done) if wait else (lambda: True))
        except KeyboardInterrupt:
            job.stop()
            raise
        desc = job.describe()
        if wait:
            check_job_status(job_name, desc, "TransformJobStatus")
        return desc

    def wait_for_transform_job(self, job, poll=5):
        """Wait (silently) until the transform job ends; raise ``UnexpectedStatusException`` if it failed."""
        transform_job = self.sagemaker_client.transform_job(job)
        try:
            while not transform_job.wait(0.5):
                pass
        except KeyboardInterrupt:
            transform_job.stop()
            raise
        desc = transform_job.describe()
        check_job_status(job, desc, "TransformJobStatus")
        return desc
