"""smgluon.cpu_speed: the per-tensor SGD matches MXNet's SGD; flush_denormals flushes and restores."""

import platform
import threading

import mxnet as mx
import numpy as np
import pytest

from smgluon import cpu_speed

DENORMAL = np.float32(1e-40)  # below float32's smallest normal (1.18e-38)


def _denormal_product():
    return (np.array([DENORMAL], dtype=np.float32) * np.float32(1.0))[0]


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="MXCSR is x86-64 only")
def test_flush_denormals_flushes_here_and_in_threads_started_inside_then_restores():
    assert _denormal_product() != 0
    seen = {}
    with cpu_speed.flush_denormals() as active:
        assert active is True
        assert _denormal_product() == 0
        worker = threading.Thread(target=lambda: seen.update(value=_denormal_product()))
        worker.start()
        worker.join()
    assert seen["value"] == 0  # threads started inside the block inherit the setting
    assert _denormal_product() != 0  # and this thread gets its environment back


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("wd", [0.0, 1e-3])
def test_per_tensor_sgd_matches_mxnet_sgd(momentum, wd):
    rng = np.random.default_rng(0)
    shapes = [(4, 3), (3,), (2, 5)]
    weights0 = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(3)]
    results = []
    for optimizer in (
        mx.optimizer.SGD(learning_rate=0.1, momentum=momentum, wd=wd, rescale_grad=0.5),
        cpu_speed.PerTensorSGD(learning_rate=0.1, momentum=momentum, wd=wd, rescale_grad=0.5),
    ):
        updater = mx.optimizer.get_updater(optimizer)
        weights = [mx.nd.array(w) for w in weights0]
        for step in grads:
            for i, (w, g) in enumerate(zip(weights, step)):
                updater(i, mx.nd.array(g), w)
        results.append([w.asnumpy() for w in weights])
    for expected, got in zip(*results):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_create_optimizer_keeps_stock_classes_where_the_fast_path_does_not_apply():
    params = {"learning_rate": 0.1, "momentum": 0.9}
    assert type(cpu_speed.create_optimizer("sgd", params, [mx.cpu()], False)) is cpu_speed.PerTensorSGD
    assert type(cpu_speed.create_optimizer("sgd", params, [mx.cpu()], True)) is mx.optimizer.SGD
    assert type(cpu_speed.create_optimizer("sgd", params, [mx.gpu(0)], False)) is mx.optimizer.SGD
    assert type(cpu_speed.create_optimizer("nag", params, [mx.cpu()], False)) is mx.optimizer.NAG
