"""Serving benchmark (issue 3): one-image predictions through local-mode endpoints, measured with wrk.

Two endpoints run side by side on the same stack (multi-model-server + the
SageMaker MXNet handler, started by ``smgluon_local`` through the SDK's
``MXNetModel.deploy`` on a ``ProcessSession``):

- ``aws_example``: AWS's public Gluon MNIST example's hosting code
  (``bench/baselines/aws_gluon_mnist.py``: json.loads → mx.nd.array → net →
  argmax → json.dumps, no validation), with a model it fits here and saves in its
  own format (``model.params``);
- ``mnist_mlp``: ``entry_points/mnist_mlp.py`` with ``lib/smgluon``, trained here
  for two epochs on 8,000 MNIST images, with its input validation.

Each gets the same request: one held-out MNIST image as a JSON list of 784
floats, ``[[...]]``, ``Content-Type: application/json`` (0–1 floats for the
example, which trains on /255 pixels; 0–255 floats for mnist_mlp, which scales
in its graph; both bodies are about the same size and printed). After deploying,
each endpoint gets ``--settle`` seconds of load (the JVM compiles its hot code
for about that long). Then, for each concurrency (1 and 8 connections, one wrk
thread), ``--rounds`` rounds of short runs, the two endpoints in turn (the
order alternating): a warm-up run, then a measured run. Short alternating runs
put both endpoints under much the same outside conditions when the machine is
shared (other jobs still take whatever CPU an endpoint leaves idle). p50/p99
come from wrk's latency histogram (the numbers ``--latency`` prints, read
exactly through a Lua ``done`` hook), requests/s is wrk's; the
table shows the median over rounds, and the throughput ratio is given both as
the ratio of the medians and as the median of each round's ratio (the target is
judged on the lower). Any non-2xx answer or socket error fails the run.

Beside them: the CPU time the endpoint's processes (java and the Python workers)
spent per request, which other jobs on the machine disturb much less than
requests/s, and the share of the machine's CPU that processes other than the
endpoint, wrk and this script used during the measured runs.

Usage, from the repository root (about 4 minutes)::

    .venv/bin/python bench/serving.py [--duration 5] [--warmup 1] [--settle 15] [--rounds 6]
    .venv/bin/python bench/serving.py --stack container              # the container's log configuration
    .venv/bin/python bench/serving.py --entry-point OLD/mnist_mlp.py  # another version of the serving path
    .venv/bin/python bench/serving.py --env SAGEMAKER_MODEL_SERVER_WORKERS=1

wrk is a Debian package: ``apt-get install -y wrk``. Without it the benchmark is
skipped with that message (exit status 0). Java is needed for the model server
(``apt-get install -y default-jre-headless``). The Markdown section goes to the
top of ``bench/results/serving.md`` (``--no-write`` to print it only); the raw
numbers to ``bench/results/serving.json``; with the default settings, the
summary for ``bench/results.md`` to ``bench/results/serving.summary.json``.

Targets for mnist_mlp (issue 3): at 8 connections ≥ 1.5× the example's
requests/s, and p99 < 10 ms.
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # run as a script: `python bench/serving.py`
    sys.path.insert(0, REPO)

RESULTS = os.path.join(REPO, "bench", "results", "serving.md")
RESULTS_JSON = os.path.join(REPO, "bench", "results", "serving.json")
ROLE = "arn:aws:iam::111111111111:role/bench"
WRK_HINT = "wrk not found: install it with `apt-get install -y wrk` (Debian/Ubuntu), then run this again."
TARGET_RATIO, TARGET_P99_MS = 1.5, 10.0

# The wrk script: POST the body file; at the end print the latency histogram's exact
# percentiles (microseconds) as one JSON line that this benchmark reads.
WRK_LUA = """
local f = assert(io.open(os.getenv("SMGLUON_WRK_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("SMGLUON_WRK_CONTENT_TYPE") or "application/json"
wrk.headers["Accept"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'SMGLUON_WRK {"requests": %d, "duration_us": %d, "bytes": %d, "non2xx": %d, ' ..
    '"socket_errors": %d, "mean_us": %.1f, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"p999_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect + e.read + e.write + e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
"""


def fit_models(work):
    """Trains both models on the first 8,000 MNIST test images; returns model.tar.gz paths and a held-out image."""
    import mxnet as mx
    import numpy as np
    from mxnet import autograd, gluon

    from bench.baselines import aws_gluon_mnist
    from bench.local_mode_overhead import mnist_channels
    from smgluon_local.tarfiles import create_tar_gz

    sys.path.insert(0, os.path.join(REPO, "entry_points"))
    import mnist_mlp

    train, test, images, labels = mnist_channels(os.path.join(work, "data"), n_train=8000, n_test=2000)
    tars = {}

    ours = os.path.join(work, "model-mnist_mlp")
    net = mnist_mlp.train({"train": train, "test": test}, {"epochs": 2, "log_interval": 0}, ["local"], 0)
    mnist_mlp.save(net, ours)

    # The example's net, fitted the quick way (whole arrays, two epochs); saved with its own save().
    mx.random.seed(42)
    base_net = aws_gluon_mnist.define_network()
    base_net.initialize(mx.init.Xavier(magnitude=2.24))
    trainer = gluon.Trainer(base_net.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.9})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    x = mx.nd.array(images[:8000].reshape(-1, 784).astype(np.float32) / 255)
    y = mx.nd.array(labels[:8000].astype(np.float32))
    for _ in range(2):
        for i in range(0, 8000, 100):
            with autograd.record():
                loss = loss_fn(base_net(x[i : i + 100]), y[i : i + 100])
            loss.backward()
            trainer.step(100)
    base = os.path.join(work, "model-aws_example")
    os.makedirs(base)
    aws_gluon_mnist.save(base_net, base)

    for name, model_dir in (("mnist_mlp", ours), ("aws_example", base)):
        tars[name] = os.path.join(work, name + ".tar.gz")
        create_tar_gz(model_dir, tars[name])
    held_out = 9000  # not in either training set
    return tars, images[held_out].reshape(784), int(labels[held_out])


def use_container_settings():
    """Serve with the SageMaker container's log configuration instead of local mode's (to measure it)."""
    from smgluon_local import endpoint

    def container_log_config():
        with open(endpoint._package_file("sagemaker_inference", "etc", "log4j2.xml")) as f:
            return f.read()

    endpoint.log_config = container_log_config


def deploy(session, name, model_tar, work, env, entry_point_file=None):
    """An endpoint for one model through the SDK's MXNetModel, as a user deploys it."""
    from sagemaker.mxnet import MXNetModel

    if name == "mnist_mlp":
        source_dir, entry_point = os.path.join(REPO, "entry_points"), "mnist_mlp.py"
        dependencies = [os.path.join(REPO, "lib", "smgluon")]
        if entry_point_file:  # another version of the script, served in its place
            source_dir = os.path.join(work, "mnist_mlp_code")
            os.makedirs(source_dir, exist_ok=True)
            shutil.copy(entry_point_file, os.path.join(source_dir, entry_point))
    else:
        # Only the example's script goes into its code directory, as in its own source_dir.
        source_dir, entry_point, dependencies = os.path.join(work, "aws_example_code"), "aws_gluon_mnist.py", []
        os.makedirs(source_dir, exist_ok=True)
        shutil.copy(os.path.join(REPO, "bench", "baselines", entry_point), source_dir)
    model = MXNetModel(model_data="file://" + model_tar, entry_point=entry_point, source_dir=source_dir,
                       dependencies=dependencies, role=ROLE, framework_version="1.9.0", py_version="py38",
                       env=dict(env), sagemaker_session=session, name=name.replace("_", "-"))
    tic = time.time()
    predictor = model.deploy(initial_instance_count=1, instance_type="local")
    return predictor, session.endpoint_url(predictor.endpoint_name), time.time() - tic


def bodies(image, work):
    """The request body files: the same image as 0–1 floats (example) and 0–255 floats (mnist_mlp)."""
    paths = {}
    for name, values in (("aws_example", [round(float(v) / 255, 4) for v in image]),
                         ("mnist_mlp", [float(v) for v in image])):
        paths[name] = os.path.join(work, name + ".json")
        with open(paths[name], "w") as f:
            json.dump([values], f)
    return paths


def check_answer(name, url, body_path, label):
    """One request with urllib: 200 and the right class, before any load."""
    with open(body_path, "rb") as f:
        body = f.read()
    req = urllib.request.Request(url + "/invocations", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        answer = json.loads(r.read())
    predicted = answer["predictions"][0] if name == "mnist_mlp" else int(answer)
    if predicted != label:
        print("note: %s predicted %s for the held-out image (label %d)" % (name, predicted, label), file=sys.stderr)
    return predicted


def server_processes(session, endpoint_name):
    """The endpoint's processes: the launcher, java and the Python workers (their command lines name its directory)."""
    import psutil

    marker = os.path.join(session.root_dir, "endpoints", endpoint_name + "-")
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(marker in arg for arg in proc.info["cmdline"] or []):
            found.append(proc)
    return found


def cpu_seconds(processes):
    """CPU time (user + system) of each process, by kind ("java" or "python")."""
    import psutil

    totals = {}
    for proc in processes:
        try:
            times = proc.cpu_times()
            kind = "java" if proc.name() == "java" else "python"
            totals[kind] = totals.get(kind, 0.0) + times.user + times.system
        except psutil.Error:
            pass
    return totals


def busy_seconds():
    """CPU time the whole machine spent busy so far (all cores), and this process's plus its children's."""
    import psutil

    t = psutil.cpu_times()
    machine = t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0) + getattr(t, "steal", 0)
    own = os.times()
    return machine, own.user + own.system + own.children_user + own.children_system


def measured_wrk(url, body_path, lua, connections, seconds, processes):
    """One measured wrk run, with the server's CPU per request and the CPU share other processes used."""
    cpu0, (machine0, own0) = cpu_seconds(processes), busy_seconds()
    record = wrk(url, body_path, lua, connections, seconds)
    cpu1, (machine1, own1) = cpu_seconds(processes), busy_seconds()
    server = {k: cpu1.get(k, 0.0) - cpu0.get(k, 0.0) for k in cpu1}
    record["server_cpu_us_per_request"] = {k: v / record["requests"] * 1e6 for k, v in server.items()}
    others = (machine1 - machine0) - sum(server.values()) - (own1 - own0)
    record["others_cpu_share"] = max(0.0, others) / (record["duration_us"] / 1e6 * os.cpu_count())
    return record


def wrk(url, body_path, lua, connections, seconds, threads=1):
    """Runs wrk once; returns its parsed summary plus the text it printed."""
    cmd = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds, "--latency", "--timeout", "10s",
           "-s", lua, url + "/invocations"]
    env = dict(os.environ, SMGLUON_WRK_BODY=body_path)
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=seconds + 60)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("SMGLUON_WRK ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError("wrk failed (status %d):\n%s" % (proc.returncode, proc.stdout))
    record = json.loads(line.split(" ", 1)[1])
    if record["non2xx"] or record["socket_errors"]:
        raise RuntimeError("%s: %d non-2xx answers and %d socket errors under load:\n%s"
                           % (url, record["non2xx"], record["socket_errors"], proc.stdout))
    record["requests_per_s"] = record["requests"] / (record["duration_us"] / 1e6)
    record["command"] = " ".join(cmd)
    record["text"] = proc.stdout
    return record


def machine():
    from bench.mlp_speed import machine as cpu_and_memory

    info = cpu_and_memory()
    info["load_before"] = os.getloadavg()
    return info


def versions():
    import importlib.metadata as md

    names = ["mxnet", "numpy", "sagemaker", "sagemaker-inference", "sagemaker-mxnet-inference", "multi-model-server"]
    found = {n: md.version(n) for n in names}
    found["python"] = sys.version.split()[0]
    java = subprocess.run(["java", "-version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    found["java"] = java.stdout.splitlines()[0] if java.stdout else "unknown"
    found["wrk"] = subprocess.run(["wrk", "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True).stdout.split(" Copyright")[0].strip()
    return found


def throughput_ratio(table, connections=8):
    """mnist_mlp's requests/s over the example's: the lower of the ratio of medians and the median round ratio."""
    ours, base = table[("mnist_mlp", connections)], table[("aws_example", connections)]
    return min(ours["requests_per_s"] / base["requests_per_s"], ours["paired_ratio"])


def summarise(runs):
    """Median over rounds of each (endpoint, connections) pair."""
    table = {}
    for (name, conns), records in runs.items():
        table[(name, conns)] = {
            "requests_per_s": statistics.median(r["requests_per_s"] for r in records),
            "p50_ms": statistics.median(r["p50_us"] for r in records) / 1000,
            "p99_ms": statistics.median(r["p99_us"] for r in records) / 1000,
            "p999_ms": statistics.median(r["p999_us"] for r in records) / 1000,
            "max_ms": max(r["max_us"] for r in records) / 1000,
            "all_requests_per_s": [round(r["requests_per_s"]) for r in records],
            "java_us": statistics.median(r["server_cpu_us_per_request"].get("java", 0) for r in records),
            "python_us": statistics.median(r["server_cpu_us_per_request"].get("python", 0) for r in records),
            "others_share": statistics.median(r["others_cpu_share"] for r in records),
        }
    for (name, conns), row in table.items():
        base = runs.get(("aws_example", conns))
        if name == "mnist_mlp" and base:
            row["paired_ratio"] = statistics.median(
                r["requests_per_s"] / b["requests_per_s"] for r, b in zip(runs[(name, conns)], base))
    return table


def render(args, table, info, vers, env, deploy_s, sizes, started, seconds, load_after):
    lines = ["## %s" % started.strftime("%Y-%m-%d %H:%M UTC"), ""]
    # The load average after the run counts the benchmark's own server and wrk; what other jobs took
    # during the measured runs is the share measured beside them.
    shared = max(row["others_share"] for row in table.values())
    lines.append("- machine: %d cores (`nproc`), %s, %.1f GiB RAM; load average (1 min) %.2f before, %.2f after "
                 "(the after figure includes this benchmark's own processes); other jobs used up to %.0f%% of "
                 "the CPU during the measured runs%s"
                 % (info["nproc"], info["cpu"], info["ram_gib"], info["load_before"][0], load_after, 100 * shared,
                    "" if info["load_before"][0] < 1.0 and shared < 0.10 else
                    " — other jobs shared the machine, so treat these numbers as noisy"))
    lines.append("- command: `%s`" % " ".join(["python", "bench/serving.py"] + (args.argv or [])))
    lines.append("- versions: " + ", ".join("%s %s" % kv for kv in vers.items()))
    from bench.mlp_speed import git_head

    lines.append("- code: commit %s" % git_head())
    lines.append("- model-server settings for both endpoints: %s%s"
                 % ("local mode's (`local_mode/smgluon_local/endpoint.py`: the container's, with per-request log "
                    "lines kept out of mms.log), one worker per core" if args.stack == "local" else
                    "the SageMaker container's (`--stack container`: its log4j2.xml), one worker per core",
                    "" if not env else ", plus " + ", ".join("`%s=%s`" % kv for kv in sorted(env.items()))))
    if args.entry_point:
        lines.append("- mnist_mlp served from `%s` (`--entry-point`), not entry_points/mnist_mlp.py"
                     % args.entry_point)
    lines.append("- request: one MNIST image, `[[784 floats]]`, application/json (%s)"
                 % ", ".join("%s %d bytes" % kv for kv in sorted(sizes.items())))
    lines.append("- method: wrk, 1 thread; each endpoint loaded for %d s after deploy, then %d s warm-up and %d s "
                 "measured per run; per concurrency %d rounds, the endpoints in turn, median shown; deploy() "
                 "took %s. Whole run %.0f s."
                 % (args.settle, args.warmup, args.duration, args.rounds,
                    ", ".join("%.1f s (%s)" % (s, n) for n, s in sorted(deploy_s.items())), seconds))
    lines += ["",
              "| endpoint | connections | requests/s | p50 ms | p99 ms | p99.9 ms | max ms | requests/s per round "
              "| server CPU µs/request (java + python) | CPU used by other jobs |",
              "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for (name, conns), row in sorted(table.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        lines.append("| %s | %d | %.0f | %.2f | %.2f | %.2f | %.1f | %s | %.0f (%.0f + %.0f) | %.0f%% |"
                     % (name, conns, row["requests_per_s"], row["p50_ms"], row["p99_ms"], row["p999_ms"],
                        row["max_ms"], ", ".join(map(str, row["all_requests_per_s"])),
                        row["java_us"] + row["python_us"], row["java_us"], row["python_us"],
                        100 * row["others_share"]))
    ours, base = table.get(("mnist_mlp", 8)), table.get(("aws_example", 8))
    if ours and base:
        ratio = throughput_ratio(table)
        lines += ["", "Targets (issue 3) for mnist_mlp at 8 connections:",
                  "- ≥ %.1f× the example's requests/s: **%s** (%.2f×: %.0f vs %.0f; median of the rounds' ratios "
                  "%.2f×)"
                  % (TARGET_RATIO, "met" if ratio >= TARGET_RATIO else "not met",
                     ours["requests_per_s"] / base["requests_per_s"], ours["requests_per_s"],
                     base["requests_per_s"], ours["paired_ratio"]),
                  "- p99 < %.0f ms: **%s** (%.2f ms)"
                  % (TARGET_P99_MS, "met" if ours["p99_ms"] < TARGET_P99_MS else "not met", ours["p99_ms"])]
    return "\n".join(lines) + "\n"


def write_summary(args, table, info, load_after):
    """bench/results/serving.summary.json, for bench/results.md (default settings only, not variants)."""
    from bench.summary import write_summary as write

    labels = {"mnist_mlp": "mnist_mlp", "aws_example": "AWS Gluon MNIST example (bench/baselines/aws_gluon_mnist.py)"}
    ours, base = table.get(("mnist_mlp", 8)), table.get(("aws_example", 8))
    rows = []
    for (name, conns), row in sorted(table.items(), key=lambda kv: (kv[0][0] != "mnist_mlp", kv[0][1])):
        target = ""
        if (name, conns) == ("mnist_mlp", 8) and base:
            ratio = throughput_ratio(table)
            target = "≥ %.1f× the example's requests/s and p99 < %.0f ms: %s (%.2f×, %.2f ms)" % (
                TARGET_RATIO, TARGET_P99_MS,
                "met" if ratio >= TARGET_RATIO and ours["p99_ms"] < TARGET_P99_MS else "not met",
                ratio, ours["p99_ms"])
        rows.append({"workload": labels[name], "concurrency": conns, "requests_per_sec": row["requests_per_s"],
                     "p50_ms": row["p50_ms"], "p99_ms": row["p99_ms"], "target": target})
    shared = max(row["others_share"] for row in table.values())
    notes = ["one JSON image per request, wrk; both endpoints on the same stack in the same run, median of %d "
             "rounds; other jobs used up to %.0f%% of the machine's CPU during the measured runs (load average "
             "%.1f before, %.1f after)" % (args.rounds, 100 * shared, info["load_before"][0], load_after)]
    write("serving", "One-image predictions through local-mode endpoints (multi-model-server), wrk",
          "bench/results/serving.md", serving=rows, notes=notes, load=info["load_before"][0])


def write_results(section, raw, path=RESULTS, json_path=RESULTS_JSON, title="Serving", script="bench/serving.py"):
    """Puts ``section`` at the top of the results file (newest run first) and ``raw`` in its JSON file."""
    header = "# %s (`python %s`)\n\nNewest run first; see `%s`.\n\n" % (title, script, script)
    old = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
        old = old[len(header):] if old.startswith(header) else old
    with open(path, "w") as f:
        f.write(header + section + ("\n" + old if old.strip() else ""))
    with open(json_path, "w") as f:
        json.dump(raw, f, indent=1)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=int, default=5, help="seconds per measured wrk run (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="seconds of warm-up before each measured run (default 1)")
    p.add_argument("--settle", type=int, default=15,
                   help="seconds of load on each endpoint after deploy, before any run (default 15)")
    p.add_argument("--rounds", type=int, default=6, help="measured runs per endpoint and concurrency (default 6)")
    p.add_argument("--connections", default="1,8", help="comma-separated wrk connection counts (default 1,8)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="container environment for both endpoints, e.g. SAGEMAKER_MODEL_SERVER_WORKERS=1")
    p.add_argument("--only", choices=["mnist_mlp", "aws_example"], help="serve and load one endpoint only")
    p.add_argument("--entry-point", metavar="PATH",
                   help="serve this copy of mnist_mlp.py as mnist_mlp (e.g. an older version, to measure a change)")
    p.add_argument("--stack", choices=["local", "container"], default="local",
                   help="model-server settings for both endpoints: local mode's (default) or the SageMaker "
                        "container's (its log4j2.xml, which also logs two lines per request to mms.log)")
    p.add_argument("--no-write", action="store_true", help="print the section only")
    args = p.parse_args(argv)
    args.argv = argv
    bad = [e for e in args.env if "=" not in e]
    if bad:
        p.error("--env takes KEY=VALUE, got %s" % bad)
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if not shutil.which("wrk"):
        print("serving benchmark skipped: " + WRK_HINT, file=sys.stderr)
        return 0
    from smgluon_local import ProcessSession
    from smgluon_local.endpoint import find_java

    find_java()  # a clear error now rather than after training
    if args.entry_point and not os.path.isfile(args.entry_point):
        sys.exit("--entry-point %s: no such file" % args.entry_point)
    if args.stack == "container":
        use_container_settings()
    env = dict(e.split("=", 1) for e in args.env)
    started = datetime.datetime.now(datetime.timezone.utc)
    tic = time.time()
    info, vers = machine(), versions()
    work = tempfile.mkdtemp(prefix="smgluon-serving-")
    names = [args.only] if args.only else ["aws_example", "mnist_mlp"]
    predictors = []
    try:
        tars, image, label = fit_models(work)
        paths = bodies(image, work)
        sizes = {n: os.path.getsize(p) for n, p in paths.items() if n in names}
        lua = os.path.join(work, "post.lua")
        with open(lua, "w") as f:
            f.write(WRK_LUA)
        session = ProcessSession(root_dir=os.path.join(work, "root"), log_stream=False)
        urls, deploy_s, processes = {}, {}, {}
        for name in names:
            predictor, urls[name], deploy_s[name] = deploy(session, name, tars[name], work, env, args.entry_point)
            predictors.append(predictor)
            processes[name] = server_processes(session, predictor.endpoint_name)
            check_answer(name, urls[name], paths[name], label)
            wrk(urls[name], paths[name], lua, 8, args.settle)
        runs = {}
        for conns in [int(c) for c in args.connections.split(",")]:
            for round_ in range(args.rounds):
                # Short runs, the endpoints in turn (first one, then the other): both see much the
                # same load from other jobs on a shared machine.
                for name in names if round_ % 2 == 0 else names[::-1]:
                    wrk(urls[name], paths[name], lua, conns, args.warmup)
                    record = measured_wrk(urls[name], paths[name], lua, conns, args.duration, processes[name])
                    runs.setdefault((name, conns), []).append(record)
                    cpu = record["server_cpu_us_per_request"]
                    print("%-12s c=%d  %6.0f req/s  p50 %.2f ms  p99 %.2f ms  server CPU %.0f µs/request  "
                          "other jobs %.0f%%"
                          % (name, conns, record["requests_per_s"], record["p50_us"] / 1000,
                             record["p99_us"] / 1000, sum(cpu.values()), 100 * record["others_cpu_share"]),
                          flush=True)
    finally:
        for predictor in predictors:
            predictor.delete_endpoint()
        shutil.rmtree(work, ignore_errors=True)
    table = summarise(runs)
    load_after = os.getloadavg()[0]
    section = render(args, table, info, vers, env, deploy_s, sizes, started, time.time() - tic, load_after)
    print(section)
    if not args.no_write:
        raw = {"started": started.isoformat(), "machine": info, "versions": vers, "env": env,
               "runs": {"%s c=%d" % k: [{x: r[x] for x in r if x != "text"} for r in v] for k, v in runs.items()},
               "wrk_output": {"%s c=%d" % k: [r["text"] for r in v] for k, v in runs.items()}}
        write_results(section, raw)
        if not (args.entry_point or args.only or env or args.stack != "local"):
            write_summary(args, table, info, load_after)
    return 0


if __name__ == "__main__":
    sys.exit(main())
