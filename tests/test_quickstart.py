"""smgluon quickstart (the README's main job) and its learning-curve plot."""

import json
import os

import pytest

from smgluon_local import quickstart


def test_learning_curve_draws_every_epoch_of_metrics_json(tmp_path):
    metrics = tmp_path / "metrics.json"
    epochs = [{"epoch": i, "train_loss": 1.0 / i, "train_accuracy": 0.5 + 0.1 * i, "validation_accuracy": 0.6 + 0.1 * i}
              for i in (1, 2, 3)]
    metrics.write_text(json.dumps({"epochs": epochs, "final": epochs[-1]}))
    png = tmp_path / "curve.png"
    assert quickstart.learning_curve(str(metrics), str(png)) == epochs
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp.png")] == []


def test_learning_curve_without_epochs_is_a_clear_error(tmp_path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"final": {}}))
    with pytest.raises(quickstart.CliError, match="no per-epoch metrics"):
        quickstart.learning_curve(str(metrics), str(tmp_path / "curve.png"))


def _samples(*pairs):
    values = iter(pairs)
    return lambda: next(values)


def test_threads_follow_the_idle_cores_and_the_users_settings():
    from smgluon_local.quickstart import thread_environment

    # idle machine: every core, synchronous engine
    env, why = thread_environment({}, cores=2, sample=_samples((0, 0), (199, 200)), seconds=0)
    assert env == {"OMP_NUM_THREADS": "2", "MXNET_ENGINE_TYPE": "NaiveEngine"} and "2.0 of 2 cores idle" in why
    # one core busy with another job: one thread, and why
    env, why = thread_environment({}, cores=2, sample=_samples((0, 0), (110, 200)), seconds=0)
    assert env["OMP_NUM_THREADS"] == "1" and "several times slower" in why
    # both busy: still one
    env, _ = thread_environment({}, cores=4, sample=_samples((0, 0), (10, 400)), seconds=0)
    assert env["OMP_NUM_THREADS"] == "1"
    # the user's settings win
    env, why = thread_environment({"OMP_NUM_THREADS": "3"}, cores=2, sample=lambda: 1 / 0, seconds=0)
    assert env == {"OMP_NUM_THREADS": "3"} and "as set in the environment" in why
    # the real /proc/stat
    env, _ = thread_environment({}, seconds=0.05)
    assert 1 <= int(env["OMP_NUM_THREADS"]) <= len(os.sched_getaffinity(0))


def test_epoch_progress_shows_one_line_per_epoch_and_nothing_else():
    import io

    out = io.StringIO()
    progress = quickstart._EpochProgress(3, out)
    progress.write("Training Env: {...}\nmetrics: epoch=1 train_loss=0.5 train_accuracy=0.8 validation_acc")
    progress.write("uracy=0.85 samples_per_sec=100\n{\"json\": 1}\nmetrics: final_validation_accuracy=0.85\n")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("  epoch 1/3  train_loss 0.5  train_accuracy 0.8  "
                                                   "validation_accuracy 0.85")


@pytest.mark.slow
def test_quickstart_trains_deploys_classifies_and_draws(mnist_small_dirs, tmp_path, capsys):
    channels = {"train": mnist_small_dirs["train"], "test": mnist_small_dirs["test"]}
    summary = quickstart.run(epochs=1, output=str(tmp_path / "out"), num_images=3, root=str(tmp_path / "root"),
                             hyperparameters={"classes": "mnist"}, channels=channels)
    # One epoch on 2k images: far above chance, and the endpoint scores the test set as the job did.
    assert summary["endpoint_accuracy"] > 0.5
    assert summary["endpoint_accuracy"] == pytest.approx(summary["validation_accuracy"], abs=0.005)
    for key in ("model", "output", "metrics_json", "learning_curve"):
        assert os.path.isfile(summary[key]), key
    out = capsys.readouterr().out
    assert "accuracy through the endpoint" in out and summary["learning_curve"] in out
