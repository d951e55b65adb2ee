"""Which kvstore synchronises gradients, and which host saves the model."""

from smgluon.hyperparameters import Hyperparameter

__all__ = ["choose_kvstore", "scheduler_host", "is_saving_host", "KVSTORE_TYPES", "HYPERPARAMETER"]

KVSTORE_TYPES = ("local", "device", "dist_sync", "dist_device_sync", "dist_async", "nccl")

# Every workload's ``kvstore`` hyperparameter: put it in its declaration as it is.
HYPERPARAMETER = Hyperparameter(
    "kvstore", str, "auto", "kvstore type (auto: chosen from hosts and GPUs)", choices=["auto"] + list(KVSTORE_TYPES)
)


def choose_kvstore(num_hosts, num_gpus, override=None):
    """Chooses the kvstore type as the SageMaker MXNet examples do.

    ============  =========  ====================
    hosts         GPUs       kvstore
    ============  =========  ====================
    1             0          ``local``
    1             >= 1       ``device``
    >= 2          0          ``dist_sync``
    >= 2          >= 1       ``dist_device_sync``
    ============  =========  ====================

    Args:
        num_hosts (int): hosts in the job.
        num_gpus (int): GPUs per host.
        override (str): a kvstore type chosen by the user (hyperparameter
            ``kvstore``); ``None`` or ``"auto"`` chooses from the table.

    Returns:
        str: the kvstore type.

    Raises:
        ValueError: for an unknown override, or a local one on several hosts.
    """
    if num_hosts < 1 or num_gpus < 0:
        raise ValueError("need num_hosts >= 1 and num_gpus >= 0, got %d and %d" % (num_hosts, num_gpus))
    if override not in (None, "", "auto"):
        if override not in KVSTORE_TYPES:
            raise ValueError("unknown kvstore %r: use one of auto, %s" % (override, ", ".join(KVSTORE_TYPES)))
        if num_hosts > 1 and not override.startswith("dist_"):
            raise ValueError(
                "kvstore %r cannot synchronise %d hosts: use dist_sync, dist_device_sync or dist_async"
                % (override, num_hosts)
            )
        return override
    if num_hosts == 1:
        return "device" if num_gpus > 0 else "local"
    return "dist_device_sync" if num_gpus > 0 else "dist_sync"


def scheduler_host(hosts):
    """The host that runs the parameter-server scheduler: the first one, as in the MXNet container.

    Args:
        hosts (list[str]): the job's hosts in SageMaker's order (``SM_HOSTS``).

    Returns:
        str
    """
    if not hosts:
        raise ValueError("no hosts given")
    return hosts[0]


def is_saving_host(hosts, current_host):
    """Tells whether this host writes the model: only the scheduler host does.

    Args:
        hosts (list[str]): the job's hosts.
        current_host (str): this host.

    Returns:
        bool
    """
    return len(hosts) == 1 or current_host == scheduler_host(hosts)
