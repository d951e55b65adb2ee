"""Finding a workload's data in its input channels.

Users lay their data out in two ways, and both work:

* one ``training`` channel holding the train and the test files (the workshop:
  ``train({"training": "data/train/"}, ...)``);
* a ``train`` channel and a ``test`` channel (the AWS examples; ``validation``
  is accepted for ``test``).

Within a channel, image data are the MNIST file names
(``train-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``, ...), or any
one ``*images*`` and one ``*labels*`` file when the channel holds just one pair.
"""

import os
import re

__all__ = ["ChannelError", "train_test_dirs", "find_idx_pair", "load_idx_channels"]

_PREFIXES = {"train": ("train",), "test": ("t10k", "test")}


class ChannelError(ValueError):
    """The expected data is not in the input channels."""


def train_test_dirs(channels, require_test=False):
    """Resolves the directories holding the training and the test data.

    Args:
        channels (dict[str, str]): channel name → directory.
        require_test (bool): fail when there is no test data at all.

    Returns:
        tuple(str, str or None): the train directory and the test directory
        (the same one for a single ``training`` channel; None if absent).

    Raises:
        ChannelError: naming the channels given and the layouts accepted.
    """
    channels = {k: v for k, v in (channels or {}).items() if v}
    if "train" in channels:
        train = channels["train"]
        test = channels.get("test") or channels.get("validation") or channels.get("training")
    elif "training" in channels:
        train = test = channels["training"]
    else:
        raise ChannelError(
            "no training data: channels given: %s. Give a 'train' channel (and a 'test' channel), "
            "or one 'training' channel holding both train and test files." % (", ".join(sorted(channels)) or "none")
        )
    for name, path in (("train", train), ("test", test)):
        if path is not None and not os.path.isdir(path):
            raise ChannelError("the %s data directory %s does not exist" % (name, path))
    if require_test and test is None:
        raise ChannelError("no test data: add a 'test' channel or put the test files in the 'training' channel")
    return train, test


def _is_idx(name, kind):
    return re.search(r"%s.*idx\d-ubyte(\.gz)?$" % kind, name) is not None


def find_idx_pair(directory, split):
    """Finds the images and labels IDX files of one split in a directory.

    Args:
        directory (str): a channel directory.
        split (str): ``"train"`` or ``"test"``.

    Returns:
        tuple(str, str): the images file and the labels file.

    Raises:
        ChannelError: naming the directory, what was looked for and what is there.
    """
    try:
        names = sorted(n for n in os.listdir(directory) if not n.startswith("."))
    except FileNotFoundError:
        raise ChannelError("data directory %s does not exist" % directory) from None
    images = [n for n in names if _is_idx(n, "images")]
    labels = [n for n in names if _is_idx(n, "labels")]
    for prefix in _PREFIXES[split]:
        img = [n for n in images if n.startswith(prefix + "-")]
        lab = [n for n in labels if n.startswith(prefix + "-")]
        if img and lab:
            return os.path.join(directory, img[0]), os.path.join(directory, lab[0])
    if len(images) == 1 and len(labels) == 1:
        return os.path.join(directory, images[0]), os.path.join(directory, labels[0])
    raise ChannelError(
        "no %s images/labels IDX files in %s (looked for %s-images-idx3-ubyte[.gz] and "
        "%s-labels-idx1-ubyte[.gz]); it holds: %s"
        % (split, directory, _PREFIXES[split][0], _PREFIXES[split][0], ", ".join(names[:20]) or "nothing")
    )


def load_idx_channels(channels, num_classes=10):
    """Loads the train and test image data of an image workload from its channels.

    Args:
        channels (dict[str, str]): channel name → directory.
        num_classes (int): labels must lie in ``0..num_classes-1``.

    Returns:
        tuple: ``((train_images, train_labels), (test_images, test_labels))``;
        the test pair is None when the channels hold no separate test files.

    Raises:
        ChannelError, smgluon.idx.IdxError: naming what is missing or corrupt.
    """
    from smgluon.idx import read_images_labels

    train_dir, test_dir = train_test_dirs(channels)
    train_files = find_idx_pair(train_dir, "train")
    test = None
    if test_dir is not None:
        try:
            test_files = find_idx_pair(test_dir, "test")
        except ChannelError:
            if test_dir != train_dir:
                raise
            test_files = None
        if test_files is not None and test_files != train_files:
            test = read_images_labels(*test_files, num_classes=num_classes)
    return read_images_labels(*train_files, num_classes=num_classes), test
