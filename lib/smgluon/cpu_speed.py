"""Two CPU training speed fixes for MXNet 1.9, found on the MNIST MLP (bench/mlp_speed.py;
the figures: bench/results/findings.md).

* :func:`flush_denormals`: SGD momentum of a weight whose gradient stays zero
  (dead ReLU units, always-blank pixels) decays by ``momentum`` every step into
  denormal floats, and x86 arithmetic on denormals takes a slow microcode
  assist, so epochs grow slower as training goes on. Setting
  flush-to-zero and denormals-are-zero (what ``torch.set_flush_denormal`` does)
  makes those values 0 instead. MXNet has no switch for it, but its engine
  threads start lazily at the first operation and inherit the floating-point
  environment of the thread that starts them, so setting it around training
  reaches them.
* :func:`create_optimizer`: MXNet 1.9's SGD sends every dense update through
  ``multi_sgd_mom_update`` (even one tensor at a time), which on CPU is slower
  per element than ``sgd_mom_update``. The optimizer returned here
  uses the per-tensor kernels (same formula) on CPU.
"""

import contextlib
import ctypes
import ctypes.util
import platform

import mxnet as mx

__all__ = ["flush_denormals", "PerTensorSGD", "create_optimizer"]

_FTZ_DAZ = 0x8040  # MXCSR bit 15 flush-to-zero, bit 6 denormals-are-zero
_MXCSR_OFFSET = 28  # glibc x86-64 fenv_t: the 28-byte x87 environment, then mxcsr
_FENV_SIZE = 32


@contextlib.contextmanager
def flush_denormals():
    """Sets flush-to-zero/denormals-are-zero in this thread (and threads it starts) for the block.

    Threads started inside the block (MXNet's engine workers and their OpenMP
    threads, on the first operation of the process) keep the setting; this
    thread gets its previous floating-point environment back on exit. Does
    nothing (yields False) off x86-64 Linux/glibc.
    """
    libm = None
    if platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64"):
        try:
            libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        except OSError:
            libm = None
    saved = ctypes.create_string_buffer(_FENV_SIZE)
    if libm is None or libm.fegetenv(saved) != 0:
        yield False
        return
    env = ctypes.create_string_buffer(saved.raw, _FENV_SIZE)
    mxcsr = int.from_bytes(env.raw[_MXCSR_OFFSET : _MXCSR_OFFSET + 4], "little") | _FTZ_DAZ
    env[_MXCSR_OFFSET : _MXCSR_OFFSET + 4] = mxcsr.to_bytes(4, "little")
    libm.fesetenv(env)
    try:
        yield True
    finally:
        libm.fesetenv(saved)


class PerTensorSGD(mx.optimizer.SGD):
    """SGD (with momentum) that updates dense tensors one by one with ``sgd_mom_update``/``sgd_update``.

    Same formula as MXNet's SGD, same results; only the kernel differs.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.aggregate_num = 0  # the Updater then hands over one tensor at a time

    def _update_impl(self, indices, weights, grads, states, multi_precision=False):
        if (
            multi_precision
            or isinstance(indices, (tuple, list))
            or weights.stype != "default"
            or grads.stype != "default"
        ):
            return super()._update_impl(indices, weights, grads, states, multi_precision)
        self._update_count(indices)
        kwargs = {"lr": self._get_lr(indices), "wd": self._get_wd(indices), "rescale_grad": self.rescale_grad}
        if self.clip_gradient:
            kwargs["clip_gradient"] = self.clip_gradient
        if states is not None:
            mx.nd.sgd_mom_update(weights, grads, states, out=weights, momentum=self.momentum, **kwargs)
        else:
            mx.nd.sgd_update(weights, grads, out=weights, **kwargs)


def create_optimizer(name, params, ctx, distributed):
    """An optimizer for ``gluon.Trainer``: :class:`PerTensorSGD` for ``sgd`` on CPU, else ``name``.

    A distributed kvstore pickles the optimizer to its servers, so it keeps the
    stock class there.
    """
    if name == "sgd" and not distributed and all(c.device_type == "cpu" for c in ctx):
        return PerTensorSGD(**params)
    return mx.optimizer.create(name, **params)
