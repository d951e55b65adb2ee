"""smgluon_local: host-side code (docker-free SageMaker local mode, command line).

Runs on the user's machine, never inside the containers; it may import the
SageMaker SDK and toolkits. ``lib/smgluon`` never imports it.

The one public entry point for notebooks and tests is :class:`ProcessSession`,
a drop-in ``sagemaker_session`` for ``instance_type="local"`` estimators and
models that runs the SageMaker MXNet container toolkits as local processes.
A failed training or transform job raises :class:`JobFailedError`.
"""

from smgluon_local import sdk_logging as _sdk_logging

__all__ = ["ProcessSession", "JobFailedError"]

# Before anything here imports the SDK: `import sagemaker` already logs config notices
# (see sdk_logging; SMGLUON_VERBOSE=1 keeps them).
_sdk_logging.quiet()


def __getattr__(name):
    # Import lazily: `import smgluon_local` stays cheap and the SDK loads only when needed.
    if name == "ProcessSession":
        from smgluon_local.session import ProcessSession

        return ProcessSession
    if name == "JobFailedError":
        from smgluon_local.job_status import JobFailedError

        return JobFailedError
    raise AttributeError("module 'smgluon_local' has no attribute %r" % name)
