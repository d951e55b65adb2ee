"""Which devices a workload computes on."""

__all__ = ["contexts", "DeviceError"]


class DeviceError(ValueError):
    """More GPUs were asked for than this host has."""


def contexts(num_gpus, available=None):
    """Chooses the MXNet contexts for a number of GPUs.

    Args:
        num_gpus (int): GPUs to use; 0 means the CPU.
        available (int): GPUs this host has; ``None`` asks MXNet.

    Returns:
        list[mxnet.Context]: ``[mx.gpu(0), ..., mx.gpu(num_gpus - 1)]`` or ``[mx.cpu()]``.

    Raises:
        DeviceError: if ``num_gpus`` is negative or more than are available.
    """
    import mxnet as mx

    num_gpus = int(num_gpus)
    if num_gpus < 0:
        raise DeviceError("num_gpus must be >= 0, got %d" % num_gpus)
    if num_gpus == 0:
        return [mx.cpu()]
    if available is None:
        available = mx.context.num_gpus()
    if num_gpus > available:
        raise DeviceError(
            "asked for %d GPU(s) but this host has %d: use num_gpus <= %d (0 trains on the CPU)%s"
            % (num_gpus, available, available, "" if available else "; this mxnet build or machine has no CUDA GPU")
        )
    return [mx.gpu(i) for i in range(num_gpus)]
