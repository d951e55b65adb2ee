"""Reports what one host of a parameter-server job sees, for the multi-host tests.

Each host writes ``<SM_OUTPUT_DATA_DIR>/probe-<host>.json``: its DMLC_* variables,
how the job's host names resolve, the parameter-server roles running beside it,
the files of its ``train`` channel, its kvstore rank and an allreduce over all
workers (smgluon.distributed, shipped with ``dependencies``). Only the first host
writes a model file. ``--sleep_seconds`` keeps it running (for fault tests).
"""

import argparse
import json
import os
import socket
import time

import psutil


def parameter_server_roles():
    """DMLC_ROLE of the processes this host's toolkit started beside the script."""
    roles = []
    for proc in psutil.Process(os.getppid()).children(recursive=True):
        try:
            role = proc.environ().get("DMLC_ROLE")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        cmdline = proc.cmdline()
        # The role itself, not the shells the container (sh -c) and the job's `python` wrap it in.
        if role in ("scheduler", "server") and os.path.basename(cmdline[0]).startswith("python") \
                and "import mxnet" in cmdline:
            roles.append(role)
    return sorted(roles)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sleep_seconds", type=float, default=0.0)
    args, _ = parser.parse_known_args()
    host = os.environ["SM_CURRENT_HOST"]
    hosts = json.loads(os.environ["SM_HOSTS"])
    train = os.environ.get("SM_CHANNEL_TRAIN")
    files = []
    if train:
        for dirpath, _, names in os.walk(train, followlinks=True):
            files += [os.path.relpath(os.path.join(dirpath, n), train) for n in names]

    from smgluon.distributed import Workers, create_kvstore

    kv = create_kvstore("dist_sync")
    workers = Workers(kv)
    total = workers.allreduce([1.0, workers.rank, len(files)])
    report = {
        "host": host,
        "dmlc": {k: v for k, v in os.environ.items() if k.startswith("DMLC_")},
        "resolved": {h: socket.gethostbyname(h) for h in hosts},
        "roles": parameter_server_roles(),
        "files": sorted(files),
        "rank": workers.rank,
        "num_workers": workers.num_workers,
        "allreduce": total.tolist(),
    }
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "probe-%s.json" % host), "w") as f:
        json.dump(report, f)
    print("probe %s rank %d ready" % (host, workers.rank), flush=True)
    deadline = time.time() + args.sleep_seconds
    while time.time() < deadline:
        workers.allreduce([1.0])  # keeps the workers in lock-step, as training does
        time.sleep(0.2)
    if host == hosts[0]:
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w") as f:
            f.write(host)


if __name__ == "__main__":
    main()
