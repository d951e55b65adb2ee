import gzip
import os

import numpy as np
import pytest
from conftest import MNIST_TEST

from smgluon.channels import ChannelError, find_idx_pair, load_idx_channels, train_test_dirs
from smgluon.idx import IdxError, read_idx, read_images_labels, write_idx


def test_reads_the_official_mnist_files():
    images = read_idx(os.path.join(MNIST_TEST, "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(MNIST_TEST, "t10k-labels-idx1-ubyte.gz"))
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


@pytest.mark.parametrize("name", ["a-images-idx3-ubyte", "a-images-idx3-ubyte.gz"])
def test_round_trip_raw_and_gz(tmp_path, name):
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = str(tmp_path / name)
    write_idx(path, data)
    assert np.array_equal(read_idx(path), data)
    assert os.listdir(str(tmp_path)) == [name]  # no temporary file left


def _raw(tmp_path, payload, name="x-idx3-ubyte"):
    path = tmp_path / name
    path.write_bytes(payload)
    return str(path)


def _valid(n=3):
    return b"\x00\x00\x08\x03" + (n).to_bytes(4, "big") + (2).to_bytes(4, "big") + (2).to_bytes(4, "big") + bytes(4 * n)


@pytest.mark.parametrize(
    "payload, fragment",
    [
        (b"\x00\x00", "too short for an IDX header"),
        (b"\x50\x4b\x03\x04" + bytes(20), "bad magic number 0x504b0304"),
        (b"\x00\x00\x0d\x01" + bytes(8), "data type 0x0d is not supported"),
        (b"\x00\x00\x08\x03" + bytes(6), "truncated header"),
        (_valid()[:-5], "truncated: dimensions 3x2x2 need 28 bytes, file has 23"),
        (_valid() + b"xx", "has trailing data"),
    ],
)
def test_corrupt_files_name_the_file_and_fault(tmp_path, payload, fragment):
    path = _raw(tmp_path, payload)
    with pytest.raises(IdxError) as err:
        read_idx(path)
    assert path in str(err.value) and fragment in str(err.value)


def test_truncated_gzip(tmp_path):
    full = gzip.compress(_valid(1000))
    path = _raw(tmp_path, full[: len(full) // 2], "cut-idx3-ubyte.gz")
    with pytest.raises(IdxError, match="corrupt or truncated gzip data.*fetch the file again"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(IdxError, match="file not found"):
        read_idx(str(tmp_path / "nope.gz"))


def test_images_and_labels_must_match(tmp_path):
    write_idx(str(tmp_path / "i-images-idx3-ubyte"), np.zeros((3, 2, 2), np.uint8))
    write_idx(str(tmp_path / "l-labels-idx1-ubyte"), np.array([1, 2], np.uint8))
    write_idx(str(tmp_path / "bad-labels-idx1-ubyte"), np.array([1, 2, 10], np.uint8))
    with pytest.raises(IdxError, match="has 3 images but .* has 2 labels"):
        read_images_labels(str(tmp_path / "i-images-idx3-ubyte"), str(tmp_path / "l-labels-idx1-ubyte"))
    with pytest.raises(IdxError, match="label 10 out of range 0..9"):
        read_images_labels(str(tmp_path / "i-images-idx3-ubyte"), str(tmp_path / "bad-labels-idx1-ubyte"))
    with pytest.raises(IdxError, match="expected 3 dimensions"):
        read_images_labels(str(tmp_path / "l-labels-idx1-ubyte"), str(tmp_path / "l-labels-idx1-ubyte"))


def test_channel_layouts(mnist_small_dirs):
    d = mnist_small_dirs
    assert train_test_dirs({"train": d["train"], "test": d["test"]}) == (d["train"], d["test"])
    assert train_test_dirs({"training": d["training"]}) == (d["training"], d["training"])
    assert train_test_dirs({"train": d["train"], "validation": d["test"]}) == (d["train"], d["test"])
    for channels in ({"train": d["train"], "test": d["test"]}, {"training": d["training"]}):
        (xtr, ytr), (xte, yte) = load_idx_channels(channels)
        assert xtr.shape == (2000, 28, 28) and xte.shape == (500, 28, 28) and ytr.dtype == np.int32


def test_single_pair_channel_has_no_separate_test_data(tmp_path, mnist_small_dirs):
    (train, _), test = load_idx_channels({"training": mnist_small_dirs["train"]})
    assert test is None and len(train) == 2000
    # any one images/labels pair in a channel is accepted
    pair = find_idx_pair(mnist_small_dirs["test"], "train")
    assert os.path.basename(pair[0]) == "t10k-images-idx3-ubyte.gz"


def test_channel_errors(tmp_path):
    with pytest.raises(ChannelError, match="channels given: eval.*'train' channel.*'training' channel"):
        train_test_dirs({"eval": str(tmp_path)})
    with pytest.raises(ChannelError, match="does not exist"):
        train_test_dirs({"train": str(tmp_path / "missing")})
    (tmp_path / "README").write_text("x")
    with pytest.raises(ChannelError, match="no train images/labels IDX files in .*it holds: README"):
        find_idx_pair(str(tmp_path), "train")
