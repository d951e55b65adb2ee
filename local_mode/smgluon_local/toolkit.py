"""The first process of every local host: sagemaker-training's ``train`` command, as in the container.

The SageMaker MXNet container runs ``train`` (sagemaker-training), which loads
``sagemaker_mxnet_container.training`` and, with the parameter server enabled,
starts the scheduler (first host) and a server (every host) with
``DMLC_PS_ROOT_PORT`` taken from the ``_ps_port`` hyperparameter, default 8000.
On SageMaker every host is its own machine, so one fixed port is fine; local
jobs share 127.0.0.1, and jobs running side by side (a tuning job's trials)
would meet at port 8000. The runner therefore picks a free port per job and
passes it in ``SMGLUON_PS_PORT``; this module hands it to the container's own
role set-up, unless the user set ``_ps_port`` (then the container's reading of
it stands). For a ``local_gpu`` job with several hosts, each host sees one GPU
(``CUDA_VISIBLE_DEVICES``) and the runner passes ``SMGLUON_NUM_GPUS=1``, which
becomes the toolkit's GPU count (it counts ``nvidia-smi --list-gpus``, which
ignores ``CUDA_VISIBLE_DEVICES``). Two more differences keep the job apart
from the user's machine: before anything else, the process takes a private
``/opt/ml`` (:mod:`smgluon_local.optml`, when the runner sets
``SMGLUON_OPT_ML``), and the toolkit's ``pip install -r requirements.txt``
(and ``pip install .`` of a source dir with ``setup.py``) goes into an
overlay only the job sees (:mod:`smgluon_local.requirements`) instead of the
user's environment. Nothing else differs from the container's ``train``.

Run as ``python -c "from smgluon_local.toolkit import main; main()"``.
"""

import os
import signal
import sys
import threading
import time

from smgluon_local import optml, requirements

__all__ = ["PS_PORT_ENV", "NUM_GPUS_ENV", "RUNNER_PID_ENV", "main"]

PS_PORT_ENV = "SMGLUON_PS_PORT"
NUM_GPUS_ENV = "SMGLUON_NUM_GPUS"
RUNNER_PID_ENV = "SMGLUON_RUNNER_PID"
WATCH_S = 1.0


def _use_port(port):
    import sagemaker_mxnet_container.training as container_training

    role_env = container_training._env_vars_for_role

    def env_vars_for_role(role, hosts, ps_port, ps_verbose):
        return role_env(role, hosts, port, ps_verbose)

    container_training._env_vars_for_role = env_vars_for_role


def _watch_runner(runner_pid):
    def watch():
        while os.getppid() == runner_pid:
            time.sleep(WATCH_S)
        # The runner is gone (its children were re-parented): end this host's processes.
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="smgluon-runner-watch", daemon=True).start()


def _isolate_requirements(cache_root):
    from sagemaker_training import errors, modules

    def installer(error_class, package):
        def run_pip(argv, cwd):
            # Streamed to the log as the toolkit does; pip's ERROR lines (else its last lines) become
            # the failure's message, which the toolkit's own call leaves empty for pip's output.
            error = requirements.run_logged(argv, cwd)
            if error is not None:
                code, message = error
                raise error_class(argv, code, message)

        def install(path, capture_error=False):
            env_dir = requirements.install(path, cache_root, run_pip, package=package)
            os.environ.update(requirements.job_paths(env_dir, os.environ))
            sys.path.insert(0, requirements.site_packages(env_dir))

        return install

    modules.install_requirements = installer(errors.InstallRequirementsError, package=False)
    # A source dir with setup.py: the container runs `pip install . -r requirements.txt`.
    modules.install = installer(errors.InstallModuleError, package=True)


def _enter_opt_ml():
    host_dir = os.environ.pop(optml.OPT_ML_ENV, None)
    if host_dir:
        reason = optml.enter(host_dir)
        if reason:
            print(
                "smgluon_local: no private %s for this host (%s); use the SM_* paths" % (optml.OPT_ML, reason),
                flush=True,
            )


def main():
    """Start the container's training toolkit (``train``), with the job's parameter-server port."""
    # First, while this process has a single thread (a new user namespace requires it).
    _enter_opt_ml()
    runner = os.environ.get(RUNNER_PID_ENV)
    if runner and int(runner) == os.getppid():
        _watch_runner(int(runner))
    port = os.environ.get(PS_PORT_ENV)
    if port:
        _use_port(port)
    gpus = os.environ.get(NUM_GPUS_ENV)
    if gpus:
        import sagemaker_training.environment as toolkit_environment

        toolkit_environment.num_gpus = lambda: int(gpus)
    cache_root = os.environ.get(requirements.CACHE_ENV)
    if cache_root:
        _isolate_requirements(cache_root)
    from sagemaker_training.cli.train import main as train

    train()
