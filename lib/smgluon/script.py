"""Script-mode glue every entry point shares: path options, the environment, train, save on the first host."""

import logging

from smgluon import kvstore
from smgluon.environment import training_env

__all__ = ["parse_args", "train_and_save"]


def parse_args(hyperparameters, argv=None, prog=None, channels=("train", "test", "training")):
    """Parses script-mode arguments: the hyperparameters plus optional channel and model paths.

    Each channel gets ``--<name>-dir`` / ``--<name>_dir``, overriding ``SM_CHANNEL_<NAME>``;
    ``--model-dir`` overrides ``SM_MODEL_DIR``.

    Args:
        hyperparameters (smgluon.hyperparameters.Hyperparameters): the workload's declaration.
        argv (list[str]): the arguments; None means ``sys.argv[1:]``.
        prog (str): the program name for ``--help``.
        channels (tuple[str]): the channel names the workload reads.

    Returns:
        tuple(dict, argparse.Namespace): the typed hyperparameters and the paths.
    """
    parser = hyperparameters.parser(prog=prog)
    paths = parser.add_argument_group("paths (default: SageMaker's SM_* variables, else ./opt_ml)")
    for name in channels:
        paths.add_argument("--%s-dir" % name, "--%s_dir" % name, dest=name, help="the %r channel's directory" % name)
    paths.add_argument("--model-dir", "--model_dir", dest="model_dir", help="where the model is saved")
    hps, namespace = hyperparameters.parse_args(argv, parser)
    namespace.channels = tuple(channels)
    return hps, namespace


def train_and_save(train, save, hps, paths):
    """Runs a workload in script mode: resolves the environment, trains, and saves on the first host.

    Args:
        train (callable): the workload's legacy ``train(channel_input_dirs, hyperparameters, hosts,
            num_gpus, **kwargs)`` hook.
        save (callable): its ``save(net, model_dir)`` hook.
        hps (dict): parsed hyperparameters.
        paths (argparse.Namespace): from :func:`parse_args`.

    Returns:
        whatever ``train`` returns.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    env = training_env()
    channel_dirs = dict(env.channels)
    channel_dirs.update({k: getattr(paths, k) for k in paths.channels if getattr(paths, k)})
    net = train(
        channel_dirs,
        hps,
        env.hosts,
        env.num_gpus,
        current_host=env.current_host,
        output_data_dir=env.output_data_dir,
        checkpoint_dir=env.checkpoint_dir,
    )
    if kvstore.is_saving_host(env.hosts, env.current_host):
        save(net, paths.model_dir or env.model_dir)
    return net
