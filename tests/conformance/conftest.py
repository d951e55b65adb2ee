"""Fixtures for the conformance suite.

This folder is a package (its ``__init__.py``) so that this file is imported as
``conformance.conftest`` and does not shadow ``tests/conftest.py``, which the
other test modules import as ``conftest``.
"""

import pytest

from conformance.common import N_TEST, N_TRAIN, require_fixtures, write_mnist_channel


@pytest.fixture(scope="session")
def mnist_channels(tmp_path_factory):
    """``{"train": dir, "test": dir}``: disjoint slices of the 10k MNIST test images."""
    root = tmp_path_factory.mktemp("conformance-mnist")
    return {"train": write_mnist_channel(str(root / "train"), 0, N_TRAIN),
            "test": write_mnist_channel(str(root / "test"), N_TRAIN, N_TRAIN + N_TEST)}


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A ProcessSession with its own root; endpoints left running by a failed test are stopped."""
    from smgluon_local import ProcessSession
    from smgluon_local.client import ProcessSagemakerClient

    require_fixtures()
    sess = ProcessSession(root_dir=str(tmp_path_factory.mktemp("conformance-root")), log_stream=False)
    yield sess
    for name in list(ProcessSagemakerClient._endpoints):
        try:
            sess.sagemaker_client.delete_endpoint(EndpointName=name)
        except Exception:  # already gone
            pass


@pytest.fixture
def client_spy(monkeypatch):
    """Names of the botocore clients created from now on (boto3 resources create one too).

    The SDK's import makes a JumpStart default session with S3 clients of its own; that
    happens before the spy, as it does before any user code runs.
    """
    import botocore.session

    import smgluon_local.session  # noqa: F401 (imports the SDK)

    created = []
    create_client = botocore.session.Session.create_client

    def spy(self, service_name, *args, **kwargs):
        created.append(service_name)
        return create_client(self, service_name, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "create_client", spy)
    return created
