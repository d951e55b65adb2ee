"""bench/fmnist_cnn.py: its runs and its report, on small real data (the benchmark itself is not a test).

A full benchmark takes a quarter of an hour; these check that its pieces work, so
that it does not fail at its end: the plain Gluon baseline and our entry point run
and come back as records of one shape, and the page renders from such records
and from the checked-in results.
"""

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from bench import fmnist_cnn as bench  # noqa: E402  (bench/fmnist_cnn.py, not the entry point)


@pytest.mark.slow
def test_plain_baseline_and_entry_point_give_records_that_render(mnist_small_dirs, tmp_path):
    data = mnist_small_dirs["training"]
    env = {"OMP_NUM_THREADS": "1", "MXNET_ENGINE_TYPE": "NaiveEngine"}
    plain = bench.run_baseline(bench.PLAIN_LABEL, "bench.baselines.gluon_cnn_plain", env, data, "speed", epochs=2)
    ours = bench.run_script(
        "ours, workshop settings, " + bench.FAST, dict(bench.WORKSHOP_HPS, epochs=2), env, data, "speed"
    )
    for record in (plain, ours):
        assert [e["epoch"] for e in record["epochs"]] == [1, 2]
        assert all(e["epoch_seconds"] > 0 for e in record["epochs"])
        assert 0.5 < record["epochs"][-1]["validation_accuracy"] <= 1.0  # 2,000 MNIST digits learn that much
    assert ours["hyperparameters"]["batch_norm"] is False  # the workshop's settings reached the script

    page = bench.render([plain, ours], path=str(tmp_path / "fmnist_cnn.md"), summary_too=False)
    text = open(page).read()
    assert "## Speed" in text and bench.PLAIN_LABEL in text
    assert "≤ 10 s per epoch (aim)" in text  # PyTorch's row is missing, so only the aim is judged


def test_checked_in_results_render(tmp_path):
    records = bench.load_records()
    assert records, "bench/results/fmnist_cnn.json is empty"
    text = open(bench.render(records, path=str(tmp_path / "fmnist_cnn.md"), summary_too=False)).read()
    assert "## Accuracy, 10 epochs" in text and "## Notes" in text
    assert "| workshop |" in text
