"""nyc_flights on a real slice of NYC flights 2013: training, schema errors, leakage, save → serve, OOV, two hosts."""

import csv
import gzip
import json
import os

import mxnet as mx
import numpy as np
import nyc_flights
import pytest
from conftest import ENTRY_POINTS, resumed_and_uninterrupted, run_script_mode
from test_nyc_flights_data import write_package_slice

from smgluon import flights as schema
from smgluon import tabular
from smgluon.serving import RequestError
from smgluon_local import nyc_flights_data

FAST = {"epochs": 3, "batch_size": 256, "hidden": 64, "learning_rate": 0.003}
RECORD = {
    "carrier": "UA",
    "origin": "EWR",
    "dest": "IAH",
    "month": 11,
    "day": 4,
    "weekday": 0,
    "hour": 17,
    "minute": 30,
    "distance": 1400,
    "plane_year": 2004,
    "plane_seats": 149,
    "plane_engines": 2,
    "temp": 48.0,
    "dewp": 30.0,
    "humid": 50.0,
    "wind_dir": 270,
    "wind_speed": 12.0,
    "wind_gust": None,
    "precip": 0.0,
    "pressure": 1015.0,
    "visib": 10.0,
}


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """The package's tables with every 25th flight."""
    return write_package_slice(str(tmp_path_factory.mktemp("package")), every=25)


@pytest.fixture(scope="module")
def data(package, tmp_path_factory):
    """Train and test channels of the slice (time split: about 10,900 and 2,200 rows)."""
    return nyc_flights_data.fetch(
        str(tmp_path_factory.mktemp("data")), data_dir=package, verify=False, log=lambda m: None
    )


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("output"))
    hps = {k: json.dumps(v) for k, v in FAST.items()}  # as SageMaker hands them over
    net = nyc_flights.train(dict(data), hps, ["local"], 0, output_data_dir=out)
    with open(os.path.join(out, "metrics.json")) as f:
        return net, json.load(f)


def rows_of(channel):
    with gzip.open(os.path.join(channel, "part-00000.csv.gz"), "rt", newline="") as f:
        return list(csv.reader(f))


def write_csv(folder, header, rows, name="part-00000.csv"):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([header] + rows)
    return folder


# ---------------------------------------------------------------- training


def test_training_beats_the_train_mean_and_logs_rmse_and_mae(trained):
    _, doc = trained
    final = doc["final"]
    assert len(doc["epochs"]) == 3
    assert final["validation_mae"] < final["baseline_mae"] - 1.0, final
    assert final["validation_rmse"] < final["baseline_rmse"] * 1.03, final
    assert 10 < final["validation_rmse"] < 80 and final["train_rmse"] > 0


def test_a_resumed_run_trains_as_an_uninterrupted_one(data, tmp_path):
    resumed, uninterrupted = resumed_and_uninterrupted(
        nyc_flights.train, dict(data), dict(FAST, max_train_samples=3000, dropout=0.0), tmp_path
    )
    assert resumed == pytest.approx(uninterrupted, rel=1e-6)


def test_preprocessing_comes_from_the_training_rows_only(data, trained):
    net, _ = trained
    train = tabular.read_csv_channel(data["train"], nyc_flights.COLUMNS)
    pre = net.preprocessor
    y = nyc_flights.clipped_target(train["dep_delay"], nyc_flights.HYPERPARAMETERS.defaults()["target_clip"])
    assert pre.target == pytest.approx([y.mean(), y.std()], rel=1e-6)
    d = train["distance"]
    assert pre.numeric["distance"] == pytest.approx([d.mean(), d.std(), d.min(), d.max()], rel=1e-6)
    assert pre.vocabularies["dest"] == sorted(set(train["dest"].tolist()))
    assert list(pre.vocabularies) == schema.CATEGORICAL
    assert "wind_gust" in pre.flags and "distance" not in pre.flags
    # month and day are left out by default: the test months lie beyond every training month
    assert "month" not in pre.numeric and "day" not in pre.numeric
    with_dates = nyc_flights.HYPERPARAMETERS.parse_dict({"date_features": "true"})
    assert nyc_flights.numeric_features(with_dates) == schema.NUMERIC


# ---------------------------------------------------------------- channels and schema


def test_a_post_departure_column_in_a_header_is_refused_as_a_leak(data, tmp_path):
    header, *rows = rows_of(data["train"])
    leaky = write_csv(str(tmp_path / "train"), header + ["dep_time"], [r + ["517"] for r in rows[:50]])
    with pytest.raises(tabular.TableError, match=r"part-00000\.csv line 1: the header has dep_time.*leak"):
        nyc_flights.train({"train": leaky, "test": data["test"]}, FAST, ["local"], 0)


def test_a_bad_cell_is_reported_with_file_line_and_column(data, tmp_path):
    header, *rows = rows_of(data["train"])
    rows = [list(r) for r in rows[:20]]
    rows[2][header.index("distance")] = "far"
    bad = write_csv(str(tmp_path / "train"), header, rows, name="part-00007.csv")
    with pytest.raises(tabular.TableError, match=r"part-00007\.csv line 4: column 'distance' holds 'far'"):
        nyc_flights.read_channel(bad)
    rows[2][header.index("distance")] = "1400"
    rows[5] = rows[5][:-1]
    write_csv(bad, header, rows, name="part-00007.csv")
    with pytest.raises(tabular.TableError, match=r"line 7: 21 fields, but the header has 22"):
        nyc_flights.read_channel(bad)


def test_a_missing_column_or_a_missing_required_value_names_it(data, tmp_path):
    header, *rows = rows_of(data["train"])
    j = header.index("carrier")
    folder = write_csv(str(tmp_path / "a"), header[:j] + header[j + 1 :], [r[:j] + r[j + 1 :] for r in rows[:5]])
    with pytest.raises(tabular.TableError, match="the header lacks carrier"):
        nyc_flights.read_channel(folder)
    rows = [list(r) for r in rows[:5]]
    rows[1][header.index("origin")] = ""
    folder = write_csv(str(tmp_path / "b"), header, rows)
    with pytest.raises(tabular.TableError, match="line 3: column 'origin' is empty"):
        nyc_flights.read_channel(folder)
    with pytest.raises(tabular.TableError, match=r"no CSV files \(\*\.csv, \*\.csv\.gz\) in"):
        nyc_flights.read_channel(str(tmp_path))


def test_columns_in_another_order_with_extras_and_plain_csv_read_the_same(data, tmp_path):
    header, *rows = rows_of(data["test"])
    order = list(reversed(range(len(header))))
    folder = write_csv(
        str(tmp_path / "t"), [header[i] for i in order] + ["tailnum"], [[r[i] for i in order] + ["N1"] for r in rows]
    )
    a, b = nyc_flights.read_channel(data["test"]), nyc_flights.read_channel(folder)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_one_training_channel_is_refused_with_the_layout_to_use(data):
    with pytest.raises(Exception, match="'train' and a 'test' channel"):
        nyc_flights.train({"training": data["train"]}, FAST, ["local"], 0)


# ---------------------------------------------------------------- save and serve


@pytest.fixture(scope="module")
def served(trained, tmp_path_factory):
    net, _ = trained
    model_dir = str(tmp_path_factory.mktemp("model"))
    nyc_flights.save(net, model_dir)
    return net, nyc_flights.model_fn(model_dir), model_dir


def ask(model, payload, content_type="application/json", accept="application/json"):
    body, ctype = nyc_flights.transform_fn(
        model, payload if isinstance(payload, str) else json.dumps(payload), content_type, accept
    )
    return json.loads(body)["predictions"] if ctype == "application/json" else body


def test_save_model_fn_transform_fn_equals_the_in_memory_predictions(data, served):
    net, model, model_dir = served
    assert sorted(os.listdir(model_dir)) == [
        "model-0000.params",
        "model-preprocessing.json",
        "model-shapes.json",
        "model-symbol.json",
    ]
    header, *rows = rows_of(data["test"])
    records = []
    for row in rows[:64]:
        record = {}
        for name, cell in zip(header, row):
            if name == schema.TARGET:
                continue
            kind = dict((c.name, c.kind) for c in schema.COLUMNS)[name]
            record[name] = None if cell == "" else (cell if kind == "category" else float(cell))
        records.append(record)
    table = tabular.read_csv_channel(data["test"], nyc_flights.COLUMNS, max_rows=64)
    expected = nyc_flights.predict(net, net.preprocessor.encode(table), [mx.cpu()])
    np.testing.assert_allclose(ask(model, records), expected, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(ask(net, {"instances": records}), expected, rtol=1e-4, atol=1e-3)
    csv_rows = "\n".join(",".join(r[1:]) for r in rows[:64])
    np.testing.assert_allclose(ask(model, csv_rows, "text/csv"), expected, rtol=1e-4, atol=1e-3)
    lines = ask(model, csv_rows, "text/csv", "text/csv").splitlines()
    np.testing.assert_allclose([float(v) for v in lines], expected, rtol=1e-4, atol=1e-3)


def test_unknown_airports_and_carriers_are_served_through_the_oov_slot(served):
    _, model, _ = served
    known, new_dest, new_both = ask(model, [RECORD, dict(RECORD, dest="ZZZ"), dict(RECORD, dest="ZZZ", carrier="QQ")])
    assert all(np.isfinite([known, new_dest, new_both]))
    encoded = model.preprocessor.encode({k: [v] for k, v in dict(RECORD, dest="ZZZ", wind_gust=np.nan).items()})
    assert encoded[0, schema.CATEGORICAL.index("dest")] == tabular.OOV
    # Plane and weather fields may be left out: unknown, as in the training data.
    short = {k: RECORD[k] for k in nyc_flights.required_fields()}
    assert np.isfinite(ask(model, short)[0])


@pytest.mark.parametrize(
    "payload, message",
    [
        ({k: v for k, v in RECORD.items() if k != "carrier"}, "record 0: the required field 'carrier' is missing"),
        (dict(RECORD, distance="far"), "record 0: 'distance' must be a number, got \"far\""),
        (dict(RECORD, hour=True), "'hour' must be a string or an integer code"),
        (dict(RECORD, orign="EWR"), "unknown field 'orign' \\(did you mean 'origin'\\?\\)"),
        ([RECORD, 3], "record 1: expected an object with the feature names"),
        ([], "the request holds no flight"),
        ("{not json", "invalid JSON payload"),
    ],
)
def test_bad_requests_are_client_errors_naming_the_field(served, payload, message):
    _, model, _ = served
    with pytest.raises(RequestError, match=message) as info:
        ask(model, payload)
    assert info.value.status_code == 400


def test_bad_csv_rows_and_types_are_client_errors(served):
    _, model, _ = served
    row = ",".join("" if RECORD[k] is None else str(RECORD[k]) for k in schema.FEATURES)
    assert len(ask(model, row + "\n" + row, "text/csv")) == 2
    with pytest.raises(RequestError, match="text/csv line 2 has 20 values; expected 21"):
        ask(model, row + "\n" + row.rsplit(",", 1)[0], "text/csv")
    with pytest.raises(RequestError, match="text/csv line 1: 'carrier' is missing|required field 'carrier'"):
        ask(model, row.replace("UA", "", 1), "text/csv")
    with pytest.raises(RequestError) as info:
        ask(model, row, "application/x-npy")
    assert info.value.status_code == 415
    with pytest.raises(RequestError) as info:
        ask(model, [RECORD], accept="image/png")
    assert info.value.status_code == 406


# ---------------------------------------------------------------- script mode and hosts


def test_script_mode_trains_saves_and_reports_a_bad_hyperparameter(data, tmp_path):
    proc = run_script_mode("nyc_flights.py", str(tmp_path), dict(data), {"epochs": 1, "max_train_samples": 3000})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "train-mean baseline" in proc.stderr and "validation_rmse=" in proc.stdout
    assert "model-preprocessing.json" in os.listdir(tmp_path / "model")
    bad = tmp_path / "bad"
    bad.mkdir()
    proc = run_script_mode("nyc_flights.py", str(bad), dict(data), {"loss": "l3"})
    assert proc.returncode == 1
    failure = (bad / "output" / "failure").read_text()
    assert "loss" in failure and "l3" in failure


def test_the_tuning_ranges_are_published(data):
    from smgluon_local.workload_tuning import tuner_arguments

    args = tuner_arguments(nyc_flights)
    assert args["objective_metric_name"] == "validation_rmse" and args["objective_type"] == "Minimize"
    assert {"learning_rate", "hidden", "dropout", "loss", "embedding_dim"} <= set(args["hyperparameter_ranges"])
    assert os.path.exists(os.path.join(ENTRY_POINTS, "nyc_flights.py"))


@pytest.mark.slow
def test_two_hosts_train_in_step_with_the_quality_of_one(package, data, tmp_path):
    """dist_sync on loopback, rows split by rank or part files sharded by key: the quality of one host."""
    from local_helpers import REPO, ROLE
    from sagemaker.inputs import TrainingInput
    from sagemaker.mxnet import MXNet

    from smgluon_local import ProcessSession

    session = ProcessSession(root_dir=str(tmp_path / "root"), log_stream=False)
    parts = nyc_flights_data.fetch(str(tmp_path / "parts"), parts=2, data_dir=package, verify=False, log=lambda m: None)
    jobs = {
        "one": (1, "file://" + data["train"]),
        "replicated": (2, "file://" + data["train"]),
        "sharded": (2, TrainingInput("file://" + parts["train"], distribution="ShardedByS3Key")),
    }
    runs = {}
    for name, (count, train) in jobs.items():
        est = MXNet(
            entry_point="nyc_flights.py",
            source_dir=os.path.join(REPO, "entry_points"),
            dependencies=[os.path.join(REPO, "lib", "smgluon")],
            role=ROLE,
            instance_count=count,
            instance_type="local",
            framework_version="1.9.0",
            py_version="py38",
            distribution={"parameter_server": {"enabled": True}},
            sagemaker_session=session,
            hyperparameters=dict(FAST, epochs=2),
            metric_definitions=nyc_flights.METRIC_DEFINITIONS,
        )
        est.fit({"train": train, "test": "file://" + data["test"]}, wait=False)
        runs[name] = est
    finals = {}
    for name, est in runs.items():
        est.latest_training_job.wait(logs="None")
        desc = session.describe_training_job(est.latest_training_job.name)
        assert desc["TrainingJobStatus"] == "Completed", (name, desc.get("FailureReason"))
        finals[name] = {m["MetricName"]: m["Value"] for m in desc["FinalMetricDataList"]}
    for name in ("replicated", "sharded"):
        rmse, one = finals[name]["validation_rmse"], finals["one"]["validation_rmse"]
        assert abs(rmse - one) < 0.05 * one, finals
        log = open(os.path.join(session.root_dir, "jobs", runs[name].latest_training_job.name, "job.log")).read()
        lines = {
            host: [
                ln.split("metrics: ")[1].split(" samples_per_sec")[0]
                for ln in log.splitlines()
                if ln.startswith(host + " | metrics: epoch=")
            ]
            for host in ("algo-1", "algo-2")
        }
        assert len(lines["algo-1"]) == 2 and lines["algo-1"] == lines["algo-2"], lines


def test_readme_documents_the_hyperparameters():
    from conftest import REPO

    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    start, end = "<!-- hyperparameters:nyc_flights -->\n", "\n<!-- /hyperparameters:nyc_flights -->"
    section = readme.split(start)[1].split(end)[0]
    assert section == nyc_flights.HYPERPARAMETERS.markdown_table()


@pytest.mark.slow
def test_smgluon_tune_nyc_flights_runs_a_bayesian_search(data, tmp_path, capsys):
    from conftest import REPO

    from smgluon_local.cli import main

    out = tmp_path / "out"
    assert (
        main(
            [
                "tune",
                "nyc_flights",
                "--entry-points",
                ENTRY_POINTS,
                "--lib",
                os.path.join(REPO, "lib", "smgluon"),
                "--root",
                str(tmp_path / "root"),
                "--max-jobs",
                "2",
                "--seed",
                "1",
                "--hp",
                "epochs=1",
                "--hp",
                "max_train_samples=4000",
                "--train",
                data["train"],
                "--test",
                data["test"],
                "--output",
                str(out),
            ]
        )
        == 0
    )
    stdout = capsys.readouterr().out
    header = next(line for line in stdout.splitlines() if line.lstrip().startswith("#"))  # the trials table
    assert "validation_rmse" in header
    with open(out / "trials.csv", newline="") as f:
        records = list(csv.DictReader(f))
    assert len(records) == 2 and all(r["status"] == "Completed" for r in records)
    assert all(10 < float(r["validation_rmse"]) < 80 for r in records)


class _Group:
    """Workers in threads whose allreduce sums through a barrier, in float32 as the servers add."""

    def __init__(self, size):
        import threading

        self.size, self.barrier, self.slots = size, threading.Barrier(size), [None] * size

    def worker(self, rank):
        group = self

        class Worker:
            distributed, num_workers = True, group.size

            def allreduce(self, values):
                group.slots[rank] = np.asarray(values, dtype=np.float32)
                group.barrier.wait()
                total = np.sum(group.slots, axis=0).astype(np.float64)
                group.barrier.wait()  # every worker has read the sum before the next call writes
                return total

        worker = Worker()
        worker.rank = rank
        return worker


def test_preprocessing_fit_over_sharded_workers_equals_the_fit_on_all_rows(data):
    import threading

    table = nyc_flights.read_channel(data["train"])
    halves = [{k: v[: len(v) // 3] for k, v in table.items()}, {k: v[len(v) // 3 :] for k, v in table.items()}]
    halves[1]["dest"] = halves[1]["dest"].copy()
    halves[1]["dest"][0] = "ZZZ"  # a value only the second worker holds
    whole = {k: np.concatenate([halves[0][k], halves[1][k]]) for k in table}
    numeric = nyc_flights.numeric_features(nyc_flights.HYPERPARAMETERS.defaults())
    group, fitted = _Group(2), [None, None]

    def fit(rank):
        part = halves[rank]
        fitted[rank] = tabular.Preprocessor.fit(
            part, schema.CATEGORICAL, numeric, part["dep_delay"], workers=group.worker(rank)
        )

    threads = [threading.Thread(target=fit, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    expected = tabular.Preprocessor.fit(whole, schema.CATEGORICAL, numeric, whole["dep_delay"])
    for pre in fitted:
        assert pre.vocabularies == expected.vocabularies and "ZZZ" in pre.vocabularies["dest"]
        assert pre.flags == expected.flags
        for name, stats in expected.numeric.items():
            assert pre.numeric[name] == pytest.approx(stats, rel=1e-5), name
        assert pre.target == pytest.approx(expected.target, rel=1e-5)


def test_sharded_files_with_dist_async_are_refused_naming_the_fix(data, monkeypatch):
    class AsyncWorkers:
        distributed, combines, rank, num_workers = True, False, 0, 2
        kv = type("KV", (), {"type": "dist_async"})()

    monkeypatch.setenv("SM_INPUT_DATA_CONFIG", json.dumps({"train": {"S3DistributionType": "ShardedByS3Key"}}))
    hps = nyc_flights.HYPERPARAMETERS.parse_dict({"max_train_samples": 500})
    with pytest.raises(Exception, match="kvstore dist_async cannot combine: use kvstore dist_sync"):
        nyc_flights.load_data(dict(data), hps, AsyncWorkers())
    with pytest.raises(ValueError, match="dist_async"):
        tabular.allgather_strings(AsyncWorkers(), "x")


@pytest.mark.slow
def test_local_endpoint_answers_records_and_csv_rows_and_names_a_missing_field(data, tmp_path):
    from botocore.exceptions import ClientError
    from conftest import REPO
    from local_helpers import NoInternet, live_processes_under, mxnet_estimator
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import CSVSerializer

    from smgluon_local import ProcessSession

    with NoInternet() as guard:
        session = ProcessSession(root_dir=str(tmp_path / "root"))
        est = mxnet_estimator(
            session,
            "nyc_flights.py",
            source_dir=ENTRY_POINTS,
            dependencies=[os.path.join(REPO, "lib", "smgluon")],
            output_path="file://" + str(tmp_path / "out"),
            hyperparameters=dict(FAST, epochs=1),
        )
        est.fit({"train": "file://" + data["train"], "test": "file://" + data["test"]})
        predictor = est.deploy(initial_instance_count=1, instance_type="local")
        try:
            answer = predictor.predict([RECORD, dict(RECORD, dest="ZZZ", carrier="QQ")])
            assert len(answer["predictions"]) == 2 and all(np.isfinite(answer["predictions"]))
            rows = Predictor(
                predictor.endpoint_name,
                sagemaker_session=session,
                serializer=CSVSerializer(),
                deserializer=JSONDeserializer(),
            )
            row = ",".join("" if RECORD[k] is None else str(RECORD[k]) for k in schema.FEATURES)
            assert rows.predict(row)["predictions"] == pytest.approx(answer["predictions"][:1], abs=1e-3)
            with pytest.raises(ClientError, match="the required field 'carrier' is missing"):
                predictor.predict({k: v for k, v in RECORD.items() if k != "carrier"})
            assert len(predictor.predict(RECORD)["predictions"]) == 1  # still serving
        finally:
            predictor.delete_endpoint()
    assert guard.attempts == []
    assert live_processes_under(session.root_dir) == []
