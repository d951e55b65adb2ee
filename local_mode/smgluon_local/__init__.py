"""smgluon_local: host-side code (docker-free SageMaker local mode, command line).

Runs on the user's machine, never inside the containers; it may import the
SageMaker SDK and toolkits. ``lib/smgluon`` never imports it.

The one public entry point for notebooks and tests is :class:`ProcessSession`,
a drop-in ``sagemaker_session`` for ``instance_type="local"`` estimators and
models that runs the SageMaker MXNet container toolkits as local processes.
"""

__all__ = ["ProcessSession"]


def __getattr__(name):
    # Import lazily: `import smgluon_local` stays cheap and the SDK loads only when needed.
    if name == "ProcessSession":
        from smgluon_local.session import ProcessSession

        return ProcessSession
    raise AttributeError("module 'smgluon_local' has no attribute %r" % name)
