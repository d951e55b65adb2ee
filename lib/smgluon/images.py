"""Image requests: PNG/JPEG bodies and arrays of pixels, turned into batches of small grey images.

An endpoint of an image workload receives either encoded pictures
(``image/png``, ``image/jpeg``: any size, colour or grey) or pixels already in
the model's format (JSON, NPY, CSV). Both end as uint8-range float32 batches of
shape ``(N, 1, size, size)``; the net scales them itself.

A picture becomes a model input the way Zalando made Fashion-MNIST from product
photos, so a photo of a garment looks like the training data:

1. decoded to one grey channel by ``mx.image.imdecode`` (OpenCV inside MXNet:
   luma ``0.299 R + 0.587 G + 0.114 B``; alpha is dropped, 16-bit is scaled
   to 8-bit);
2. **inverted** when the background (the mean of the four corner pixels) is
   light, above 127: the data sets show light objects on a black background,
   while photos show a garment (or ink) on a light background; Zalando negated
   every image. A picture that already follows the convention (a dark
   background, e.g. a data-set image saved as PNG) is left as it is.
   ``invert=true|false`` overrides the guess;
3. a picture of exactly ``size`` × ``size`` is taken as it is (it is already
   in the data set's format); any other is trimmed of the edges whose pixels
   all lie within 5% of the background, its longer side is scaled to ``box``
   (area interpolation when shrinking) and the shorter one in proportion, and
   it is placed on a ``size`` × ``size`` canvas of the background value:
   centred by its bounding box (Fashion-MNIST, ``box`` = 28) or by its centre
   of mass (MNIST: LeCun scaled digits into a 20-pixel box and centred their
   centre of mass).

MXNet's ``imdecode`` returns an uninitialised image, without an error, when a
header parses but the data behind it does not; so the structure is checked
first: every PNG chunk's CRC and the closing IEND chunk, a JPEG's scan and
end-of-image markers.

Every fault (not a PNG/JPEG, undecodable, empty, too many pixels, an array of
the wrong shape or range) is a :class:`smgluon.serving.RequestError` naming it.
"""

import struct
import zlib

import numpy as np

from smgluon.serving import RequestError

__all__ = ["IMAGE_TYPES", "MAX_PIXELS", "image_size", "decode_image", "to_model_image", "pixel_batch"]

IMAGE_TYPES = ("image/png", "image/jpeg")
MAX_PIXELS = 40_000_000  # larger pictures are refused before decoding (a small PNG can claim 10^9 pixels)
MAX_VALUE = 255.0
_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
_TRIM_TOLERANCE = 0.05 * MAX_VALUE
# JPEG start-of-frame markers (all but DHT 0xC4, JPG 0xC8, DAC 0xCC) carry the height and width.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data):
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _SOF and pos + 9 <= len(data):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    raise RequestError("the JPEG image is truncated or corrupt: no frame header (SOF) found")


def _check_png(data):
    """Walks the PNG chunks: each CRC must match, IDAT data must be there, IEND must close the file."""
    pos, seen_idat = 8, False
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, end = data[pos + 4 : pos + 8], pos + 12 + length
        if end > len(data):
            break
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(data[pos + 4 : end - 4]) != crc:
            raise RequestError(
                "the PNG image is corrupt: the CRC of its %r chunk does not match" % kind.decode("latin-1")
            )
        seen_idat = seen_idat or kind == b"IDAT"
        if kind == b"IEND":
            if seen_idat:
                return
            break
        pos = end
    raise RequestError("the PNG image is truncated or corrupt: it does not end with image data and an IEND chunk")


def _check_jpeg(data):
    scan = data.find(b"\xff\xda")
    if scan < 0 or data.rfind(b"\xff\xd9") < scan:
        raise RequestError("the JPEG image is truncated or corrupt: no complete scan (SOS ... EOI)")


def image_size(data):
    """Reads the width and height from a PNG or JPEG header, without decoding.

    Args:
        data (bytes): the encoded picture.

    Returns:
        tuple(int, int): width and height.

    Raises:
        RequestError: when ``data`` is neither PNG nor JPEG, or its header is cut.
    """
    if data.startswith(_PNG):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise RequestError("the PNG image is truncated or corrupt: no IHDR header")
        return struct.unpack(">II", data[16:24])
    if data.startswith(_JPEG):
        return _jpeg_size(data)
    raise RequestError(
        "the body is not a PNG or JPEG image (it starts with %r); send image/png or image/jpeg bytes, "
        "or pixels as application/json or application/x-npy" % bytes(data[:8])
    )


def decode_image(data, colour=False):
    """Decodes a PNG or JPEG picture to one grey channel (or to RGB).

    Args:
        data (bytes): the encoded picture (any size, colour or grey, 8 or 16 bit).
        colour (bool): decode to three channels, RGB (grey pictures are repeated, alpha dropped).

    Returns:
        numpy.ndarray: uint8, (height, width), or (height, width, 3) with ``colour``.

    Raises:
        RequestError: for an empty, unknown, oversized or undecodable picture.
    """
    import mxnet as mx

    if isinstance(data, str):
        data = data.encode("latin-1")
    data = bytes(data)
    if not data:
        raise RequestError("the request body is empty: send the PNG or JPEG bytes")
    width, height = image_size(data)
    if width == 0 or height == 0:
        raise RequestError("the image is empty (%dx%d pixels)" % (width, height))
    if width * height > MAX_PIXELS:
        raise RequestError(
            "the image is too large (%dx%d pixels, at most %d): scale it down first" % (width, height, MAX_PIXELS)
        )
    (_check_png if data.startswith(_PNG) else _check_jpeg)(data)
    try:
        # asnumpy() inside the try: MXNet decodes asynchronously and reports failures on read.
        pixels = mx.image.imdecode(data, flag=1 if colour else 0, to_rgb=True).asnumpy()
    except mx.base.MXNetError:
        raise RequestError("the image could not be decoded: the PNG/JPEG data is truncated or corrupt") from None
    return pixels if colour else pixels.reshape(pixels.shape[0], pixels.shape[1])


def _trim(grey, background):
    """Crops edges whose pixels all lie within the tolerance of the background value."""
    content = np.abs(grey.astype(np.float32) - background) > _TRIM_TOLERANCE
    rows, cols = np.flatnonzero(content.any(axis=1)), np.flatnonzero(content.any(axis=0))
    if len(rows) == 0:  # a blank picture: nothing to trim to
        return grey
    return grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def to_model_image(grey, size=28, invert="auto", box=None, centre="box"):
    """Turns a decoded grey picture into a ``size`` × ``size`` input in the data set's convention.

    Args:
        grey (numpy.ndarray): uint8 (height, width), from :func:`decode_image`.
        size (int): the model's side length.
        invert (str or bool): ``"auto"`` (invert a light background), True or False.
        box (int): the side of the box the trimmed object is scaled into (default: ``size``).
        centre (str): ``"box"`` centres the object's bounding box, ``"mass"`` its centre of mass.

    Returns:
        numpy.ndarray: uint8 (size, size): a light object on a dark background.
    """
    import mxnet as mx

    background = float(grey[[0, 0, -1, -1], [0, -1, 0, -1]].astype(np.float32).mean())
    if invert == "auto":
        invert = background > MAX_VALUE / 2
    if invert:
        grey = (MAX_VALUE - grey).astype(np.uint8)
        background = MAX_VALUE - background
    if grey.shape == (size, size):
        return grey
    grey = _trim(grey, background)
    height, width = grey.shape
    scale = float(box or size) / max(height, width)
    new_h, new_w = max(1, int(round(height * scale))), max(1, int(round(width * scale)))
    if (new_h, new_w) != (height, width):
        # area interpolation (3) averages when shrinking, as Zalando's subsampling; bicubic (2) when enlarging
        interp = 3 if scale < 1 else 2
        grey = mx.image.imresize(mx.nd.array(grey[:, :, None], dtype=np.uint8), new_w, new_h, interp=interp)
        grey = grey.asnumpy()[:, :, 0]
    canvas = np.full((size, size), int(round(background)), dtype=np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    weights = grey.astype(np.float64) - background
    if centre == "mass" and weights.sum() > 0:
        # move the centre of mass to the canvas centre, keeping the whole object on the canvas
        rows, cols = np.indices(grey.shape)
        middle = (size - 1) / 2.0
        top = int(round(middle - (rows * weights).sum() / weights.sum()))
        left = int(round(middle - (cols * weights).sum() / weights.sum()))
        top, left = min(max(top, 0), size - new_h), min(max(left, 0), size - new_w)
    canvas[top : top + new_h, left : left + new_w] = grey
    return canvas


def pixel_batch(payload, size=28):
    """Turns decoded JSON/NPY/CSV pixels into a float32 batch ``(N, 1, size, size)``.

    Accepted shapes: one image (``size*size`` values or ``size`` × ``size``) or a
    batch (``N × size*size``, ``N × size × size`` or ``N × 1 × size × size``), on
    the 0–255 scale of the training files.

    Raises:
        RequestError: for non-numeric values, another shape, no image, or values outside 0–255.
    """
    try:
        array = np.asarray(payload, dtype=np.float32)
    except (TypeError, ValueError):
        raise RequestError("images must be arrays of numbers (pixel values 0-255)") from None
    flat, square = (size * size,), (size, size)
    if array.shape in (flat, square):
        array = array.reshape((1,) + array.shape)
    if array.ndim < 2 or array.shape[1:] not in (flat, square, (1,) + square):
        raise RequestError(
            "expected one image (%d values or %dx%d) or a batch (Nx%d, Nx%dx%d or Nx1x%dx%d); got shape %s"
            % (size * size, size, size, size * size, size, size, size, size, array.shape)
        )
    if len(array) == 0:
        raise RequestError("the request holds no image")
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > MAX_VALUE:
        raise RequestError("pixel values must be finite and in 0-255 (multiply 0-1 images by 255)")
    return array.reshape(len(array), 1, size, size)
