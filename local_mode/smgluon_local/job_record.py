"""What a local training job recorded about the code that trained a model, read back for serving it.

``smgluon train`` (``estimator.fit()`` on a :class:`~smgluon_local.ProcessSession`)
writes the model to ``<output>/<job name>/output/model.tar.gz``, which holds the
model files only, as on SageMaker. The job's own folder under the session root
keeps its hyperparameters, as the training toolkit read them, among them
``sagemaker_program`` (the entry point) and ``sagemaker_submit_directory`` (the
uploaded ``sourcedir.tar.gz`` in the local bucket, the entry point with its
dependencies). That is what ``estimator.deploy()`` serves the model with, and what
``smgluon serve`` uses for an archive without ``code/``.
"""

import json
import os

from smgluon_local.storage import uri_to_local_path

__all__ = ["TrainedBy", "trained_by"]


class TrainedBy:
    """The entry point that trained a model and the uploaded source it came in.

    Attributes:
        job_name (str): the training job.
        entry_point (str): e.g. ``mnist_mlp.py``.
        source_dir (str or None): the job's ``sourcedir.tar.gz`` as an ``s3://`` URI of the local
            bucket, None when it is no longer there.
    """

    def __init__(self, job_name, entry_point, source_dir):
        self.job_name, self.entry_point, self.source_dir = job_name, entry_point, source_dir


def _decoded(value):
    # SageMaker passes every hyperparameter JSON-encoded; its own keys are JSON strings.
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def trained_by(model_tar, root_dir, store):
    """The job that wrote ``model_tar``, from its record under the session root; None if there is none.

    Args:
        model_tar (str): a ``<job name>/output/model.tar.gz`` path.
        root_dir (str): the session root the job ran under.
        store (smgluon_local.storage.LocalS3): the session's local buckets.

    Returns:
        TrainedBy or None
    """
    output = os.path.dirname(os.path.abspath(model_tar))
    if os.path.basename(model_tar) != "model.tar.gz" or os.path.basename(output) != "output":
        return None
    job_name = os.path.basename(os.path.dirname(output))
    config = os.path.join(root_dir, "jobs", job_name, "algo-1", "input", "config", "hyperparameters.json")
    try:
        with open(config) as f:
            hyperparameters = json.load(f)
    except (OSError, ValueError):
        return None
    entry_point = _decoded(hyperparameters.get("sagemaker_program"))
    if not isinstance(entry_point, str) or not entry_point.endswith(".py"):
        return None
    source_dir = _decoded(hyperparameters.get("sagemaker_submit_directory"))
    try:
        local = uri_to_local_path(source_dir, store) if isinstance(source_dir, str) else None
    except ValueError:
        local = None
    if not (source_dir or "").startswith("s3://") or local is None or not os.path.isfile(local):
        source_dir = None
    return TrainedBy(job_name, entry_point, source_dir)
