import json

import pytest

from smgluon.hyperparameters import Hyperparameter as HP
from smgluon.hyperparameters import HyperparameterError, Hyperparameters, is_sagemaker_key

HPS = Hyperparameters(
    [
        HP("batch_size", int, 100, "batch", min=1),
        HP("learning_rate", float, 0.1, "lr", min=0.0, max=10.0, tune=(0.001, 0.5, "Logarithmic")),
        HP("optimizer", str, "sgd", "opt", choices=["sgd", "adam"], tune=["sgd", "adam"]),
        HP("batch_norm", bool, False, "bn"),
        HP("name", str, "run", "free text"),
    ]
)


@pytest.mark.parametrize(
    "raw, expected",
    [
        # as SageMaker hands values over: JSON-encoded strings
        ({"batch_size": "64"}, {"batch_size": 64}),
        ({"learning_rate": "0.01"}, {"learning_rate": 0.01}),
        ({"learning_rate": "1e-3"}, {"learning_rate": 0.001}),
        ({"optimizer": '"adam"'}, {"optimizer": "adam"}),
        ({"batch_norm": "true"}, {"batch_norm": True}),
        ({"batch_norm": "True"}, {"batch_norm": True}),
        ({"batch_norm": "False"}, {"batch_norm": False}),
        ({"batch_norm": "false"}, {"batch_norm": False}),
        ({"batch_norm": "0"}, {"batch_norm": False}),
        # native values, as from a notebook
        (
            {"batch_size": 32, "learning_rate": 1, "batch_norm": True},
            {"batch_size": 32, "learning_rate": 1.0, "batch_norm": True},
        ),
        ({"batch_size": 32.0}, {"batch_size": 32}),
        # dashed keys, plain strings, strings that look like JSON but are text
        ({"batch-size": "8"}, {"batch_size": 8}),
        ({"optimizer": "adam"}, {"optimizer": "adam"}),
        ({"name": "123"}, {"name": "123"}),
        ({"name": '"quoted"'}, {"name": "quoted"}),
        # SageMaker's own keys are ignored
        (
            {
                "sagemaker_program": '"x.py"',
                "sagemaker_submit_directory": '"s3://b/k"',
                "_tuning_objective_metric": "acc",
                "_ps_port": "8000",
            },
            {},
        ),
    ],
)
def test_parse_dict(raw, expected):
    parsed = HPS.parse_dict(raw)
    want = HPS.defaults()
    want.update(expected)
    assert parsed == want
    for k, v in expected.items():
        assert type(parsed[k]) is type(v)


@pytest.mark.parametrize(
    "raw, fragments",
    [
        ({"batch_sise": "10"}, ["unknown hyperparameter 'batch_sise'", "Did you mean 'batch_size'"]),
        ({"lr": "0.1"}, ["unknown hyperparameter 'lr'", "Known:"]),
        ({"batch_size": "ten"}, ["batch_size=", "ten", "expected an integer >= 1"]),
        ({"batch_size": "1.5"}, ["batch_size=", "1.5", "an integer"]),
        ({"batch_size": True}, ["batch_size=true", "an integer"]),
        ({"batch_size": "0"}, ["batch_size=", "0", ">= 1"]),
        ({"learning_rate": "11"}, ["learning_rate=", "11", "in [0.0, 10.0]"]),
        ({"learning_rate": "nan"}, ["learning_rate=", "a number"]),
        ({"optimizer": "adagrad"}, ["optimizer=", "adagrad", 'one of "sgd", "adam"']),
        ({"batch_norm": "maybe"}, ["batch_norm=", "maybe", "a boolean"]),
    ],
)
def test_bad_values_are_rejected_with_one_clear_message(raw, fragments):
    with pytest.raises(HyperparameterError) as err:
        HPS.parse_dict(raw)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_sm_hps_json():
    # SM_HPS holds values already decoded by the toolkit
    parsed = HPS.parse_json(json.dumps({"batch_size": 16, "optimizer": "adam", "batch_norm": False}))
    assert (parsed["batch_size"], parsed["optimizer"], parsed["batch_norm"]) == (16, "adam", False)
    with pytest.raises(HyperparameterError, match="not valid JSON"):
        HPS.parse_json("{")
    with pytest.raises(HyperparameterError, match="JSON object"):
        HPS.parse_json("[1]")


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--batch-size", "8"], {"batch_size": 8}),
        (["--batch_size", "8"], {"batch_size": 8}),
        (["--batch_size=8", "--learning-rate", "0.5"], {"batch_size": 8, "learning_rate": 0.5}),
        (["--batch_norm", "False"], {"batch_norm": False}),
        (["--batch-norm", "True"], {"batch_norm": True}),
        (["--batch-norm"], {"batch_norm": True}),
        (["--optimizer", '"adam"'], {"optimizer": "adam"}),
        # what sagemaker-training passes for SageMaker's own hyperparameters
        (["--_tuning_objective_metric", "validation:acc", "--batch_size", "4"], {"batch_size": 4}),
        ([], {}),
    ],
)
def test_parse_args(argv, expected):
    parsed, _ = HPS.parse_args(argv)
    want = HPS.defaults()
    want.update(expected)
    assert parsed == want


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--batch-sise", "8"], "Did you mean 'batch_size'"),
        (["--epochs", "3"], "unknown hyperparameter '--epochs'"),
        (["--batch", "3"], "Did you mean 'batch_size'"),  # no silent abbreviations
        (["--batch-size", "x"], "expected an integer"),
        (["stray"], "unexpected argument 'stray'"),
        (["--batch-size"], "bad command line"),
    ],
)
def test_parse_args_errors(argv, fragment):
    with pytest.raises(HyperparameterError) as err:
        HPS.parse_args(argv)
    assert fragment in str(err.value)


def test_extra_parser_options_are_returned():
    parser = HPS.parser()
    parser.add_argument("--train-dir", dest="train")
    hps, ns = HPS.parse_args(["--train-dir", "/data", "--batch-size", "2"], parser)
    assert ns.train == "/data" and hps["batch_size"] == 2 and not hasattr(ns, "batch_size")


def test_help_states_defaults(capsys):
    with pytest.raises(SystemExit):
        HPS.parse_args(["--help"])
    out = capsys.readouterr().out
    assert "--batch-size" in out and "(default: 100)" in out and '(default: "sgd")' in out


def test_declaration_checks_and_tuning_ranges():
    assert HPS.tunable() == {"learning_rate": (0.001, 0.5, "Logarithmic"), "optimizer": ["sgd", "adam"]}
    with pytest.raises(HyperparameterError):
        HP("x", int, 0, "bad default", min=1)
    with pytest.raises(ValueError, match="declared twice"):
        Hyperparameters([HP("a", int, 1, ""), HP("a", int, 1, "")])
    row = "| `learning_rate` | float | `0.1` | a number in [0.0, 10.0] | 0.001 to 0.5 (Logarithmic) | lr |"
    assert row in HPS.markdown_table()


def test_sagemaker_keys():
    assert is_sagemaker_key("sagemaker_program") and is_sagemaker_key("--_ps_port")
    assert not is_sagemaker_key("batch_size")
