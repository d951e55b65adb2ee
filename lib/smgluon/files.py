"""Files written whole or not at all: a temporary file beside the target, then one rename.

A reader (SageMaker reading the failure file, a tuning job reading metrics.json,
a resumed job listing checkpoints) sees the old file or the new one, never
half of one; a writer that fails leaves nothing behind. The temporary file is
created with the mode of any new file (0644 under umask 022), unlike
``tempfile.mkstemp``'s 0600, so the result is readable as the target would be.
"""

import contextlib
import json
import os
import secrets

__all__ = ["replacing", "write_text", "write_json"]


@contextlib.contextmanager
def replacing(path):
    """Yields a temporary path beside ``path``; moves it onto ``path`` when the block ends without an error.

    Args:
        path (str): the file to write (its directory is created if needed).

    Yields:
        str: where to write; removed if the block raises.
    """
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, ".tmp-%s-%s" % (secrets.token_hex(4), name))
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path, text):
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    with replacing(path) as tmp, open(tmp, "x", encoding="utf-8") as f:
        f.write(text)


def write_json(path, obj):
    """Writes ``obj`` as JSON (indented, NaN allowed as metrics may hold it) to ``path`` atomically."""
    with replacing(path) as tmp, open(tmp, "x", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, allow_nan=True)
