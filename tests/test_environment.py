import json
import os

from smgluon.environment import training_env


def test_sagemaker_variables(tmp_path):
    env = training_env(
        {
            "SM_MODEL_DIR": "/opt/ml/model",
            "SM_OUTPUT_DIR": "/opt/ml/output",
            "SM_OUTPUT_DATA_DIR": "/opt/ml/output/data",
            "SM_CHANNELS": json.dumps(["train", "test"]),
            "SM_CHANNEL_TRAIN": "/opt/ml/input/data/train",
            "SM_CHANNEL_TEST": "/opt/ml/input/data/test",
            "SM_HOSTS": json.dumps(["algo-1", "algo-2"]),
            "SM_CURRENT_HOST": "algo-2",
            "SM_NUM_GPUS": "4",
            "SM_HPS": "{}",
            "SMGLUON_CHECKPOINT_DIR": str(tmp_path),
        }
    )
    assert env.model_dir == "/opt/ml/model"
    assert env.output_dir == "/opt/ml/output" and env.output_data_dir == "/opt/ml/output/data"
    assert env.channels == {"train": "/opt/ml/input/data/train", "test": "/opt/ml/input/data/test"}
    assert env.hosts == ["algo-1", "algo-2"] and env.current_host == "algo-2"
    assert env.num_gpus == 4 and env.checkpoint_dir == str(tmp_path) and env.is_sagemaker


def test_local_fallbacks_need_no_variables(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = training_env({})
    root = os.path.join(str(tmp_path), "opt_ml")
    assert env.model_dir == os.path.join(root, "model")
    assert env.output_dir == os.path.join(root, "output")
    assert env.output_data_dir == os.path.join(root, "output", "data")
    assert env.channels == {} and env.hosts == ["algo-1"] and env.current_host == "algo-1"
    assert env.num_gpus == 0 and not env.is_sagemaker


def test_local_root_channels_are_discovered(tmp_path):
    for name in ("train", "test"):
        (tmp_path / "input" / "data" / name).mkdir(parents=True)
    env = training_env({"SMGLUON_OPT_ML": str(tmp_path)})
    assert env.channels == {n: str(tmp_path / "input" / "data" / n) for n in ("train", "test")}
    assert env.model_dir == str(tmp_path / "model")


def test_channel_variables_without_sm_channels():
    env = training_env({"SM_CHANNEL_TRAINING": "/data"})
    assert env.channels == {"training": "/data"}
