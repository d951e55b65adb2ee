"""Free TCP ports for the servers local mode starts: model servers and parameter-server schedulers.

Ports come from below Linux's ephemeral range, where the kernel picks the
ports of every ``bind(0)`` (ps-lite's own nodes, clients), so a port that was
free stays free; and below 32767, which multi-model-server 1.1 rejects
("Invalid port number"). A port handed out is kept from every other caller
in this process until :func:`release_port`, so two jobs or endpoints started
at once never get the same one.
"""

import random
import socket
import threading

__all__ = ["LOW", "HIGH", "free_port", "release_port", "port_is_free"]

LOW, HIGH = 20000, 32766
_lock = threading.Lock()
_in_use = set()


def port_is_free(port, host="127.0.0.1"):
    """Whether a TCP port can be bound on ``host`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(low=LOW, high=HIGH, hosts=("0.0.0.0", "127.0.0.1")):
    """A TCP port in ``[low, high]`` that is free on every address of ``hosts`` and not handed out already.

    Args:
        low, high (int): the range.
        hosts (tuple[str]): addresses the port must be free on (a scheduler listens on all of them).

    Returns:
        int

    Raises:
        RuntimeError: when 200 tries found none free.
    """
    rng = random.Random()
    with _lock:
        for _ in range(200):
            port = rng.randint(low, high)
            if port not in _in_use and all(port_is_free(port, host) for host in hosts):
                _in_use.add(port)
                return port
    raise RuntimeError("no free TCP port between %d and %d on %s" % (low, high, ", ".join(hosts)))


def release_port(port):
    """Lets :func:`free_port` hand ``port`` out again (the server that had it is gone)."""
    with _lock:
        _in_use.discard(port)
