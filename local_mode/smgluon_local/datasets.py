"""Fetching the data sets the workloads read, verified: ``smgluon data fetch NAME [--dest DIR]``.

Each data set is downloaded from its official source (or copied from a local
copy), checked against published checksums, and written in the channel layout
the workloads read::

    DEST/mnist/train/train-{images-idx3,labels-idx1}-ubyte.gz     DEST/mnist/test/t10k-...
    DEST/fashion-mnist/train/...                                   DEST/fashion-mnist/test/...
    DEST/ml-100k/u.data, u.item, u1.base, u1.test, ...            (one ``training`` channel)

What is checked: the **SHA-256 of the data the workloads read**. For the
gzip-compressed IDX files that is the SHA-256 of the decompressed IDX bytes
(the gzip CRC is checked on the way), not of the ``.gz`` file: the same data
is published in byte-different archives. The Debian package
``dataset-fashion-mnist`` rewrote the gzip headers (no file name, a 2020
timestamp), so its ``.gz`` files match neither the MD5 sums in Zalando's README
nor a hash of the official downloads, yet hold the same deflate streams:
restoring the original header (name and a 2017-08-31 timestamp) reproduces
Zalando's published MD5 of each file. A hash of the decompressed data accepts
both, and any honest re-compression, and nothing else.

Provenance of the hashes (computed here from real files):

* Fashion-MNIST: the four files of the Debian package, whose deflate streams
  reproduce the MD5 sums in Zalando's README (above). With the original
  headers restored (file name, mtime 2017-08-31 10:50:06 UTC for the train
  files and 10:50:27 for the test files), the official downloads are::

      3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84  train-images-idx3-ubyte.gz  (26421880 bytes)
      a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845  train-labels-idx1-ubyte.gz  (29515 bytes)
      346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073  t10k-images-idx3-ubyte.gz  (4422102 bytes)
      67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5  t10k-labels-idx1-ubyte.gz  (5148 bytes)

  (SHA-256; their MD5 sums are Zalando's 8d4fb7e6…, 25c81989…, bef4ecab…,
  bb300cfd…). The Debian files' own SHA-256 sums are in ../shared/data/README.md.
* MNIST test set: ../shared/data/mnist-test, whose ``.gz`` files match LeCun's
  MD5 sums and the SHA-1 sums MXNet 1.9.1 publishes for its copies
  (``mxnet.gluon.data.vision.MNIST``).
* MNIST training set: **no copy was available to this project, so there is no
  SHA-256 for it.** Rather than publish a hash nobody here computed, these two
  files are checked against the SHA-1 sums of the ``.gz`` files that MXNet 1.9.1
  publishes (``mxnet/gluon/data/vision/datasets.py``; its sums for the two
  test files match the official files above). The fetcher says so when it
  uses them and prints the SHA-256 of what it accepted.
* MovieLens 100K: the GroupLens files in ../shared/data/ml-100k. The zip
  archive itself has no published checksum; each file taken from it is
  verified, and only the files listed here are extracted (the other folds,
  u2–u5 and ub, are not: nothing here could verify them).

Local copies are used instead of downloading when present, and checked the
same way: ``--mirror DIR`` (every file must be there), ``$SMGLUON_DATA_MIRROR``,
then the Debian package's ``/usr/share/datasets/fashion-mnist``. A mirror
folder may hold the files directly or in a subfolder named like the data set
(``mnist``, ``fashion-mnist``, ``ml-100k``).

Writes are atomic: everything is fetched into a temporary folder inside DEST,
verified, and only then renamed into place. A failure (a checksum mismatch, a
transfer that cannot be completed) is a :class:`FetchError` naming the file and
leaves nothing new at the destination. A cut transfer is resumed with an HTTP
``Range`` request, retried with back-off, then tried from the next URL.
"""

import gzip
import hashlib
import http.client
import os
import shutil
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib

__all__ = [
    "DataFile",
    "Dataset",
    "DATASETS",
    "FetchError",
    "DataUnavailableError",
    "fetch",
    "verify",
    "add_data_command",
    "MIRROR_ENV",
]

MIRROR_ENV = "SMGLUON_DATA_MIRROR"
USER_AGENT = "smgluon-data-fetch/0.1 (+https://github.com/; python-urllib)"
_CHUNK = 1 << 20


class FetchError(Exception):
    """A data set could not be fetched or verified; the message names the file and what to do."""


class DataUnavailableError(FetchError):
    """No local copy of a data set has a file, and it could not be downloaded (offline, or downloading is off).

    Attributes:
        dataset (str): the data set's name, e.g. ``fashion-mnist``.
    """

    def __init__(self, message, dataset):
        super().__init__(message)
        self.dataset = dataset


class _TransferFailed(FetchError):
    """No answer from a server, after the retries (the machine may be offline)."""


class DataFile:
    """One file of a data set and how to verify it.

    Args:
        name (str): the file name, as published.
        channel (str): the channel folder it goes to (``train``, ``test``), or None for the data set's folder.
        sha256 (str): SHA-256 of the data (decompressed for ``.gz``); None when unknown.
        size (int): bytes of that data.
        sha1_archive (str): SHA-1 of the published file itself, used only when ``sha256`` is unknown.
    """

    def __init__(self, name, channel, sha256, size, sha1_archive=None):
        self.name = name
        self.channel = channel
        self.sha256 = sha256
        self.size = size
        self.sha1_archive = sha1_archive

    @property
    def compressed(self):
        return self.name.endswith(".gz")


class Dataset:
    """A data set: its files, where they are published and where local copies live.

    Args:
        name (str): the name on the command line.
        folder (str): the folder it is written to under DEST (and looked for in mirrors).
        urls (list[str]): base URLs, official first; a file's URL is the base plus its name.
        files (list[DataFile]): the files.
        archive (str): the published archive holding the files (a zip), if they come in one.
        local_copies (list[str]): folders of system packages holding the files.
        example (str): how to train on it, printed after fetching.
    """

    def __init__(self, name, folder, urls, files, archive=None, local_copies=(), example=None):
        self.name = name
        self.folder = folder
        self.urls = list(urls)
        self.files = list(files)
        self.archive = archive
        self.local_copies = list(local_copies)
        self.example = example

    def channels(self, root):
        """Channel name → folder under ``root`` (the data set's folder)."""
        names = list(dict.fromkeys(f.channel for f in self.files if f.channel))
        if not names:
            return {"training": root}
        return {name: os.path.join(root, name) for name in names}

    def target(self, root, data_file):
        return os.path.join(root, data_file.channel or "", data_file.name)


_IDX_TRAIN, _IDX_TEST = (
    ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    (
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ),
)

DATASETS = {
    "mnist": Dataset(
        "mnist",
        "mnist",
        # LeCun's page is the official source; torchvision's mirror of the same files when it refuses.
        ["http://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"],
        [
            # No copy of the training set was available here: SHA-1 of the .gz as published by MXNet 1.9.1.
            DataFile(_IDX_TRAIN[0], "train", None, 47040016, sha1_archive="6c95f4b05d2bf285e1bfb0e7960c31bd3b3f8a7d"),
            DataFile(_IDX_TRAIN[1], "train", None, 60008, sha1_archive="2a80914081dc54586dbdf242f9805a6b8d2a15fc"),
            DataFile(_IDX_TEST[0], "test", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7840016),
            DataFile(_IDX_TEST[1], "test", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10008),
        ],
        example="smgluon train fmnist_cnn --hp classes=mnist --hp augment=none --train {train} --test {test}",
    ),
    "fashion-mnist": Dataset(
        "fashion-mnist",
        "fashion-mnist",
        [
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ],
        [
            DataFile(
                _IDX_TRAIN[0], "train", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47040016
            ),
            DataFile(_IDX_TRAIN[1], "train", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60008),
            DataFile(_IDX_TEST[0], "test", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7840016),
            DataFile(_IDX_TEST[1], "test", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10008),
        ],
        local_copies=["/usr/share/datasets/fashion-mnist"],  # Debian/Ubuntu: apt-get install dataset-fashion-mnist
        example="smgluon train fmnist_cnn --train {train} --test {test}",
    ),
    "movielens-100k": Dataset(
        "movielens-100k",
        "ml-100k",
        ["https://files.grouplens.org/datasets/movielens/"],
        [
            DataFile("README", None, "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52", 6750),
            DataFile("u.data", None, "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490", 1979173),
            DataFile("u.genre", None, "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb", 202),
            DataFile("u.info", None, "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b", 36),
            DataFile("u.item", None, "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701", 236344),
            DataFile("u.occupation", None, "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d", 193),
            DataFile("u.user", None, "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c", 22628),
            DataFile("u1.base", None, "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a", 1586544),
            DataFile("u1.test", None, "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950", 392629),
            DataFile("ua.base", None, "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2", 1792501),
            DataFile("ua.test", None, "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42", 186672),
        ],
        archive="ml-100k.zip",
        example="smgluon train movielens_mf --training {training}",
    ),
}


# ---------------------------------------------------------------- verification


def _data_stream(path, data_file):
    """Yields the bytes the workloads read: the file, or its decompressed content (at most size + 1 bytes)."""
    with open(path, "rb") as raw:
        stream = gzip.GzipFile(fileobj=raw) if data_file.compressed else raw
        left = data_file.size + 1  # one byte more reveals a file that is too long, without reading a gzip bomb
        while left > 0:
            chunk = stream.read(min(_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def verify(path, data_file):
    """Checks a file against its published checksum.

    Args:
        path (str): the file.
        data_file (DataFile): what it should be.

    Returns:
        str: how it was verified, for the report (``"SHA-256 of the IDX data"``, ...).

    Raises:
        FetchError: naming the file, the expected and the actual checksum.
    """
    if data_file.sha256:
        digest, size = hashlib.sha256(), 0
        try:
            for chunk in _data_stream(path, data_file):
                digest.update(chunk)
                size += len(chunk)
        except (OSError, EOFError, zlib.error) as e:
            raise FetchError("%s: corrupt gzip data (%s); the file is damaged" % (data_file.name, e)) from None
        if size != data_file.size or digest.hexdigest() != data_file.sha256:
            raise FetchError(
                "%s: checksum mismatch: SHA-256 of its %s is %s (%s bytes), expected %s (%d bytes)"
                % (
                    data_file.name,
                    "decompressed data" if data_file.compressed else "content",
                    digest.hexdigest() if size <= data_file.size else "(not computed)",
                    size if size <= data_file.size else "more than %d" % data_file.size,
                    data_file.sha256,
                    data_file.size,
                )
            )
        return "SHA-256 of the %s" % ("decompressed IDX data" if data_file.compressed else "file")
    if data_file.sha1_archive:
        actual = _file_digest(path, "sha1")
        if actual != data_file.sha1_archive:
            raise FetchError(
                "%s: checksum mismatch: SHA-1 %s, expected %s (the sum MXNet publishes for the official file)"
                % (data_file.name, actual, data_file.sha1_archive)
            )
        return "SHA-1 of the .gz as published by MXNet (no SHA-256 known; file SHA-256 %s)" % _file_digest(path)
    raise FetchError("%s: no published checksum to verify it against" % data_file.name)


def _file_digest(path, algorithm="sha256"):
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------- transfer


def _retryable(error):
    if isinstance(error, urllib.error.HTTPError):
        return error.code >= 500 or error.code in (408, 429)
    return isinstance(error, (urllib.error.URLError, http.client.HTTPException, socket.timeout, OSError))


def download(url, path, retries=3, retry_delay=1.0, timeout=60.0, log=None):
    """Downloads ``url`` to ``path``, resuming a cut transfer with a Range request.

    Args:
        url (str): what to download.
        path (str): where (appended to when a partial file is there and the server honours ranges).
        retries (int): attempts after the first one, for network errors and 5xx answers.
        retry_delay (float): seconds before the first retry; doubled for each next one.
        timeout (float): seconds of silence before a connection counts as cut.
        log (callable): progress messages.

    Raises:
        FetchError: when the transfer cannot be completed (4xx answers are not retried).
    """
    log = log or (lambda message: None)
    last = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(retry_delay * 2 ** (attempt - 1))
        have = os.path.getsize(path) if os.path.exists(path) else 0
        headers = {"User-Agent": USER_AGENT}
        if have:
            headers["Range"] = "bytes=%d-" % have
            log("  resuming %s at byte %d (attempt %d)" % (url, have, attempt + 1))
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
                resumed = have and response.status == 206
                expected = response.headers.get("Content-Length")
                expected = int(expected) + (have if resumed else 0) if expected is not None else None
                with open(path, "ab" if resumed else "wb") as f:
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        f.write(chunk)
                size = os.path.getsize(path)
                if expected is not None and size != expected:
                    raise http.client.IncompleteRead(b"", expected - size)
                return
        except urllib.error.HTTPError as e:
            last = e
            if e.code == 416 and have:  # the range is past the end: start again from scratch
                os.remove(path)
                continue
            if not _retryable(e):
                raise FetchError("%s: the server answered %d %s" % (url, e.code, e.reason)) from None
        except Exception as e:  # noqa: BLE001 - every transfer fault is retried, then reported
            if not _retryable(e):
                raise
            last = e
        log("  transfer of %s interrupted (%s)" % (url, _describe(last)))
    raise _TransferFailed("%s: transfer failed after %d attempts (%s)" % (url, retries + 1, _describe(last)))


def _describe(error):
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        return "cannot connect: %s" % (error.reason,)
    if isinstance(error, http.client.IncompleteRead):
        return "connection closed mid-transfer"
    return "%s: %s" % (type(error).__name__, error)


# ---------------------------------------------------------------- local copies


def _mirror_dirs(dataset, mirror):
    """The folders to look for local copies in, as (folder, strict) pairs in order of preference.

    ``--mirror`` alone is strict (every file must be there, and match); otherwise
    ``$SMGLUON_DATA_MIRROR`` and the system packages' folders are used where they hold a file.
    """
    if mirror:
        if not os.path.isdir(mirror):
            raise FetchError("--mirror %s: no such directory" % mirror)
        bases, strict = [mirror], True
    else:
        bases, strict = [os.environ.get(MIRROR_ENV)] + dataset.local_copies, False
    folders = []
    for base in filter(None, bases):
        folders += [os.path.join(base, dataset.folder), base]
    return [(folder, strict) for folder in folders if os.path.isdir(folder)]


def _find_local(dataset, data_file, mirrors):
    for folder, strict in mirrors:
        for path in (
            os.path.join(folder, data_file.name),
            os.path.join(folder, data_file.channel or "", data_file.name),
        ):
            if os.path.isfile(path):
                return path, strict
    return None, False


# ---------------------------------------------------------------- fetch


def fetch(
    dataset,
    dest="data",
    mirror=None,
    urls=None,
    allow_download=True,
    log=None,
    retries=3,
    retry_delay=1.0,
    timeout=60.0,
):
    """Fetches a data set into ``dest``, verified, in the workloads' channel layout.

    Args:
        dataset (str or Dataset): ``mnist``, ``fashion-mnist`` or ``movielens-100k``.
        dest (str): the folder the data set's folder goes in.
        mirror (str): a folder holding every file (checked, and no download); None: none.
        urls (list[str]): base URLs to download from instead of the official ones.
        allow_download (bool): False fails rather than downloading a file no local copy has.
        log (callable): progress messages (default: stderr).
        retries, retry_delay, timeout: see :func:`download`.

    Returns:
        dict: channel name → folder (``{"train": ..., "test": ...}`` or ``{"training": ...}``).

    Raises:
        FetchError: naming the file and the fault; nothing new is left at ``dest``.
    """
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    if isinstance(dataset, str):
        if dataset not in DATASETS:
            raise FetchError("unknown data set %r: choose one of %s" % (dataset, ", ".join(sorted(DATASETS))))
        dataset = DATASETS[dataset]
    root = os.path.abspath(os.path.join(dest, dataset.folder))
    pending = [f for f in dataset.files if not _already_there(dataset, root, f)]
    if not pending:
        log("%s: already in %s, verified" % (dataset.name, root))
        return dataset.channels(root)
    mirrors = _mirror_dirs(dataset, mirror)
    created = [d for d in (os.path.abspath(dest), root) if not os.path.isdir(d)]
    os.makedirs(os.path.abspath(dest), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".tmp-fetch-%s-" % dataset.folder, dir=os.path.abspath(dest))
    try:
        to_download = []
        for data_file in pending:
            if not _from_local(dataset, data_file, mirrors, mirror, staging, log):
                to_download.append(data_file)
        if to_download:
            if not allow_download:
                raise DataUnavailableError(
                    "%s: no local copy of %s and downloading is off; give --mirror DIR or set %s"
                    % (dataset.name, ", ".join(f.name for f in to_download), MIRROR_ENV),
                    dataset.name,
                )
            _download_files(dataset, to_download, urls or dataset.urls, staging, log, retries, retry_delay, timeout)
        for data_file in pending:  # every file is verified: move them in
            target = dataset.target(root, data_file)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(os.path.join(staging, data_file.name), target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in reversed(created):  # folders this call made, if they stayed empty
            _remove_empty_tree(folder)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return dataset.channels(root)


def _remove_empty_tree(folder):
    for current, _, _ in sorted(os.walk(folder), key=lambda entry: -len(entry[0])):
        try:
            os.rmdir(current)
        except OSError:
            pass


def _already_there(dataset, root, data_file):
    path = dataset.target(root, data_file)
    if not os.path.isfile(path):
        return False
    try:
        verify(path, data_file)
        return True
    except FetchError:
        return False  # fetched again and replaced


def _from_local(dataset, data_file, mirrors, mirror, staging, log):
    source, strict = _find_local(dataset, data_file, mirrors)
    if source is None:
        if mirror:
            raise FetchError(
                "--mirror %s holds no %s (looked in %s and %s/)"
                % (mirror, data_file.name, mirror, os.path.join(mirror, dataset.folder))
            )
        return False
    staged = os.path.join(staging, data_file.name)
    shutil.copyfile(source, staged)
    try:
        how = verify(staged, data_file)
    except FetchError as e:
        if strict:
            raise FetchError("local copy %s: %s" % (source, e)) from None
        log("%s: the local copy %s is damaged (%s); downloading instead" % (dataset.name, source, e))
        os.remove(staged)
        return False
    log("%s: %s from %s (verified: %s)" % (dataset.name, data_file.name, os.path.dirname(source), how))
    return True


def _download_files(dataset, files, urls, staging, log, retries, retry_delay, timeout):
    """Downloads the files (or the archive holding them) into ``staging``, trying each base URL in turn."""
    failures, unreachable = [], True
    for base in urls:
        base = base if base.endswith("/") else base + "/"
        try:
            if dataset.archive:
                _download_archive(dataset, files, base, staging, log, retries, retry_delay, timeout)
            else:
                for data_file in files:
                    staged = os.path.join(staging, data_file.name)
                    if os.path.exists(staged) and _verifies(staged, data_file):
                        continue  # from an earlier URL
                    log("%s: downloading %s%s" % (dataset.name, base, data_file.name))
                    download(base + data_file.name, staged + ".part", retries, retry_delay, timeout, log)
                    os.replace(staged + ".part", staged)
                    log("%s: %s verified (%s)" % (dataset.name, data_file.name, verify(staged, data_file)))
            return
        except FetchError as e:
            failures.append(str(e))
            unreachable = unreachable and isinstance(e, _TransferFailed)
            for name in os.listdir(staging):
                if name.endswith(".part") or name == dataset.archive:
                    os.remove(os.path.join(staging, name))
    separator = "\n  " if len(failures) > 1 else " "
    message = "%s could not be fetched:%s%s" % (dataset.name, separator, separator.join(failures))
    raise DataUnavailableError(message, dataset.name) if unreachable else FetchError(message)


def _verifies(path, data_file):
    try:
        verify(path, data_file)
        return True
    except FetchError:
        os.remove(path)
        return False


def _download_archive(dataset, files, base, staging, log, retries, retry_delay, timeout):
    archive = os.path.join(staging, dataset.archive)
    log("%s: downloading %s%s" % (dataset.name, base, dataset.archive))
    download(base + dataset.archive, archive + ".part", retries, retry_delay, timeout, log)
    os.replace(archive + ".part", archive)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = {os.path.basename(n): n for n in zf.namelist() if not n.endswith("/")}
            for data_file in files:
                if data_file.name not in members:
                    raise FetchError("%s: %s holds no %s" % (base + dataset.archive, dataset.archive, data_file.name))
                info = zf.getinfo(members[data_file.name])
                if info.file_size != data_file.size:
                    raise FetchError(
                        "%s: checksum mismatch: %d bytes in %s, expected %d"
                        % (data_file.name, info.file_size, dataset.archive, data_file.size)
                    )
                staged = os.path.join(staging, data_file.name)
                with zf.open(info) as src, open(staged, "wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK)
                verify(staged, data_file)
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise FetchError("%s: not a readable zip archive (%s)" % (base + dataset.archive, e)) from None
    finally:
        if os.path.exists(archive):
            os.remove(archive)
    log("%s: %d files from %s verified (SHA-256 of each file)" % (dataset.name, len(files), dataset.archive))


# ---------------------------------------------------------------- command line


def cmd_fetch(args):
    """``smgluon data fetch``: prints where the channels are; one line of error on failure."""
    from smgluon_local import nyc_flights_data  # generated from a package, not downloaded files

    if args.name == nyc_flights_data.NAME:
        return nyc_flights_data.cmd_fetch(args)
    try:
        channels = fetch(
            args.name,
            args.dest,
            mirror=args.mirror,
            urls=[args.url] if args.url else None,
            allow_download=not args.no_download,
            retries=args.retries,
            timeout=args.timeout,
        )
    except DataUnavailableError:
        raise  # the command line's answer: the ways to get the data, exit status 2
    except FetchError as e:
        print("smgluon: error: %s" % e, file=sys.stderr)
        return 1
    dataset = DATASETS[args.name]
    print("%s is in %s" % (dataset.name, os.path.abspath(os.path.join(args.dest, dataset.folder))))
    for name, folder in channels.items():
        print("  %s channel: %s" % (name, folder))
    if dataset.example:
        short = {name: _short_path(folder) for name, folder in channels.items()}
        print("  e.g. " + dataset.example.format(**short))
    return 0


def _short_path(path):
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def add_data_command(subparsers):
    """Registers ``smgluon data fetch`` (in :data:`smgluon_local.cli.SUBCOMMANDS`)."""
    data = subparsers.add_parser("data", help="fetch the data sets the workloads read, verified")
    verbs = data.add_subparsers(dest="data_command", metavar="VERB")
    verbs.required = True
    p = verbs.add_parser(
        "fetch",
        help="download (or copy from a local copy) and verify a data set",
        description="Download a data set from its official source, or copy it from a local copy, verify the"
        " checksums, and write the channel folders the workloads read.",
    )
    from smgluon_local import nyc_flights_data

    p.add_argument("name", choices=sorted(list(DATASETS) + [nyc_flights_data.NAME]), help="the data set")
    p.add_argument("--dest", default="data", metavar="DIR", help="where DATASET/ goes (default: ./data)")
    p.add_argument(
        "--mirror",
        metavar="DIR",
        help="a folder holding the files (or DIR/<data set>/): copied and verified, no download"
        " (default: $%s if set, and /usr/share/datasets/fashion-mnist for fashion-mnist)" % MIRROR_ENV,
    )
    p.add_argument("--url", metavar="BASE_URL", help="download from BASE_URL/<file> instead of the official sources")
    p.add_argument("--no-download", action="store_true", help="fail rather than download what no local copy has")
    p.add_argument("--retries", type=int, default=3, help="retries of a cut or failed transfer (default: 3)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds without data before retrying (default: 60)")
    nyc_flights_data.add_arguments(p)
    p.set_defaults(func=cmd_fetch)
    return data
