import mxnet as mx
import pytest

from smgluon.context import DeviceError, contexts
from smgluon.kvstore import choose_kvstore, is_saving_host, scheduler_host


@pytest.mark.parametrize(
    "hosts, gpus, override, expected",
    [
        (1, 0, None, "local"),
        (1, 1, None, "device"),
        (1, 4, None, "device"),
        (2, 0, None, "dist_sync"),
        (4, 0, None, "dist_sync"),
        (2, 1, None, "dist_device_sync"),
        (8, 8, None, "dist_device_sync"),
        (1, 0, "auto", "local"),
        (1, 0, "device", "device"),
        (1, 2, "local", "local"),
        (2, 0, "dist_async", "dist_async"),
        (2, 1, "dist_sync", "dist_sync"),
        (1, 0, "dist_sync", "dist_sync"),
    ],
)
def test_kvstore_table(hosts, gpus, override, expected):
    assert choose_kvstore(hosts, gpus, override) == expected


@pytest.mark.parametrize(
    "hosts, gpus, override, fragment",
    [
        (2, 0, "local", "cannot synchronise 2 hosts"),
        (1, 0, "fast", "unknown kvstore 'fast'"),
        (0, 0, None, "num_hosts >= 1"),
    ],
)
def test_kvstore_errors(hosts, gpus, override, fragment):
    with pytest.raises(ValueError, match=fragment):
        choose_kvstore(hosts, gpus, override)


@pytest.mark.parametrize(
    "hosts, current, saves",
    [
        (["local"], "local", True),
        (["algo-1"], "algo-1", True),
        (["algo-1", "algo-2"], "algo-1", True),
        (["algo-1", "algo-2"], "algo-2", False),
        (["algo-2", "algo-1"], "algo-2", True),  # SageMaker's order, not sorted: as the MXNet container
    ],
)
def test_saving_host(hosts, current, saves):
    assert is_saving_host(hosts, current) is saves
    assert scheduler_host(hosts) == hosts[0]


@pytest.mark.parametrize(
    "gpus, available, expected",
    [(0, 0, [mx.cpu()]), (0, 4, [mx.cpu()]), (1, 1, [mx.gpu(0)]), (2, 4, [mx.gpu(0), mx.gpu(1)])],
)
def test_contexts(gpus, available, expected):
    assert contexts(gpus, available=available) == expected


def test_too_many_gpus_is_a_clear_error():
    with pytest.raises(DeviceError, match=r"asked for 2 GPU\(s\) but this host has 1: use num_gpus <= 1"):
        contexts(2, available=1)
    with pytest.raises(DeviceError, match="has 0"):
        contexts(1)  # this CPU-only build of mxnet reports no GPU
    with pytest.raises(DeviceError, match=">= 0"):
        contexts(-1)
