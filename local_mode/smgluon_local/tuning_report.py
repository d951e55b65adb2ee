"""A tuning job's trials as a table, a CSV file and a plot.

Works from the training job summaries the tuning API lists (the same for a
local tuning job and one on SageMaker)::

    from sagemaker.analytics import HyperparameterTuningJobAnalytics
    summaries = HyperparameterTuningJobAnalytics(name, session).training_job_summaries()
    rows = trial_rows(summaries)
    print(format_table(rows, "validation_accuracy"))
    write_csv(rows, "out/trials.csv"); write_plot(rows, "out/trials.png", "validation_accuracy", "Maximize")
"""

import csv
import json

from smgluon import files

__all__ = ["trial_rows", "best_so_far", "format_table", "write_csv", "write_plot"]


def _decode(value):
    # Framework estimators send categorical values JSON-encoded ('"adam"'); show them plainly.
    try:
        decoded = json.loads(value)
    except (TypeError, ValueError):
        return value
    return decoded if isinstance(decoded, (str, int, float, bool)) else value


def trial_rows(summaries):
    """One row per trial, in the order the trials started.

    Args:
        summaries (list of dict): ``TrainingJobSummaries`` of ListTrainingJobsForHyperParameterTuningJob.

    Returns:
        list of dict: ``trial`` (from 1), ``name``, ``status``, ``objective`` (None when
        not reported), ``hyperparameters`` (decoded values), ``start``, ``end``,
        ``seconds`` and ``failure_reason``.
    """
    rows = []
    for i, s in enumerate(sorted(summaries, key=lambda s: (s["CreationTime"], s["TrainingJobName"])), 1):
        start, end = s.get("TrainingStartTime"), s.get("TrainingEndTime")
        objective = s.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value")
        rows.append({
            "trial": i,
            "name": s["TrainingJobName"],
            "status": s["TrainingJobStatus"],
            "objective": objective,
            "hyperparameters": {k: _decode(v) for k, v in sorted(s.get("TunedHyperParameters", {}).items())},
            "start": start,
            "end": end,
            "seconds": (end - start).total_seconds() if start and end else None,
            "failure_reason": s.get("FailureReason", ""),
        })
    return rows


def best_so_far(rows, objective_type):
    """The best completed objective after each trial (None before the first one).

    Args:
        rows (list of dict): From :func:`trial_rows`.
        objective_type (str): ``Maximize`` or ``Minimize``.

    Returns:
        list: One value per row.
    """
    pick = max if objective_type == "Maximize" else min
    best, out = None, []
    for row in rows:
        if row["status"] == "Completed" and row["objective"] is not None:
            best = row["objective"] if best is None else pick(best, row["objective"])
        out.append(best)
    return out


def _hp_names(rows):
    return sorted({k for row in rows for k in row["hyperparameters"]})


def format_table(rows, objective_name, best_name=None):
    """A plain-text table of the trials; the best one is marked with ``*``.

    Args:
        rows (list of dict): From :func:`trial_rows`.
        objective_name (str): Header of the objective column.
        best_name (str): The best training job's name.

    Returns:
        str
    """
    names = _hp_names(rows)
    header = ["", "#", "training job", "status", objective_name] + names
    lines = [header]
    for row in rows:
        objective = "" if row["objective"] is None else "%.6g" % row["objective"]
        values = [_cell(row["hyperparameters"].get(n, "")) for n in names]
        lines.append(["*" if row["name"] == best_name else "", str(row["trial"]), row["name"], row["status"],
                      objective] + values)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)


def _cell(value):
    return "%.6g" % value if isinstance(value, float) else str(value)


def _atomic(path, write, mode="w"):
    """Write ``path`` through a temporary file in the same directory and a rename (:mod:`smgluon.files`)."""
    with files.replacing(path) as tmp, open(tmp, mode, **({"newline": ""} if "b" not in mode else {})) as f:
        write(f)


def write_csv(rows, path, objective_name="objective"):
    """Write the trials as CSV: trial, training job, status, objective, each tuned hyperparameter, times.

    Args:
        rows (list of dict): From :func:`trial_rows`.
        path (str): The CSV file (written atomically).
        objective_name (str): Header of the objective column.
    """
    names = _hp_names(rows)

    def write(f):
        out = csv.writer(f)
        out.writerow(["trial", "training_job_name", "status", objective_name] + names
                     + ["start_time", "end_time", "seconds", "failure_reason"])
        for row in rows:
            out.writerow([row["trial"], row["name"], row["status"], "" if row["objective"] is None else
                          row["objective"]] + [row["hyperparameters"].get(n, "") for n in names]
                         + [row["start"].isoformat() if row["start"] else "",
                            row["end"].isoformat() if row["end"] else "",
                            "" if row["seconds"] is None else round(row["seconds"], 3), row["failure_reason"]])

    _atomic(path, write)


def write_plot(rows, path, objective_name, objective_type, title=None):
    """Plot the objective of every trial and the best so far, as a PNG.

    Completed trials are dots, stopped ones grey squares; failed trials (no
    objective) are red crosses along the bottom edge.

    Args:
        rows (list of dict): From :func:`trial_rows`.
        path (str): The PNG file (written atomically).
        objective_name (str): The y axis label.
        objective_type (str): ``Maximize`` or ``Minimize`` (for the best-so-far line).
        title (str): The plot's title.
    """
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.subplots()
    values = [r["objective"] for r in rows if r["objective"] is not None]
    for status, style in (("Completed", dict(marker="o", color="tab:blue", label="completed")),
                          ("Stopped", dict(marker="s", color="tab:grey", label="stopped early"))):
        points = [(r["trial"], r["objective"]) for r in rows if r["status"] == status and r["objective"] is not None]
        if points:
            ax.scatter(*zip(*points), zorder=3, **style)
    failed = [r["trial"] for r in rows if r["objective"] is None and r["status"] != "InProgress"]
    if failed:
        low = min(values) if values else 0.0
        ax.scatter(failed, [low] * len(failed), marker="x", color="tab:red", zorder=3, label="failed (no objective)")
    best = best_so_far(rows, objective_type)
    steps = [(r["trial"], b) for r, b in zip(rows, best) if b is not None]
    if steps:
        ax.step(*zip(*steps), where="post", color="tab:orange", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("%s (%s)" % (objective_name, objective_type.lower()))
    ax.set_title(title or "objective per trial")
    if rows:
        ax.set_xticks([r["trial"] for r in rows] if len(rows) <= 30 else ax.get_xticks())
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")
    fig.tight_layout()
    _atomic(path, lambda f: fig.savefig(f, format="png"), mode="wb")
