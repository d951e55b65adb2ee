"""Hints added to a failed training job's FailureReason where the cause is a known set-up mistake.

A script that uses a distributed kvstore (``dist_sync``, as the SDK's own
``mnist.py`` does) on several hosts needs MXNet's parameter server, which the
container starts only with ``distribution={"parameter_server": {"enabled":
True}}``. Without it no ``DMLC_*`` variables are set and MXNet fails (ps-lite:
``Check failed: ... DMLC_...``), on SageMaker as here; the reason then says
what to pass.
"""

import re

__all__ = ["PS_HINT", "with_hint"]

PS_ENABLED_PARAM = "sagemaker_parameter_server_enabled"
PS_HINT = (
    "This job has %d hosts but no parameter server, so the distributed kvstore found no DMLC_* "
    "variables: to train on several hosts, pass "
    'distribution={"parameter_server": {"enabled": True}} to the estimator'
)
_DMLC = re.compile(r"\bDMLC_[A-Z_]+")
_TAIL_BYTES = 64 * 1024


def _ps_enabled(hyperparameters):
    return str(hyperparameters.get(PS_ENABLED_PARAM, "false")).strip('"').lower() == "true"


def _log_tail(log_path):
    try:
        with open(log_path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - _TAIL_BYTES))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def with_hint(reason, log_path, hosts, hyperparameters):
    """``reason`` with a hint appended when the failure is a known set-up mistake.

    Args:
        reason (str): The FailureReason as reported.
        log_path (str): The job's log (its end is searched too).
        hosts (list of str): The job's hosts.
        hyperparameters (dict): The request's hyperparameters (JSON-encoded strings).

    Returns:
        str
    """
    if len(hosts) > 1 and not _ps_enabled(hyperparameters):
        if _DMLC.search(reason or "") or _DMLC.search(_log_tail(log_path)):
            return "%s\n%s" % (reason, PS_HINT % len(hosts))
    return reason
