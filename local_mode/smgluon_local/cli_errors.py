"""How the ``smgluon`` command line reports a failure: a message and an exit status, never a traceback.

* data that cannot be had (no local copy, no download): one paragraph naming the
  ways to get it, exit status 2;
* any other error a user can cause (a bad path, a bad option value, a busy port, a
  failed job, ...): ``smgluon: error: <what and how to fix it>``, exit status 1;
* anything else: the same line with the exception's type, and a pointer to
  ``--debug``, which shows the traceback instead.
"""

import re
import sys

from smgluon_local.datasets import MIRROR_ENV, DataUnavailableError

__all__ = ["DATA_UNAVAILABLE_STATUS", "DEBIAN_DATA_PACKAGES", "data_unavailable_message", "report"]

DATA_UNAVAILABLE_STATUS = 2
# Data sets Debian/Ubuntu package (installed under /usr/share/datasets/, where fetch() looks).
DEBIAN_DATA_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}


def data_unavailable_message(error):
    """One paragraph: why the data set could not be had, and every way to get it.

    Args:
        error (smgluon_local.datasets.DataUnavailableError): with ``dataset`` set.
    """
    # One failure per URL, one per line after "could not be fetched:": joined into the paragraph.
    reason = re.sub(r":\s*\n\s*", ": ", str(error).strip(), count=1)
    reason = re.sub(r"\s*\n\s*", "; ", reason).rstrip(".")
    ways = []
    package = DEBIAN_DATA_PACKAGES.get(error.dataset)
    if package:
        ways.append(
            "install the Debian package (`sudo apt-get install -y %s`; `make setup` does it when run as root)" % package
        )
    ways.append(
        "copy the files into a folder and pass `--mirror DIR` to `smgluon data fetch %s`, or set %s=DIR"
        % (error.dataset, MIRROR_ENV)
    )
    ways.append("connect this machine to the internet and run the command again")
    count = {2: "two", 3: "three"}[len(ways)]
    listed = "; ".join("(%d) %s" % (n, way) for n, way in enumerate(ways, 1))
    return "smgluon: error: %s. The %s data is not on this machine; %s ways to get it: %s." % (
        reason,
        error.dataset,
        count,
        listed,
    )


def report(error, user_errors, stream=None):
    """Prints one message for ``error`` and returns the exit status.

    Args:
        error (Exception): what the command raised.
        user_errors (tuple): exception types whose message alone says what went wrong.
        stream (file): where the message goes (default: stderr).

    Returns:
        int: 2 for data that cannot be had, else 1.
    """
    stream = stream or sys.stderr
    if isinstance(error, DataUnavailableError):
        print(data_unavailable_message(error), file=stream)
        return DATA_UNAVAILABLE_STATUS
    message = str(error).strip() or type(error).__name__
    if isinstance(error, user_errors):
        print("smgluon: error: %s" % message, file=stream)
    else:
        print(
            "smgluon: error: %s: %s (run again with --debug for the traceback)" % (type(error).__name__, message),
            file=stream,
        )
    return 1
