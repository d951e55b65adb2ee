"""One summary per benchmark, and ``bench/results.md`` built from all of them.

Every benchmark keeps its own detailed results file (``bench/results/<name>.md``)
and also writes ``bench/results/<name>.summary.json`` with :func:`write_summary`
in one shape: training rows (workload, epochs, seconds per epoch, samples/s,
quality metric beside the seed's figure), serving rows (requests/s, p50/p99) and
start-up overheads, with the machine, the date and the command. :func:`render`
turns the summaries into ``bench/results.md``; ``python -m bench`` runs every
benchmark and then renders (``python -m bench --report-only`` just renders).
"""

import datetime
import glob
import json
import os
import platform
import shlex
import sys

from smgluon import files

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(REPO, "bench", "results")
REPORT = os.path.join(REPO, "bench", "results.md")
SUFFIX = ".summary.json"

__all__ = ["machine", "load_average", "write_summary", "load_summaries", "render", "write_report"]


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine():
    """One line describing this machine: cores, CPU model, memory, OS."""
    try:
        with open("/proc/meminfo") as f:
            mem_gib = int(f.readline().split()[1]) / 2**20
        mem = ", %.1f GiB RAM" % mem_gib
    except (OSError, ValueError, IndexError):
        mem = ""
    return "%d cores, %s%s, %s, Python %s" % (os.cpu_count() or 0, _cpu_model(), mem, platform.system(),
                                                platform.python_version())


def load_average():
    """The 1-minute load average (other jobs sharing the machine), or None where unknown."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def write_summary(name, title, details, training=(), serving=(), overheads=(), notes=(), command=None,
                  date=None, load=None):
    """Writes ``bench/results/<name>.summary.json`` (atomically).

    Args:
        name (str): the benchmark's name (its script's, e.g. ``"mlp_speed"``).
        title (str): one line: what it measures.
        details (str): the repository path of its detailed results file.
        training (list[dict]): rows with keys ``workload``, ``variant``, ``epochs``,
            ``seconds_per_epoch``, ``samples_per_sec``, ``metric``, ``value`` and,
            where the seed documents report one, ``seed_value`` and ``seed`` (where it is from);
            ``target`` (text) where an issue sets one.
        serving (list[dict]): rows with ``workload``, ``concurrency``, ``requests_per_sec``,
            ``p50_ms``, ``p99_ms`` and optionally ``target``.
        overheads (list[dict]): rows with ``what``, ``seconds`` and optionally ``target_seconds``.
        notes (list[str]): caveats (e.g. the machine was shared).
        command (str): the command that produced it (default: this process's).
        date (str): ISO date and time (default: now, UTC).
        load (float): load average when it ran (default: now).

    Returns:
        str: the path written.
    """
    doc = {
        "benchmark": name,
        "title": title,
        "details": details,
        "date": date or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_average": load_average() if load is None else load,
        "command": command or " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable, REPO)] + sys.argv),
        "training": list(training),
        "serving": list(serving),
        "overheads": list(overheads),
        "notes": list(notes),
    }
    path = os.path.join(RESULTS_DIR, name + SUFFIX)
    files.write_text(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return path


def load_summaries(results_dir=RESULTS_DIR):
    """Every ``*.summary.json`` in ``results_dir``, sorted by benchmark name."""
    docs = []
    for path in sorted(glob.glob(os.path.join(results_dir, "*" + SUFFIX))):
        with open(path) as f:
            docs.append(json.load(f))
    return docs


def _num(value, fmt="%.3f"):
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        return value
    if fmt == "int":
        return "{:,.0f}".format(value)
    return fmt % value


def render(docs):
    """The Markdown text of ``bench/results.md`` for these summaries."""
    out = ["# Benchmark results", "",
           "Written by `python -m bench` (every benchmark, then this page) or `python -m bench --report-only`",
           "(this page from the checked-in summaries). Each benchmark's own file has the method and every run;",
           "the `when` column says when and where each figure was measured.", ""]
    training = [(d, r) for d in docs for r in d["training"]]
    if training:
        out += ["## Training", "",
                "| workload | variant | epochs | s/epoch | samples/s | metric | value | seed's figure | target"
                " | when |",
                "|---|---|---:|---:|---:|---|---:|---|---|---|"]
        for d, r in training:
            seed = "–"
            if r.get("seed_value") is not None:
                seed = "%s (%s)" % (_num(r["seed_value"], "%.4g"), r.get("seed", "seed"))
            elif r.get("seed"):
                seed = r["seed"]
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | [%s](%s) |" % (
                r.get("workload", ""), r.get("variant", ""), _num(r.get("epochs"), "%d"),
                _num(r.get("seconds_per_epoch")), _num(r.get("samples_per_sec"), "int"), r.get("metric", ""),
                _num(r.get("value"), "%.4f"), seed, r.get("target", "") or "–", d["date"],
                d["details"].replace("bench/", "", 1)))
        out.append("")
    serving = [(d, r) for d in docs for r in d["serving"]]
    if serving:
        out += ["## Serving (one request = one image, through multi-model-server)", "",
                "| workload | concurrency | requests/s | p50 ms | p99 ms | target | when |",
                "|---|---:|---:|---:|---:|---|---|"]
        for d, r in serving:
            out.append("| %s | %s | %s | %s | %s | %s | [%s](%s) |" % (
                r.get("workload", ""), _num(r.get("concurrency"), "%d"), _num(r.get("requests_per_sec"), "int"),
                _num(r.get("p50_ms"), "%.2f"), _num(r.get("p99_ms"), "%.2f"), r.get("target", "") or "–",
                d["date"], d["details"].replace("bench/", "", 1)))
        out.append("")
    overheads = [(d, r) for d in docs for r in d["overheads"]]
    if overheads:
        out += ["## Start-up overheads", "", "| what | seconds | target | when |", "|---|---:|---:|---|"]
        for d, r in overheads:
            target = "< %g s" % r["target_seconds"] if r.get("target_seconds") else "–"
            out.append("| %s | %s | %s | [%s](%s) |" % (r["what"], _num(r.get("seconds"), "%.2f"), target,
                                                         d["date"], d["details"].replace("bench/", "", 1)))
        out.append("")
    out += ["## Runs", "", "| benchmark | what | date | machine | load average | command |",
            "|---|---|---|---|---:|---|"]
    for d in docs:
        out.append("| [%s](%s) | %s | %s | %s | %s | `%s` |" % (
            d["benchmark"], d["details"].replace("bench/", "", 1), d["title"], d["date"], d["machine"],
            _num(d.get("load_average"), "%.2f"), d["command"]))
    notes = [(d["benchmark"], n) for d in docs for n in d["notes"]]
    if notes:
        out += ["", "Notes:", ""] + ["- %s: %s" % (name, note) for name, note in notes]
    return "\n".join(out) + "\n"


def write_report(path=REPORT, results_dir=RESULTS_DIR):
    """Renders every summary into ``path`` (atomically); returns the path."""
    files.write_text(path, render(load_summaries(results_dir)))
    return path
