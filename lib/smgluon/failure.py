"""The failure file: SageMaker shows its content as the training job's FailureReason.

An entry point's ``__main__`` guard runs ``main`` through :func:`run`, so any
exception becomes a one-paragraph reason in ``<SM_OUTPUT_DIR>/failure`` and a
non-zero exit. (The sagemaker-training toolkit writes its own failure file only
when none exists, so the script's clearer reason wins.)
"""

import os
import sys
import traceback

from smgluon import files

__all__ = ["failure_reason", "write_failure", "run", "MAX_REASON"]

MAX_REASON = 1024  # SageMaker truncates FailureReason at 1024 characters

# Errors that describe bad input: their message is the whole story, no code location needed.
_USER_ERRORS = ("HyperparameterError", "ChannelError", "IdxError", "DeviceError", "DataError")


def failure_reason(exc):
    """Turns an exception into a one-paragraph reason.

    Args:
        exc (BaseException): the exception.

    Returns:
        str: ``"<Type>: <message>"``, with the innermost code location for
        unexpected errors, on one line and at most :data:`MAX_REASON` characters.
    """
    name = type(exc).__name__
    message = " ".join(str(exc).split()) or repr(exc)
    reason = "%s: %s" % (name, message)
    if name not in _USER_ERRORS and exc.__traceback__ is not None:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        reason += " (at %s:%d in %s)" % (os.path.basename(frame.filename), frame.lineno, frame.name)
    if len(reason) > MAX_REASON:
        reason = reason[: MAX_REASON - 3] + "..."
    return reason


def write_failure(output_dir, reason):
    """Writes the failure file atomically.

    Args:
        output_dir (str): SageMaker's output dir (``SM_OUTPUT_DIR``).
        reason (str): the reason.

    Returns:
        str: the file's path.
    """
    path = os.path.join(output_dir, "failure")
    files.write_text(path, reason + "\n")
    return path


def run(main, argv=None, output_dir=None):
    """Runs a script's ``main``, turning an exception into the failure file and exit status 1.

    Args:
        main (callable): the script's ``main(argv)``.
        argv (list[str]): passed to ``main``; None means ``sys.argv[1:]``.
        output_dir (str): where the failure file goes; None resolves ``SM_OUTPUT_DIR``
            (or the local fallback).

    Returns:
        whatever ``main`` returns, when it succeeds.
    """
    try:
        return main(argv)
    except SystemExit as e:
        if e.code in (0, None):
            raise
        exc = e
    except Exception as e:
        exc = e
    reason = failure_reason(exc)
    if output_dir is None:
        from smgluon.environment import training_env

        output_dir = training_env().output_dir
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    path = write_failure(output_dir, reason)
    sys.stderr.write("Training failed: %s\n(reason written to %s)\n" % (reason, path))
    sys.stderr.flush()
    sys.exit(1)
