"""smgluon.training: the kvstore and trainer every workload creates the same way."""

import mxnet as mx
import pytest
from mxnet import gluon

from smgluon import cpu_speed, distributed, kvstore, training
from smgluon.hyperparameters import Hyperparameters

HPS = Hyperparameters(
    [
        kvstore.HYPERPARAMETER,
    ]
)


def _params():
    net = gluon.nn.Dense(2, in_units=3)
    net.initialize()
    return net.collect_params()


def test_one_host_gets_the_kvstore_type_name_several_need_the_parameter_server(monkeypatch):
    monkeypatch.delenv("DMLC_ROLE", raising=False)
    assert training.create_kvstore(["algo-1"], 0) == "local"
    assert training.create_kvstore(["algo-1"], 0, HPS.parse_dict({})["kvstore"]) == "local"
    assert not training.is_distributed("local")
    with pytest.raises(distributed.DistributedError, match="parameter_server"):
        training.create_kvstore(["algo-1", "algo-2"], 0, "auto")


def test_trainer_takes_the_optimizer_hyperparameters():
    hps = {"optimizer": "sgd", "learning_rate": 0.1, "weight_decay": 1e-4, "momentum": 0.9}
    trainer = training.create_trainer(_params(), hps, [mx.cpu()], "local")
    optimizer = trainer._optimizer
    assert isinstance(optimizer, cpu_speed.PerTensorSGD)  # the faster kernel on CPU
    assert (optimizer.learning_rate, optimizer.wd, optimizer.momentum) == (0.1, 1e-4, 0.9)

    schedule = mx.lr_scheduler.FactorScheduler(step=10, factor=0.5, base_lr=0.01)
    hps = dict(hps, optimizer="adam", learning_rate=0.01)
    trainer = training.create_trainer(_params(), hps, [mx.cpu()], "local", lr_scheduler=schedule)
    optimizer = trainer._optimizer
    assert isinstance(optimizer, mx.optimizer.Adam) and optimizer.lr_scheduler is schedule
    assert not hasattr(optimizer, "momentum")  # momentum goes to sgd and nag only
