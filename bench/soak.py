"""Soak and fault benchmark: mixed good and bad requests against a local endpoint, and a killed worker.

For each endpoint (mnist_mlp and fmnist_cnn, trained here on MNIST test images,
served by multi-model-server with the local handler service as ``deploy()`` does):

1. **soak**: ``--seconds`` of load at ``--connections`` keep-alive connections,
   each sending a fixed mix of good requests (JSON, NPY, CSV, PNG for fmnist_cnn)
   and bad ones (deep JSON, non-UTF-8 text, bodies over the 6 MB limit, malformed
   NPY/CSV/PNG, unsupported types). Counted: answers by status, 5xx answers to
   bad input, connection resets, timeouts, good answers that differ from the
   expected bytes, bad answers that are not one line; and the RSS of the
   endpoint's processes (java and the workers) before and after.
2. **worker kill**: the same load for ``--fault-seconds``; a few seconds in, one
   model-server worker gets SIGKILL. Reported: the answers in the gap by status,
   resets and timeouts (a hang shows as a timeout), when the model server had a
   new worker, and the longest time between two good answers after the kill.

Usage, from the repository root (about 3 minutes with the defaults)::

    .venv/bin/python bench/soak.py [--seconds 60] [--connections 32] [--fault-seconds 30]

It writes the Markdown report to ``bench/results/soak.md`` (``--no-write`` to
print it only). Timings are only meaningful on an otherwise idle machine.
:func:`soak` is what ``tests/test_bad_requests.py`` runs for a few seconds
against each workload.

SIGKILL of a training job's process (the toolkit's or the script's) is checked by
``tests/test_job_faults.py``: the job ends Failed, its reason says the process was
killed by SIGKILL, and none of its processes is left.
"""

import argparse
import http.client
import io
import json
import os
import signal
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MB = 1024 * 1024
RESET_ERRORS = (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected, ConnectionAbortedError)


class Request:
    """One request of the mix, and the answer it must get.

    Args:
        name (str): for the report.
        body (bytes): the request body.
        content_type (str), accept (str): its headers.
        status (int): the expected status (200 for a good request).
        answer (bytes): for a good request, the expected body (None: any).
    """

    def __init__(self, name, body, content_type, accept="application/json", status=200, answer=None):
        self.name, self.body, self.content_type, self.accept = name, body, content_type, accept
        self.status, self.answer = status, answer


class Tally:
    """What the connections saw, counted under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statuses = {}
        self.bad_5xx = self.resets = self.timeouts = self.wrong = self.not_one_line = 0
        self.good_times = []  # monotonic time of every correct good answer
        self.events = []  # (time, request name, status or error name)

    def record(self, request, status, body, now):
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.events.append((now, request.name, status))
            if request.status == 200:
                if status == 200 and (request.answer is None or body == request.answer):
                    self.good_times.append(now)
                else:
                    self.wrong += 1
            else:
                if status >= 500:
                    self.bad_5xx += 1
                elif status != request.status:
                    self.wrong += 1
                text = body.decode("utf-8", errors="replace").strip()
                if request.status != 413 or text:  # the frontend's own 413 (over twice the limit) is empty
                    if not text or "\n" in text:
                        self.not_one_line += 1

    def error(self, request, error, now):
        with self.lock:
            if isinstance(error, TimeoutError):
                self.timeouts += 1
            else:
                self.resets += 1
            self.events.append((now, request.name, type(error).__name__))

    def summary(self):
        return {
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "answers": sum(self.statuses.values()),
            "bad_5xx": self.bad_5xx,
            "resets": self.resets,
            "timeouts": self.timeouts,
            "wrong": self.wrong,
            "not_one_line": self.not_one_line,
        }


def _connection_loop(port, requests, offset, stop, tally, timeout):
    connection = None
    i = offset
    while not stop.is_set():
        request = requests[i % len(requests)]
        i += 1
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            connection.request(
                "POST",
                "/invocations",
                body=request.body,
                headers={"Content-Type": request.content_type, "Accept": request.accept},
            )
            response = connection.getresponse()
            body = response.read()
            tally.record(request, response.status, body, time.monotonic())
            if response.will_close:
                connection.close()
                connection = None
        except (TimeoutError, OSError, http.client.HTTPException) as e:
            tally.error(request, e, time.monotonic())
            connection.close()
            connection = None
    if connection is not None:
        connection.close()


def soak(port, requests, seconds, connections, timeout=30.0, during=None):
    """Sends ``requests`` round-robin on ``connections`` keep-alive connections for ``seconds``.

    Args:
        port (int): the endpoint's port on 127.0.0.1.
        requests (list[Request]): the mix; each connection starts at a different place in it.
        seconds (float): how long.
        connections (int): how many at once.
        timeout (float): seconds without an answer that count as a hang.
        during (callable): called once, after the load has started, with no arguments.

    Returns:
        Tally
    """
    tally, stop = Tally(), threading.Event()
    threads = [
        threading.Thread(target=_connection_loop, args=(port, requests, n * 7, stop, tally, timeout), daemon=True)
        for n in range(connections)
    ]
    for thread in threads:
        thread.start()
    if during is not None:
        during()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout + 5)
    return tally


def server_processes(server):
    """The endpoint's processes (launcher, java, workers): its process group."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == server.process.pid:
                found.append(proc)
        except (ProcessLookupError, PermissionError):
            continue
    return found


def rss_mb(server):
    """Resident memory of the endpoint's processes, in MB."""
    total = 0
    for proc in server_processes(server):
        try:
            total += proc.memory_info().rss
        except Exception:  # noqa: BLE001 - a process that just exited
            pass
    return total / MB


def rss_by_kind_mb(server):
    """(java, python) resident memory of the endpoint's processes, in MB: the frontend and the workers."""
    java = python = 0
    for proc in server_processes(server):
        try:
            rss = proc.memory_info().rss
            if proc.name() == "java":
                java += rss
            else:
                python += rss
        except Exception:  # noqa: BLE001 - a process that just exited
            pass
    return java / MB, python / MB


class RssSampler:
    """Samples :func:`rss_by_kind_mb` every ``every`` seconds in a thread, to tell growth that levels off
    (the JVM sizing its heap to the load) from growth that goes on (a leak)."""

    def __init__(self, server, every):
        self.server, self.every, self.samples = server, every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        start = time.time()
        while True:
            self.samples.append((time.time() - start,) + rss_by_kind_mb(self.server))
            if self._stop.wait(self.every):
                break

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def workers(server):
    """PIDs of the model server's Python workers that serve requests.

    The worker processes java starts fork the serving ones; killing a serving one is
    the fault the model server recovers from (it starts another).
    """
    found = {}
    for proc in server_processes(server):
        try:
            if any("model_service_worker" in part for part in proc.cmdline()):
                found[proc.pid] = proc.ppid()
        except Exception:  # noqa: BLE001 - a process that just exited
            pass
    parents = set(found.values())
    return sorted(pid for pid in found if pid not in parents)


def worker_kill(server, port, requests, seconds, connections, kill_after=5.0):
    """Load for ``seconds``; ``kill_after`` seconds in, SIGKILL one worker. Returns the tally and the timeline."""
    before = workers(server)
    timeline = {"workers_before": len(before)}

    def kill():
        time.sleep(kill_after)
        victim = before[0]
        timeline["killed_at"] = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            now = workers(server)
            if len(now) >= len(before) and victim not in now:
                timeline["replaced_after_s"] = time.monotonic() - timeline["killed_at"]
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill, daemon=True)
    tally = soak(port, requests, seconds, connections, during=killer.start)
    killer.join()
    killed = timeline.get("killed_at")
    if killed is not None:
        after = sorted(t for t in tally.good_times if t >= killed)
        gaps = [b - a for a, b in zip([killed] + after, after)]
        timeline["longest_gap_between_good_answers_s"] = max(gaps) if gaps else None
        timeline["in_the_gap"] = {}
        for when, _, outcome in tally.events:
            if killed <= when <= killed + max(gaps or [0]):
                key = str(outcome)
                timeline["in_the_gap"][key] = timeline["in_the_gap"].get(key, 0) + 1
    return tally, timeline


# ---------------------------------------------------------------- the endpoints of the benchmark


def _npy(array):
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def bad_requests(content_types, good_body):
    """The bad part of the mix, for an endpoint accepting ``content_types``; ``good_body`` is good JSON."""
    import numpy as np

    bad = [
        Request("deep-json", b"[" * 100_000 + b"]" * 100_000, "application/json", status=400),
        Request("non-utf8-json", b"\xff\xfe[[1, 2]]", "application/json", status=400),
        Request("invalid-json", b"[[1, 2,", "application/json", status=400),
        Request("unsupported-type", b"<a/>", "application/xml", status=415),
        Request("unsupported-accept", good_body, "application/json", accept="application/xml", status=406),
        Request("7mb", b"1" * (7 * MB), content_types[0], status=413),
    ]
    if "text/csv" in content_types:
        bad += [
            Request("non-utf8-csv", b"1,2\n\xc3(\n", "text/csv", status=400),
            Request("csv-words", b"a,b\n", "text/csv", status=400),
        ]
    if "application/x-npy" in content_types:
        bad += [
            Request("npy-pickle", _npy(np.array([{"a": 1}], dtype=object)), "application/x-npy", status=400),
            Request("npy-truncated", _npy(np.zeros((2, 784), np.float32))[:-10], "application/x-npy", status=400),
        ]
    if "image/png" in content_types:
        bad += [Request("png-garbage", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png", status=400)]
    return bad


def good_requests(module, model, images):
    """Good requests for an MNIST workload, each with the answer its transform_fn gives in-process."""
    from PIL import Image

    flat = images.reshape(len(images), -1).astype("float32")
    bodies = [
        ("json", json.dumps(flat.tolist()).encode(), "application/json"),
        ("npy", _npy(flat), "application/x-npy"),
        ("csv", "\n".join(",".join("%g" % v for v in row) for row in flat).encode(), "text/csv"),
    ]
    if module.__name__ == "fmnist_cnn":
        buf = io.BytesIO()
        Image.fromarray(images[0].reshape(28, 28).astype("uint8")).save(buf, "PNG")
        bodies.append(("png", buf.getvalue(), "image/png"))
    good = []
    for name, body, content_type in bodies:
        data = body.decode("utf-8") if content_type in ("application/json", "text/csv") else body
        answer, _ = module.transform_fn(model, data, content_type, "application/json")
        good.append(Request(name, body, content_type, answer=answer.encode("utf-8")))
    return good


def start_endpoint(workload, work, channels, vmargs=None):
    """Trains ``workload`` briefly, saves it and serves it; returns (module, model dir, server).

    ``vmargs``: the JVM options of the model server's frontend (SAGEMAKER_MODEL_SERVER_VMARGS), if not the default.
    """
    import importlib
    import shutil

    from smgluon_local.endpoint import ModelServer

    sys.path.insert(0, os.path.join(REPO, "entry_points"))
    module = importlib.import_module(workload)
    net = module.train(
        channels,
        {"epochs": 1, "log_interval": 0},
        ["local"],
        0,
        output_data_dir=os.path.join(work, workload + "-output"),
    )
    model_dir = os.path.join(work, workload + "-model")
    module.save(net, model_dir)
    code = os.path.join(work, workload + "-code")
    os.makedirs(code)
    shutil.copy(os.path.join(REPO, "entry_points", workload + ".py"), code)
    shutil.copytree(os.path.join(REPO, "lib", "smgluon"), os.path.join(code, "smgluon"))
    environment = {"SAGEMAKER_PROGRAM": workload + ".py"}
    if vmargs:
        environment["SAGEMAKER_MODEL_SERVER_VMARGS"] = vmargs
    server = ModelServer(os.path.join(work, workload + "-endpoint"), model_dir, environment, code_dir=code)
    server.start()
    return module, model_dir, server


def render(runs, args):
    lines = [
        "# Soak and fault benchmark",
        "",
        "`python bench/soak.py --seconds %g --connections %d --fault-seconds %g`, %s, load average before: %s."
        % (
            args.seconds,
            args.connections,
            args.fault_seconds,
            time.strftime("%Y-%m-%d"),
            "%.1f %.1f %.1f" % os.getloadavg(),
        ),
        "",
        "| endpoint | answers | by status | 5xx to bad input | resets | timeouts | wrong | not one line "
        "| RSS before → after (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        s = run["soak"]
        lines.append(
            "| %s | %d | %s | %d | %d | %d | %d | %d | %.0f → %.0f |"
            % (
                run["workload"],
                s["answers"],
                ", ".join("%s: %d" % kv for kv in s["statuses"].items()),
                s["bad_5xx"],
                s["resets"],
                s["timeouts"],
                s["wrong"],
                s["not_one_line"],
                run["rss_before_mb"],
                run["rss_after_mb"],
            )
        )
    lines += ["", "RSS during the soak, java + Python (frontend and workers), MB, every %g s:" % args.rss_every, ""]
    for run in runs:
        lines.append(
            "- %s: %s" % (run["workload"], ", ".join("%.0f s: %.0f + %.0f" % sample for sample in run["rss_timeline"]))
        )
    lines += ["", "Worker killed with SIGKILL mid-load:", ""]
    for run in runs:
        f, t = run["fault"], run["timeline"]
        lines.append(
            "- %s: workers %d; replaced after %s s; longest gap between good answers %s s; in the gap: "
            "%s; resets %d, timeouts %d."
            % (
                run["workload"],
                t["workers_before"],
                _fmt(t.get("replaced_after_s")),
                _fmt(t.get("longest_gap_between_good_answers_s")),
                t.get("in_the_gap"),
                f["resets"],
                f["timeouts"],
            )
        )
    return "\n".join(lines) + "\n"


def _fmt(value):
    return "-" if value is None else "%.2f" % value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--fault-seconds", type=float, default=30)
    parser.add_argument("--workloads", nargs="+", default=["mnist_mlp", "fmnist_cnn"])
    parser.add_argument("--rss-every", type=float, default=10, help="seconds between RSS samples in the soak")
    parser.add_argument("--vmargs", help="JVM options of the frontend (SAGEMAKER_MODEL_SERVER_VMARGS)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    import tempfile

    sys.path.insert(0, REPO)
    from bench.local_mode_overhead import mnist_channels

    runs = []
    with tempfile.TemporaryDirectory(prefix="soak-") as work:
        train, test, images, _ = mnist_channels(os.path.join(work, "data"), n_train=3000, n_test=500)
        for workload in args.workloads:
            module, model_dir, server = start_endpoint(workload, work, {"train": train, "test": test}, args.vmargs)
            try:
                model = module.model_fn(model_dir)
                types = ["application/json", "application/x-npy", "text/csv"]
                types += ["image/png"] if workload == "fmnist_cnn" else []
                good = good_requests(module, model, images[9000:9004])
                mix = good + bad_requests(types, good[0].body)
                rss_before = rss_mb(server)
                with RssSampler(server, args.rss_every) as sampler:
                    tally = soak(server.port, mix, args.seconds, args.connections)
                rss_after = rss_mb(server)
                fault, timeline = worker_kill(server, server.port, mix, args.fault_seconds, args.connections)
                runs.append(
                    {
                        "workload": workload,
                        "soak": tally.summary(),
                        "rss_before_mb": rss_before,
                        "rss_after_mb": rss_after,
                        "rss_timeline": sampler.samples,
                        "fault": fault.summary(),
                        "timeline": timeline,
                    }
                )
            finally:
                server.stop()
    report = render(runs, args)
    print(report)
    if not args.no_write:
        with open(os.path.join(REPO, "bench", "results", "soak.md"), "w") as f:
            f.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
