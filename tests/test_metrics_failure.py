import io
import json
import os
import re
import subprocess
import sys

import pytest

from smgluon import failure, metrics
from smgluon.hyperparameters import HyperparameterError


def test_metric_lines_match_the_published_regexes(tmp_path):
    out = io.StringIO()
    log = metrics.MetricsLogger(str(tmp_path), stream=out, extra={"workload": "w"})
    log.log(1, train_loss=0.5, validation_accuracy=0.91234567, samples_per_sec=52311.23, tiny=1.5e-7)
    log.log(2, train_loss=0.25, validation_accuracy=0.95, samples_per_sec=60000.0, tiny=float("nan"))
    log.finish(validation_accuracy=0.95)
    lines = out.getvalue().splitlines()
    assert (
        lines[0] == "metrics: epoch=1 train_loss=0.5 validation_accuracy=0.912346 samples_per_sec=52311.2 tiny=1.5e-07"
    )
    record = json.loads(lines[1])
    assert record["metrics"]["validation_accuracy"] == pytest.approx(0.91234567) and record["msg"] == "metrics"
    assert json.loads(lines[3])["metrics"]["tiny"] is None  # nan is not valid JSON

    defs = {
        d["Name"]: re.compile(d["Regex"])
        for d in metrics.metric_definitions(["train_loss", "validation_accuracy", "samples_per_sec", "tiny"])
    }
    text = out.getvalue()
    found = {n: [float(m.group(1)) for m in r.finditer(text)] for n, r in defs.items()}
    assert found["validation_accuracy"] == [0.912346, 0.95]  # not final_validation_accuracy, not the JSON
    assert found["train_loss"] == [0.5, 0.25]
    assert found["tiny"][0] == 1.5e-07
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["workload"] == "w" and len(saved["epochs"]) == 2 and saved["final"] == {"validation_accuracy": 0.95}


def test_failure_reason_is_one_paragraph():
    try:
        raise HyperparameterError('hyperparameter epochs="x" is not allowed:\n expected an integer')
    except HyperparameterError as e:
        reason = failure.failure_reason(e)
    assert reason == 'HyperparameterError: hyperparameter epochs="x" is not allowed: expected an integer'
    try:
        {}["k"]
    except KeyError as e:
        reason = failure.failure_reason(e)
    assert reason.startswith("KeyError: 'k' (at test_metrics_failure.py:") and "in test_failure_reason" in reason
    assert len(failure.failure_reason(ValueError("x" * 5000))) == failure.MAX_REASON


def test_run_writes_the_failure_file_and_exits_nonzero(tmp_path):
    def main(argv):
        raise RuntimeError("boom")

    with pytest.raises(SystemExit) as exit_info:
        failure.run(main, [], output_dir=str(tmp_path))
    assert exit_info.value.code == 1
    assert (tmp_path / "failure").read_text().startswith("RuntimeError: boom (at ")
    assert failure.run(lambda argv: 7, [], output_dir=str(tmp_path / "ok")) == 7
    assert not os.path.exists(str(tmp_path / "ok"))


def test_script_failure_uses_sm_output_dir(tmp_path):
    code = "from smgluon import failure\ndef main(argv):\n    raise ValueError('bad input')\nfailure.run(main)\n"
    env = dict(os.environ, SM_OUTPUT_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 1 and "Training failed: ValueError: bad input" in proc.stderr
    assert (tmp_path / "failure").read_text().startswith("ValueError: bad input")
