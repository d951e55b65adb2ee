"""``python -m bench``: runs every benchmark, one after another, then writes bench/results.md.

Usage, from the repository root (``make bench`` runs the first line)::

    .venv/bin/python -m bench                      # all of them (about an hour on 2 cores)
    .venv/bin/python -m bench --only serving dssm  # some of them, then the report
    .venv/bin/python -m bench --list
    .venv/bin/python -m bench --report-only        # bench/results.md from the checked-in summaries

Each benchmark runs in its own process (thread variables are read when MXNet is
imported), writes its detailed file under bench/results/ and a summary that
:mod:`bench.summary` renders. A benchmark that fails is reported and the others
still run; the exit status is 1 if any failed. Timings are only comparable on an
otherwise idle machine: the report records the load average of each run.
"""

import argparse
import os
import subprocess
import sys
import time

from bench.summary import REPO, write_report

# name -> command (run from the repository root with this interpreter)
BENCHMARKS = [
    ("mlp_speed", ["-m", "bench.mlp_speed", "--repeats", "2"]),
    ("fmnist_cnn", ["bench/fmnist_cnn.py"]),
    ("movielens_mf", ["bench/movielens_mf.py"]),
    ("dssm", ["bench/dssm.py"]),
    ("nyc_flights", ["bench/nyc_flights.py"]),
    ("local_mode_overhead", ["bench/local_mode_overhead.py"]),
    ("serving", ["bench/serving.py"]),
    ("byom", ["bench/byom.py"]),
    ("soak", ["bench/soak.py"]),
    ("multihost", ["bench/multihost.py"]),
]


def available():
    """The benchmarks whose script is in this checkout."""
    found = []
    for name, args in BENCHMARKS:
        script = args[0] if args[0] != "-m" else args[1].replace(".", os.sep) + ".py"
        if os.path.exists(os.path.join(REPO, script)):
            found.append((name, args))
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    parser.add_argument("--skip", nargs="+", metavar="NAME", default=[], help="do not run these")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--report-only", action="store_true", help="only write bench/results.md")
    args = parser.parse_args(argv)
    benches = available()
    names = [n for n, _ in benches]
    if args.list:
        print("\n".join("%-20s %s" % (n, " ".join(a)) for n, a in benches))
        return 0
    unknown = sorted((set(args.only or []) | set(args.skip)) - set(names))
    if unknown:
        parser.error("unknown benchmark(s) %s; choose from %s" % (", ".join(unknown), ", ".join(names)))
    failed = []
    if not args.report_only:
        for name, bench_args in benches:
            if (args.only and name not in args.only) or name in args.skip:
                continue
            print("=== %s: %s %s" % (name, os.path.relpath(sys.executable, REPO), " ".join(bench_args)), flush=True)
            tic = time.time()
            code = subprocess.call([sys.executable] + bench_args, cwd=REPO)
            print("=== %s: %s in %.0f s" % (name, "ok" if code == 0 else "FAILED (exit %d)" % code,
                                          time.time() - tic), flush=True)
            if code:
                failed.append(name)
    print("wrote %s" % os.path.relpath(write_report(), REPO))
    if failed:
        print("failed: %s" % ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
