"""Keeps the SageMaker SDK's routine notices out of a local run's output, unless asked for.

A local run printed, among its own progress lines, the SDK's
``sagemaker.config INFO - Not applying SDK defaults from location: ...`` (at
``import sagemaker``, once per config file), its five-line telemetry notice
(before every call it would report, even with telemetry opted out, as the local
session always is), a line saying that opt-out was applied, a note that the
image URI was derived, and ``Repacking model artifact ...`` at every deploy
(replaced by a short progress line of ours: packaging can take a while).
:func:`quiet` drops exactly those records from the SDK's loggers; warnings,
errors and every other line pass. ``quiet(verbose=True)``, ``smgluon --verbose``,
``ProcessSession(verbose=True)`` or ``SMGLUON_VERBOSE=1`` in the environment
let them through again.

The filters sit on the loggers the SDK logs to, which may not exist yet:
``logging.getLogger`` creates them, and the SDK's later ``getLogger`` gets the
same objects, so calling :func:`quiet` before ``import sagemaker`` silences the
import-time lines too. Nothing here imports the SDK.
"""

import logging
import os
import sys

__all__ = ["VERBOSE_ENV", "SdkNoiseFilter", "quiet", "verbose_requested"]

VERBOSE_ENV = "SMGLUON_VERBOSE"

# logger name → the beginnings of the routine INFO messages it logs.
NOISE = {
    "sagemaker.config": (
        "Not applying SDK defaults from location",
        "Fetched defaults config from location",
        # The opt-out the local session itself puts into the config, reported at every use.
        "Applied value from config key = SageMaker.PythonSDK.Modules.TelemetryOptOut",
    ),
    "sagemaker.image_uris": ("image_uri is not presented",),
    "sagemaker.telemetry.telemetry_logging": ("SageMaker Python SDK will collect telemetry",),
    "sagemaker": ("Repacking model artifact",),  # sagemaker/model.py logs to the package logger
}


# A long step whose notice is dropped still gets a progress line: ours, short, on stderr.
PROGRESS = {"Repacking model artifact": "smgluon: packaging the model and its code into one model.tar.gz ..."}


class SdkNoiseFilter(logging.Filter):
    """Drops INFO (and lower) records whose message starts with one of ``prefixes``.

    For a message in :data:`PROGRESS`, prints the short progress line instead.
    """

    def __init__(self, prefixes):
        super().__init__()
        self.prefixes = tuple(prefixes)

    def filter(self, record):
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        if not message.startswith(self.prefixes):
            return True
        progress = next((line for start, line in PROGRESS.items() if message.startswith(start)), None)
        if progress:
            print(progress, file=sys.stderr, flush=True)
        return False


def verbose_requested(environ=None):
    """Whether ``$SMGLUON_VERBOSE`` asks for the SDK's notices (1, true or yes)."""
    value = (os.environ if environ is None else environ).get(VERBOSE_ENV, "")
    return value.strip().lower() in ("1", "true", "yes")


def quiet(verbose=None):
    """Drops the SDK's routine notices (``verbose=False``) or lets them through again (``verbose=True``).

    Args:
        verbose (bool): None: as ``$SMGLUON_VERBOSE`` says (quiet when unset).

    Returns:
        bool: whether the notices are shown now.
    """
    if verbose is None:
        verbose = verbose_requested()
    for name, prefixes in NOISE.items():
        logger = logging.getLogger(name)
        for existing in [f for f in logger.filters if isinstance(f, SdkNoiseFilter)]:
            logger.removeFilter(existing)
        if not verbose:
            logger.addFilter(SdkNoiseFilter(prefixes))
    return verbose
