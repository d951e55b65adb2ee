"""Tabular data for a workload: CSV channels read against a schema, and the preprocessing saved with the model.

* :func:`read_csv_channel` reads every ``*.csv`` / ``*.csv.gz`` file of a
  channel (Spark-style part files included), checks each header against the
  schema and converts only the columns asked for; a bad cell or a ragged row
  is a :class:`TableError` naming the file, the line and the column.
* :class:`Preprocessor` turns those columns into the one float32 matrix a
  network takes: category codes as vocabulary indices (index 0 is the
  out-of-vocabulary slot, for values never seen in training), numbers
  standardised with the training data's mean and standard deviation (a
  missing number becomes 0, the mean, and sets its column's missing flag;
  a number outside the training range is clipped to it, so the network
  never extrapolates, e.g. to a month later than any it trained on).
  Its JSON form is saved beside the model, so serving applies exactly the
  training transformation.

Over several hosts whose training files differ (``ShardedByS3Key``),
:meth:`Preprocessor.fit` combines the statistics and vocabularies of every
worker (:func:`allgather_strings`), so all workers encode alike.
"""

import csv
import gzip
import io
import json
import math
import os

import numpy as np

from smgluon.channels import ChannelError

__all__ = ["TableError", "csv_files", "read_csv_channel", "allgather_strings", "Preprocessor", "OOV"]

OOV = 0  # vocabulary index of a category value never seen in training
_CHUNK_ROWS = 65536  # rows converted to arrays at a time: bounded memory for the string cells


class TableError(ChannelError):
    """A CSV file does not match the schema; the message names the file, the line and the column."""


def csv_files(directory):
    """The CSV files of a channel (``*.csv`` and ``*.csv.gz``), sorted by name.

    Raises:
        TableError: when the directory holds none, naming what it holds.
    """
    try:
        names = sorted(n for n in os.listdir(directory) if not n.startswith("."))
    except FileNotFoundError:
        raise TableError("data directory %s does not exist" % directory) from None
    files = [os.path.join(directory, n) for n in names if n.endswith((".csv", ".csv.gz"))]
    if not files:
        raise TableError(
            "no CSV files (*.csv, *.csv.gz) in %s; it holds: %s" % (directory, ", ".join(names[:20]) or "nothing")
        )
    return files


def _open_text(path):
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _header_indices(path, header, columns, forbidden):
    names = [h.strip() for h in header]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise TableError("%s line 1: the header names %s more than once" % (path, ", ".join(duplicated)))
    leaked = [n for n in names if n in forbidden]
    if leaked:
        raise TableError(
            "%s line 1: the header has %s, measured after departure: such a column would leak the answer into "
            "the features; drop it (expected columns: %s)" % (path, ", ".join(leaked), ", ".join(c[0] for c in columns))
        )
    missing = [c[0] for c in columns if c[0] not in names]
    if missing:
        raise TableError(
            "%s line 1: the header lacks %s; expected a header with the columns %s (got %s)"
            % (path, ", ".join(missing), ", ".join(c[0] for c in columns), ", ".join(names[:30]))
        )
    return [names.index(c[0]) for c in columns], len(names)


def _convert(path, lines, values, column):
    """One column of a chunk as an array: float64 (NaN for an empty cell) or str."""
    name, kind, nullable = column
    if kind == "number":
        out = np.empty(len(values), dtype=np.float64)
        for k, cell in enumerate(values):
            if cell == "":
                if not nullable:
                    raise TableError("%s line %d: column %r is empty; it needs a number" % (path, lines[k], name))
                out[k] = math.nan
                continue
            try:
                out[k] = float(cell)
            except ValueError:
                raise TableError(
                    "%s line %d: column %r holds %r, not a number" % (path, lines[k], name, cell[:40])
                ) from None
            if not math.isfinite(out[k]):
                raise TableError("%s line %d: column %r holds %r, not a finite number" % (path, lines[k], name, cell))
        return out
    if not nullable:
        for k, cell in enumerate(values):
            if cell == "":
                raise TableError("%s line %d: column %r is empty; it needs a value" % (path, lines[k], name))
    return np.asarray(values, dtype=str)


def _read_file(path, columns, forbidden, max_rows, chunks):
    """Appends one file's columns to ``chunks`` (name → list of arrays); returns the rows read."""

    def flush(rows, lines):
        for j, column in enumerate(columns):
            chunks[column[0]].append(_convert(path, lines, [r[j] for r in rows], column))

    count = 0
    with _open_text(path) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise TableError("%s is empty: every CSV file starts with a header line" % path)
        indices, width = _header_indices(path, header, columns, forbidden)
        rows, lines = [], []
        for row in reader:
            if not row:
                continue  # a blank line, as at the end of some files
            if len(row) != width:
                raise TableError(
                    "%s line %d: %d fields, but the header has %d" % (path, reader.line_num, len(row), width)
                )
            rows.append([row[i] for i in indices])
            lines.append(reader.line_num)
            count += 1
            if len(rows) >= _CHUNK_ROWS:
                flush(rows, lines)
                rows, lines = [], []
            if max_rows and count >= max_rows:
                break
        flush(rows, lines)
    return count


def read_csv_channel(directory, columns, forbidden=(), max_rows=0):
    """Reads the given columns of every CSV file in a channel.

    Each file starts with a header line; its columns may come in any order and
    may include columns not asked for (they are not converted), but none of
    ``forbidden``.

    Args:
        directory (str): the channel's folder.
        columns (list[tuple]): ``(name, kind, nullable)`` with kind ``"number"`` or ``"category"``.
        forbidden (tuple[str]): column names that must not appear in a header.
        max_rows (int): stop after this many rows (0: all).

    Returns:
        dict: name → array (float64 with NaN for missing numbers; str for categories).

    Raises:
        TableError: naming the file, line and column of the first fault.
    """
    chunks = {c[0]: [] for c in columns}
    total = 0
    for path in csv_files(directory):
        total += _read_file(path, columns, forbidden, max_rows - total if max_rows else 0, chunks)
        if max_rows and total >= max_rows:
            break
    return {name: np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64) for name, parts in chunks.items()}


def allgather_strings(workers, text):
    """Every worker's ``text``, in rank order (one string per worker; call on every worker).

    Strings travel as their UTF-8 bytes through :meth:`Workers.allreduce`: each worker
    fills its own segment of a zero vector, and the sum is the concatenation.

    Args:
        workers (smgluon.distributed.Workers): the job's workers (None: one worker).
        text (str): this worker's string.

    Returns:
        list[str]

    Raises:
        ValueError: with workers whose allreduce cannot sum (``dist_async``).
    """
    if workers is None or not workers.distributed:
        return [text]
    if not getattr(workers, "combines", True):
        raise ValueError("the workers cannot combine values (dist_async): nothing can be gathered")
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    mine = np.zeros(workers.num_workers)
    mine[workers.rank] = len(data)
    lengths = workers.allreduce(mine).round().astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    buffer = np.zeros(int(offsets[-1]))
    buffer[offsets[workers.rank] : offsets[workers.rank + 1]] = data
    combined = workers.allreduce(buffer).round().astype(np.uint8).tobytes()
    return [combined[offsets[r] : offsets[r + 1]].decode("utf-8") for r in range(workers.num_workers)]


class Preprocessor:
    """The transformation from table columns to the network's input matrix.

    Layout of a row: one vocabulary index per categorical column, then one
    standardised value per numeric column, then a 0/1 missing flag per numeric
    column that had missing values in training.

    Args:
        vocabularies (dict[str, list[str]]): categorical column → its values (index = position + 1).
        numeric (dict[str, list[float]]): numeric column → [mean, std, min, max] of the training data.
        flags (list[str]): numeric columns with a missing flag.
        target (list[float]): the target's [mean, std] in training.
    """

    def __init__(self, vocabularies, numeric, flags, target):
        self.vocabularies = {k: [str(v) for v in vals] for k, vals in vocabularies.items()}
        self.numeric = {k: [float(v) for v in stats] for k, stats in numeric.items()}
        self.flags = list(flags)
        self.target = [float(target[0]), float(target[1])]
        self._index = {k: {v: i + 1 for i, v in enumerate(vals)} for k, vals in self.vocabularies.items()}

    @property
    def categorical(self):
        """list[str]: the categorical columns, in input order."""
        return list(self.vocabularies)

    @property
    def width(self):
        """int: columns of the input matrix."""
        return len(self.vocabularies) + len(self.numeric) + len(self.flags)

    def vocabulary_sizes(self):
        """list[int]: embedding rows per categorical column (the values plus the OOV slot)."""
        return [len(v) + 1 for v in self.vocabularies.values()]

    @classmethod
    def fit(cls, table, categorical, numeric, target, workers=None):
        """Learns vocabularies and statistics from the training columns.

        Args:
            table (dict): columns from :func:`read_csv_channel`.
            categorical (list[str]): columns embedded by the model.
            numeric (list[str]): columns standardised.
            target (numpy.ndarray): the (possibly clipped) training target.
            workers (smgluon.distributed.Workers): when given, the statistics are
                those of every worker's rows together (each worker holds its own).

        Returns:
            Preprocessor
        """

        def combined(values):
            return workers.allreduce(values) if workers is not None else np.asarray(values, dtype=np.float64)

        local = {name: sorted(set(np.unique(table[name]).tolist()) - {""}) for name in categorical}
        local["\0ranges"] = {
            name: [float(np.nanmin(table[name], initial=np.inf)), float(np.nanmax(table[name], initial=-np.inf))]
            for name in numeric
        }
        vocabularies = {name: set() for name in categorical}
        ranges = {name: [math.inf, -math.inf] for name in numeric}
        for text in allgather_strings(workers, json.dumps(local)):
            doc = json.loads(text)
            for name, (lo, hi) in doc.pop("\0ranges").items():
                ranges[name] = [min(ranges[name][0], lo), max(ranges[name][1], hi)]
            for name, values in doc.items():
                vocabularies[name].update(values)
        vocabularies = {name: sorted(values) for name, values in vocabularies.items()}
        columns = [table[name] for name in numeric] + [np.asarray(target, dtype=np.float64)]
        present = [~np.isnan(c) for c in columns]
        counts = combined([p.sum() for p in present])
        missing = combined([len(c) for c in columns]) - counts
        means = combined([c[p].sum() for c, p in zip(columns, present)]) / np.maximum(counts, 1)
        squares = combined([((c[p] - m) ** 2).sum() for c, p, m in zip(columns, present, means)])
        stds = np.sqrt(squares / np.maximum(counts, 1))
        stds = np.where(stds > 1e-12, stds, 1.0)  # a constant column stays 0 after centring
        stats = {name: [means[i], stds[i]] + ranges[name] for i, name in enumerate(numeric)}
        flags = [name for i, name in enumerate(numeric) if missing[i] > 0]
        return cls(vocabularies, stats, flags, [means[-1], stds[-1]])

    def encode(self, table):
        """The float32 input matrix of a table (dict name → array or list, one entry per column).

        Category values are compared as strings; numbers may be NaN (missing).
        """
        n = len(next(iter(table.values()))) if table else 0
        out = np.zeros((n, self.width), dtype=np.float32)
        for j, (name, index) in enumerate(self._index.items()):
            out[:, j] = [index.get(str(v), OOV) for v in table[name]]
        offset = len(self._index)
        for j, (name, (mean, std, lo, hi)) in enumerate(self.numeric.items()):
            values = np.asarray(table[name], dtype=np.float64)
            missing = np.isnan(values)
            values = np.clip(values, lo, hi) if lo <= hi else values  # lo > hi: never seen in training
            out[:, offset + j] = np.where(missing, 0.0, (values - mean) / std)
            if name in self.flags:
                out[:, offset + len(self.numeric) + self.flags.index(name)] = missing
        return out

    def to_json(self):
        return {
            "categorical": [{"name": k, "vocabulary": v} for k, v in self.vocabularies.items()],
            "numeric": [
                {"name": k, "mean": m, "std": s, "min": lo, "max": hi} for k, (m, s, lo, hi) in self.numeric.items()
            ],
            "missing_flags": self.flags,
            "target": {"mean": self.target[0], "std": self.target[1]},
        }

    @classmethod
    def from_json(cls, doc):
        return cls(
            {c["name"]: c["vocabulary"] for c in doc["categorical"]},
            {c["name"]: (c["mean"], c["std"], c["min"], c["max"]) for c in doc["numeric"]},
            doc["missing_flags"],
            (doc["target"]["mean"], doc["target"]["std"]),
        )
