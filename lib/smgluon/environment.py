"""The training environment: SageMaker's SM_* variables in one place, with local fallbacks.

Inside a SageMaker training container the toolkit sets ``SM_MODEL_DIR``,
``SM_CHANNEL_<NAME>``, ``SM_HOSTS`` and friends. Outside one (a notebook, a
laptop, a test) none of them exist, so every value falls back to a path under a
local root that mirrors ``/opt/ml``: ``$SMGLUON_OPT_ML``, else
``./opt_ml`` under the current directory. Nothing here is read at import time.
"""

import json
import os

__all__ = ["TrainingEnv", "training_env", "DEFAULT_CHECKPOINT_DIR"]

DEFAULT_CHECKPOINT_DIR = "/opt/ml/checkpoints"


class TrainingEnv:
    """Where a training run reads and writes, and on which hosts it runs.

    Attributes:
        model_dir (str): where the model is saved (packed into model.tar.gz).
        output_dir (str): where the failure file goes.
        output_data_dir (str): other outputs (metrics.json; packed into output.tar.gz).
        channels (dict[str, str]): channel name → directory.
        hosts (list[str]): every host of the job, in SageMaker's order.
        current_host (str): this host.
        num_gpus (int): GPUs on this host.
        checkpoint_dir (str or None): where checkpoints go, None when checkpointing is off.
        hyperparameters_json (str or None): ``SM_HPS`` as given, if any.
    """

    def __init__(
        self,
        model_dir,
        output_dir,
        output_data_dir,
        channels,
        hosts,
        current_host,
        num_gpus,
        checkpoint_dir=None,
        hyperparameters_json=None,
    ):
        self.model_dir = model_dir
        self.output_dir = output_dir
        self.output_data_dir = output_data_dir
        self.channels = dict(channels)
        self.hosts = list(hosts)
        self.current_host = current_host
        self.num_gpus = int(num_gpus)
        self.checkpoint_dir = checkpoint_dir
        self.hyperparameters_json = hyperparameters_json

    @property
    def is_sagemaker(self):
        """bool: True when the values came from a SageMaker toolkit rather than fallbacks."""
        return self.hyperparameters_json is not None

    def __repr__(self):
        return "TrainingEnv(%s)" % ", ".join("%s=%r" % kv for kv in sorted(vars(self).items()))


def _local_root(environ):
    return environ.get("SMGLUON_OPT_ML") or os.path.join(os.getcwd(), "opt_ml")


def _channels(environ, root):
    channels = {}
    names = environ.get("SM_CHANNELS")
    if names:
        for name in json.loads(names):
            path = environ.get("SM_CHANNEL_%s" % name.upper())
            channels[name] = path or os.path.join(root, "input", "data", name)
    for key, value in environ.items():
        if key.startswith("SM_CHANNEL_") and key != "SM_CHANNELS":
            channels.setdefault(key[len("SM_CHANNEL_") :].lower(), value)
    if not channels:
        data_dir = os.path.join(root, "input", "data")
        if os.path.isdir(data_dir):
            for name in sorted(os.listdir(data_dir)):
                if os.path.isdir(os.path.join(data_dir, name)):
                    channels[name] = os.path.join(data_dir, name)
    return channels


def _num_gpus(environ):
    if "SM_NUM_GPUS" in environ:
        return int(environ["SM_NUM_GPUS"])
    return 0  # never probe CUDA implicitly outside SageMaker: ask with num_gpus=N


def training_env(environ=None):
    """Resolves the training environment from SageMaker's variables or local fallbacks.

    Args:
        environ (dict): the variables to read; ``None`` means ``os.environ``.

    Returns:
        TrainingEnv
    """
    environ = os.environ if environ is None else environ
    root = _local_root(environ)
    output_dir = environ.get("SM_OUTPUT_DIR") or os.path.join(root, "output")
    hosts = json.loads(environ["SM_HOSTS"]) if environ.get("SM_HOSTS") else ["algo-1"]
    current_host = environ.get("SM_CURRENT_HOST") or hosts[0]
    checkpoint_dir = environ.get("SMGLUON_CHECKPOINT_DIR")
    if checkpoint_dir is None and os.path.isdir(DEFAULT_CHECKPOINT_DIR):
        # SageMaker creates /opt/ml/checkpoints only when checkpoint_s3_uri is configured.
        checkpoint_dir = DEFAULT_CHECKPOINT_DIR
    return TrainingEnv(
        model_dir=environ.get("SM_MODEL_DIR") or os.path.join(root, "model"),
        output_dir=output_dir,
        output_data_dir=environ.get("SM_OUTPUT_DATA_DIR") or os.path.join(output_dir, "data"),
        channels=_channels(environ, root),
        hosts=hosts,
        current_host=current_host,
        num_gpus=_num_gpus(environ),
        checkpoint_dir=checkpoint_dir or None,
        hyperparameters_json=environ.get("SM_HPS"),
    )
