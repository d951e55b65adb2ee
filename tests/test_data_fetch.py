"""`smgluon data fetch` against a local HTTP server serving copies of ../shared/data: verified downloads,
a connection cut mid-transfer, corrupted files, mirrors, and the Debian Fashion-MNIST package."""

import gzip
import hashlib
import http.server
import io
import os
import re
import threading
import zipfile

import pytest
from conftest import MNIST_TEST, SHARED_DATA
from local_helpers import NoInternet

from smgluon_local import datasets
from smgluon_local.cli import main
from smgluon_local.datasets import DATASETS, DataFile, Dataset, FetchError, fetch, verify

ML100K = os.path.join(SHARED_DATA, "ml-100k")
DEBIAN_FMNIST = "/usr/share/datasets/fashion-mnist"
MNIST_TEST_ONLY = Dataset("mnist", "mnist", [], [f for f in DATASETS["mnist"].files if f.channel == "test"])
IMAGES, LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"


def read(path):
    with open(path, "rb") as f:
        return f.read()


class Server(http.server.ThreadingHTTPServer):
    """Serves ``files`` (URL path → bytes) with byte ranges; ``cut_once`` paths drop the first full transfer halfway."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files, self.cut_once, self.requests, self.ranges = {}, set(), [], True

    @property
    def url(self):
        return "http://127.0.0.1:%d/" % self.server_address[1]


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - the http.server interface
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        match = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
        start = int(match.group(1)) if match and server.ranges else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(body) - 1, len(body)))
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if self.path in server.cut_once and not start:
            server.cut_once.discard(self.path)
            self.wfile.write(body[: len(body) // 2])  # then the connection closes mid-transfer
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])


@pytest.fixture
def server():
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    with NoInternet() as guard:
        yield srv
    srv.shutdown()
    srv.server_close()
    assert guard.attempts == [], "the fetcher tried to reach the network: %r" % guard.attempts


def serve_mnist_test(server, **changed):
    for name in (IMAGES, LABELS):
        server.files["/" + name] = changed.get(name, read(os.path.join(MNIST_TEST, name)))


def regzip(data):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as g:
        g.write(data)
    return buf.getvalue()


def nothing_left(dest):
    return not os.path.exists(dest) or os.listdir(dest) == []


def quiet(_message):
    pass


def test_download_verifies_and_writes_the_channel_layout(server, tmp_path):
    serve_mnist_test(server)
    channels = fetch(MNIST_TEST_ONLY, str(tmp_path / "data"), urls=[server.url], log=quiet)
    assert channels == {"test": str(tmp_path / "data" / "mnist" / "test")}
    for name in (IMAGES, LABELS):
        assert read(os.path.join(channels["test"], name)) == read(os.path.join(MNIST_TEST, name))
    assert os.listdir(tmp_path / "data") == ["mnist"]  # no temporary files left behind

    server.requests.clear()
    fetch(MNIST_TEST_ONLY, str(tmp_path / "data"), urls=[server.url], log=quiet)
    assert server.requests == []  # already there and verified: nothing downloaded again


def test_a_cut_transfer_is_resumed_with_a_range_request(server, tmp_path):
    serve_mnist_test(server)
    server.cut_once.add("/" + IMAGES)
    messages = []
    channels = fetch(MNIST_TEST_ONLY, str(tmp_path), urls=[server.url], log=messages.append, retry_delay=0.01)
    half = len(server.files["/" + IMAGES]) // 2
    assert ("/" + IMAGES, "bytes=%d-" % half) in server.requests
    assert any("resuming" in m for m in messages)
    assert read(os.path.join(channels["test"], IMAGES)) == read(os.path.join(MNIST_TEST, IMAGES))


def test_a_server_without_ranges_restarts_the_transfer(server, tmp_path):
    serve_mnist_test(server)
    server.cut_once.add("/" + LABELS)
    server.ranges = False  # answers 200 with the whole file to a Range request
    channels = fetch(MNIST_TEST_ONLY, str(tmp_path), urls=[server.url], log=quiet, retry_delay=0.01)
    assert read(os.path.join(channels["test"], LABELS)) == read(os.path.join(MNIST_TEST, LABELS))


@pytest.mark.parametrize(
    "corrupt, message",
    [
        # one label changed, validly re-compressed: only the checksum can tell
        (lambda raw: regzip(gzip.decompress(raw)[:-1] + b"\x00"), "t10k-labels-idx1-ubyte.gz: checksum mismatch"),
        # a flipped byte inside the deflate stream
        (lambda raw: raw[:200] + bytes([raw[200] ^ 0xFF]) + raw[201:], "t10k-labels-idx1-ubyte.gz: "),
    ],
)
def test_a_corrupted_file_is_a_clear_error_and_leaves_nothing(server, tmp_path, corrupt, message):
    serve_mnist_test(server, **{LABELS: corrupt(read(os.path.join(MNIST_TEST, LABELS)))})
    dest = str(tmp_path / "data")
    with pytest.raises(FetchError, match=re.escape(message)):
        fetch(MNIST_TEST_ONLY, dest, urls=[server.url], log=quiet)
    assert nothing_left(dest)  # not even the verified images file


def test_missing_file_and_unreachable_server_are_clear_errors(server, tmp_path):
    with pytest.raises(FetchError, match=r"t10k-images-idx3-ubyte.gz: the server answered 404"):
        fetch(MNIST_TEST_ONLY, str(tmp_path / "a"), urls=[server.url], log=quiet)
    assert len(server.requests) == 1  # a 404 is not retried
    dead = "http://127.0.0.1:%d/" % datasets_free_port()
    with pytest.raises(FetchError, match="transfer failed after 3 attempts .cannot connect"):
        fetch(MNIST_TEST_ONLY, str(tmp_path / "b"), urls=[dead], log=quiet, retries=2, retry_delay=0.01)
    assert nothing_left(str(tmp_path / "a")) and nothing_left(str(tmp_path / "b"))


def datasets_free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_second_url_is_tried_when_the_first_fails(server, tmp_path):
    serve_mnist_test(server)
    server.files = {"/mirror" + k: v for k, v in server.files.items()}
    channels = fetch(MNIST_TEST_ONLY, str(tmp_path), urls=[server.url + "gone/", server.url + "mirror/"], log=quiet)
    assert sorted(os.listdir(channels["test"])) == [IMAGES, LABELS]


def ml100k_zip(**changed):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(os.listdir(ML100K)):
            zf.writestr("ml-100k/" + name, changed.get(name, read(os.path.join(ML100K, name))))
        zf.writestr("ml-100k/u2.base", b"1\t1\t5\t0\n")  # a member nothing here can verify: not extracted
    return buf.getvalue()


def test_cli_fetches_movielens_from_the_zip(server, tmp_path, capsys):
    server.files["/ml-100k.zip"] = ml100k_zip()
    server.cut_once.add("/ml-100k.zip")
    dest = str(tmp_path / "data")
    assert main(["data", "fetch", "movielens-100k", "--url", server.url, "--dest", dest]) == 0
    out = capsys.readouterr().out
    folder = os.path.join(dest, "ml-100k")
    assert "movielens-100k is in %s" % folder in out and "training channel: %s" % folder in out
    assert "smgluon train movielens_mf --training" in out
    assert sorted(os.listdir(folder)) == sorted(f.name for f in DATASETS["movielens-100k"].files)
    assert read(os.path.join(folder, "u.data")) == read(os.path.join(ML100K, "u.data"))


def test_cli_movielens_with_a_changed_rating_fails_and_leaves_nothing(server, tmp_path, capsys):
    data = read(os.path.join(ML100K, "u.data"))
    server.files["/ml-100k.zip"] = ml100k_zip(**{"u.data": data.replace(b"\t3\t", b"\t4\t", 1)})
    dest = str(tmp_path / "data")
    assert main(["data", "fetch", "movielens-100k", "--url", server.url, "--dest", dest]) == 1
    err = capsys.readouterr().err
    assert "smgluon: error: movielens-100k could not be fetched: u.data: checksum mismatch" in err
    assert "Traceback" not in err
    assert nothing_left(dest)


def test_strict_mirror_and_damaged_local_copies(server, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror" / "mnist"
    mirror.mkdir(parents=True)
    (mirror / IMAGES).write_bytes(read(os.path.join(MNIST_TEST, IMAGES)))
    with pytest.raises(FetchError, match="--mirror .* holds no t10k-labels-idx1-ubyte.gz"):
        fetch(MNIST_TEST_ONLY, str(tmp_path / "a"), mirror=str(tmp_path / "mirror"), log=quiet)
    (mirror / LABELS).write_bytes(b"not gzip")
    with pytest.raises(FetchError, match="local copy .*t10k-labels-idx1-ubyte.gz: corrupt gzip data"):
        fetch(MNIST_TEST_ONLY, str(tmp_path / "a"), mirror=str(tmp_path / "mirror"), log=quiet)
    assert nothing_left(str(tmp_path / "a"))

    # the same damaged copy found through the environment: reported, then downloaded instead
    serve_mnist_test(server)
    monkeypatch.setenv(datasets.MIRROR_ENV, str(tmp_path / "mirror"))
    messages = []
    channels = fetch(MNIST_TEST_ONLY, str(tmp_path / "b"), urls=[server.url], log=messages.append)
    assert any("is damaged" in m and "downloading instead" in m for m in messages)
    assert [path for path, _ in server.requests] == ["/" + LABELS]  # the images came from the mirror
    assert read(os.path.join(channels["test"], LABELS)) == read(os.path.join(MNIST_TEST, LABELS))


def test_no_download_without_a_local_copy(tmp_path):
    with pytest.raises(FetchError, match="no local copy of t10k-images.*downloading is off"):
        fetch(MNIST_TEST_ONLY, str(tmp_path), allow_download=False, log=quiet)


@pytest.mark.skipif(not os.path.isdir(DEBIAN_FMNIST), reason="apt-get install dataset-fashion-mnist")
def test_fashion_mnist_from_the_debian_package(tmp_path, capsys):
    with NoInternet():
        assert main(["data", "fetch", "fashion-mnist", "--dest", str(tmp_path), "--no-download"]) == 0
    out, err = capsys.readouterr()
    assert "train channel: %s" % (tmp_path / "fashion-mnist" / "train") in out
    assert err.count("from %s (verified: SHA-256 of the decompressed IDX data)" % DEBIAN_FMNIST) == 4
    for f in DATASETS["fashion-mnist"].files:
        assert read(str(tmp_path / "fashion-mnist" / f.channel / f.name)) == read(os.path.join(DEBIAN_FMNIST, f.name))


def test_published_checksums_match_the_shared_copies():
    """The SHA-256 sums in the registry are those of the real files here, and the MNIST SHA-1 sums are MXNet's."""
    for f in DATASETS["movielens-100k"].files:
        assert verify(os.path.join(ML100K, f.name), f).startswith("SHA-256")
    for f in MNIST_TEST_ONLY.files:
        assert verify(os.path.join(MNIST_TEST, f.name), f) == "SHA-256 of the decompressed IDX data"
    import importlib.util

    mxnet_dir = os.path.dirname(importlib.util.find_spec("mxnet").origin)  # without importing it (slow)
    published = read(os.path.join(mxnet_dir, "gluon", "data", "vision", "datasets.py")).decode()
    for f in DATASETS["mnist"].files:
        if f.sha256 is None:
            assert "'%s',\n" % f.name in published and "'%s')" % f.sha1_archive in published
    # MXNet's sum for the test images is that of the official file we have: its sums are of the official files.
    assert "'c3a25af1f52dad7f726cce8cacb138654b760d48')" in published
    assert (
        hashlib.sha1(read(os.path.join(MNIST_TEST, IMAGES))).hexdigest() == "c3a25af1f52dad7f726cce8cacb138654b760d48"
    )


def test_sha1_fallback_verifies_the_archive_itself(tmp_path):
    path = os.path.join(MNIST_TEST, IMAGES)
    entry = DataFile(IMAGES, "test", None, 7840016, sha1_archive="c3a25af1f52dad7f726cce8cacb138654b760d48")
    assert verify(path, entry).startswith("SHA-1 of the .gz as published by MXNet")
    raw = read(path)
    (tmp_path / IMAGES).write_bytes(raw[:1000] + bytes([raw[1000] ^ 1]) + raw[1001:])
    with pytest.raises(FetchError, match="checksum mismatch: SHA-1"):
        verify(str(tmp_path / IMAGES), entry)


def test_unknown_data_set_is_a_clear_error(tmp_path):
    with pytest.raises(FetchError, match="unknown data set 'cifar'"):
        fetch("cifar", str(tmp_path))
