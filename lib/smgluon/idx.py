"""IDX files (the MNIST and Fashion-MNIST format), gzip-compressed or raw.

The format: two zero bytes, a type byte (0x08 for unsigned bytes), the number
of dimensions, then one big-endian uint32 per dimension, then the data. Every
fault (short header, wrong magic, a size that does not match the dimensions, a
cut gzip stream, labels out of range) is an :class:`IdxError` naming the file.
"""

import gzip
import struct
import zlib

import numpy as np

from smgluon import files

__all__ = ["IdxError", "read_idx", "write_idx", "read_images_labels"]

_UBYTE = 0x08


class IdxError(ValueError):
    """An IDX file is missing, truncated or corrupt."""


def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=f) as g:
                    return g.read()
            return f.read()
    except FileNotFoundError:
        raise IdxError("%s: file not found" % path) from None
    except (EOFError, OSError, zlib.error) as e:
        raise IdxError("%s: corrupt or truncated gzip data (%s); fetch the file again" % (path, e)) from None


def read_idx(path):
    """Reads an IDX file of unsigned bytes.

    Args:
        path (str): the file, ``.gz`` or raw.

    Returns:
        numpy.ndarray: uint8, shaped by the file's dimensions.

    Raises:
        IdxError: naming the file and the fault.
    """
    data = _read_bytes(path)
    if len(data) < 4:
        raise IdxError("%s: too short for an IDX header (%d bytes)" % (path, len(data)))
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or ndim == 0:
        raise IdxError("%s: bad magic number 0x%s, not an IDX file" % (path, data[:4].hex()))
    if dtype != _UBYTE:
        raise IdxError("%s: IDX data type 0x%02x is not supported (only unsigned bytes, 0x08)" % (path, dtype))
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(
            "%s: truncated header: %d dimensions need %d bytes, file has %d" % (path, ndim, header, len(data))
        )
    dims = struct.unpack(">%dI" % ndim, data[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing data"
        raise IdxError(
            "%s: %s: dimensions %s need %d bytes, file has %d"
            % (path, what, "x".join(map(str, dims)), expected, len(data))
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def write_idx(path, array):
    """Writes a uint8 array as an IDX file, gzip-compressed if ``path`` ends in ``.gz``.

    The file appears atomically: it is written under a temporary name and renamed.

    Args:
        path (str): destination.
        array (numpy.ndarray): values in 0..255.
    """
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8:
        if array.min() < 0 or array.max() > 255:
            raise ValueError("IDX ubyte values must be in 0..255")
        array = array.astype(np.uint8)
    payload = struct.pack(">HBB", 0, _UBYTE, array.ndim) + struct.pack(">%dI" % array.ndim, *array.shape)
    payload += array.tobytes()
    with files.replacing(path) as tmp, open(tmp, "xb") as f:
        if path.endswith(".gz"):
            with gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as g:
                g.write(payload)
        else:
            f.write(payload)


def read_images_labels(images_path, labels_path, num_classes=10):
    """Reads a matching pair of image and label files.

    Args:
        images_path (str): an IDX file of N×H×W images.
        labels_path (str): an IDX file of N labels.
        num_classes (int): labels must lie in ``0..num_classes-1``.

    Returns:
        tuple(numpy.ndarray, numpy.ndarray): uint8 images (N, H, W) and int32 labels (N,).

    Raises:
        IdxError: for a fault in either file, or when they do not match.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise IdxError("%s: expected 3 dimensions (count, rows, columns), found %d" % (images_path, images.ndim))
    if labels.ndim != 1:
        raise IdxError("%s: expected 1 dimension (count), found %d" % (labels_path, labels.ndim))
    if len(images) != len(labels):
        raise IdxError("%s has %d images but %s has %d labels" % (images_path, len(images), labels_path, len(labels)))
    if len(labels) and labels.max() >= num_classes:
        raise IdxError("%s: label %d out of range 0..%d" % (labels_path, labels.max(), num_classes - 1))
    return images, labels.astype(np.int32)
