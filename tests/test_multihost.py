"""Multi-host parameter-server training in local mode: N hosts, no Docker, no hangs.

Fast tests cover the pieces (host names, shards, ports, errors); the slow ones
run real 2-host jobs through the SageMaker SDK on small real data: the
container's roles and variables, ShardedByS3Key, MNIST accuracy against one
host, combined metrics, and faults (a killed worker, a killed server) that
must fail the job within the bound and leave no process behind.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time

import numpy as np
import pytest
from local_helpers import FIXTURES, REPO, ROLE, live_processes_under

from smgluon import distributed
from smgluon_local import cluster, hostnames, ports
from smgluon_local.cluster import FAULT_BOUND_S
from smgluon_local.host_tree import prepare_host, shard_files
from smgluon_local.toolkit import PS_PORT_ENV
from smgluon_local.training_env import host_env

LIB = os.path.join(REPO, "lib", "smgluon")
PS = {"parameter_server": {"enabled": True}}


# ---------------------------------------------------------------- host names


def _python(env, code):
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_host_names_resolve_to_loopback_in_job_processes_only(tmp_path):
    env = dict(os.environ)
    env.update(hostnames.job_environment(str(tmp_path), ["algo-1", "algo-2"], env))
    code = (
        "import socket; print(socket.gethostbyname('algo-2'), socket.gethostbyname('ALGO-1'), "
        "socket.getaddrinfo('algo-1', 8000)[0][4][0], socket.gethostbyname_ex('algo-2')[2], "
        "socket.gethostbyname('localhost'))"
    )
    result = _python(env, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["127.0.0.1", "127.0.0.1", "127.0.0.1", "['127.0.0.1']", "127.0.0.1"]
    # This process (and the machine) is unchanged: no /etc/hosts edit, no patched socket here.
    assert not hostnames.is_installed()
    assert "algo-2" not in open("/etc/hosts").read()


def test_an_existing_sitecustomize_still_runs(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "sitecustomize.py").write_text("import os\nos.environ['OTHER_SITECUSTOMIZE'] = 'ran'\n")
    env = dict(os.environ, PYTHONPATH=str(other))
    env.update(hostnames.job_environment(str(tmp_path / "job"), ["algo-1"], env))
    result = _python(
        env, "import os, socket; print(os.environ.get('OTHER_SITECUSTOMIZE'), socket.gethostbyname('algo-1'))"
    )
    assert result.stdout.split() == ["ran", "127.0.0.1"], result.stderr


def test_a_host_starting_while_the_next_hosts_environment_is_written_reads_a_whole_sitecustomize(tmp_path):
    # Hosts start one after another, each after its environment is made; a host's interpreter must never
    # find the job's sitecustomize empty or half-written (algo-1 then could not resolve the host names).
    import threading

    site = hostnames.write_site_dir(str(tmp_path))
    path = os.path.join(site, "sitecustomize.py")
    whole = open(path).read()
    stop = threading.Event()

    def rewrite():
        while not stop.is_set():
            hostnames.job_environment(str(tmp_path), ["algo-1", "algo-2"], {})

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        seen = {open(path).read() for _ in range(3000)}
    finally:
        stop.set()
        writer.join()
    assert seen == {whole}
    assert os.listdir(site) == ["sitecustomize.py"]  # no temporary file left beside it


# ---------------------------------------------------------------- shards


def test_shard_files_are_disjoint_contiguous_and_cover_every_file():
    for count in range(1, 12):
        files = ["part-%02d" % i for i in range(count)]
        for hosts in range(1, count + 1):
            shards = [shard_files(files, i, hosts) for i in range(hosts)]
            assert sum(shards, []) == files  # in order: disjoint, contiguous, complete
            assert max(map(len, shards)) - min(map(len, shards)) <= 1
    # Pairs that sort together stay together when the count divides evenly.
    pairs = sorted("part-%d-%s" % (i, kind) for i in range(4) for kind in ("images", "labels"))
    assert shard_files(pairs, 1, 2) == ["part-2-images", "part-2-labels", "part-3-images", "part-3-labels"]


def _file_channel(path, distribution):
    return {
        "ChannelName": "train",
        "DataSource": {"FileDataSource": {"FileUri": "file://" + path, "FileDataDistributionType": distribution}},
    }


def test_sharded_by_key_gives_each_host_its_own_files(tmp_path):
    data = tmp_path / "data"
    for rel in ("a/1.csv", "a/2.csv", "b/3.csv", "c.csv", "d.csv"):
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_text(rel)
    hosts = ["algo-1", "algo-2"]
    seen = []
    for host in hosts:
        host_dir = str(tmp_path / "job" / host)
        prepare_host(
            host_dir,
            host,
            hosts,
            "local",
            [_file_channel(str(data), "ShardedByS3Key")],
            {},
            str(tmp_path / "job"),
            None,
            None,
        )
        channel = os.path.join(host_dir, "input", "data", "train")
        files = sorted(os.path.relpath(os.path.join(d, f), channel) for d, _, fs in os.walk(channel) for f in fs)
        assert all(open(os.path.join(channel, f)).read() == f for f in files)
        seen.append(files)
        config = json.load(open(os.path.join(host_dir, "input", "config", "inputdataconfig.json")))
        assert config["train"]["S3DistributionType"] == "ShardedByS3Key"
    assert seen == [["a/1.csv", "a/2.csv"], ["b/3.csv", "c.csv", "d.csv"]]

    few = tmp_path / "few"
    few.mkdir()
    (few / "only.csv").write_text("x")
    with pytest.raises(ValueError, match="ShardedByS3Key over 2 hosts but holds 1 file"):
        prepare_host(
            str(tmp_path / "job2" / "algo-1"),
            "algo-1",
            hosts,
            "local",
            [_file_channel(str(few), "ShardedByS3Key")],
            {},
            str(tmp_path / "job2"),
            None,
            None,
        )


class _FakeWorkers:
    """Workers without a kvstore: rank and size, and min over the given counts."""

    def __init__(self, rank, num_workers, counts=None):
        self.rank, self.num_workers, self.counts = rank, num_workers, counts
        self.distributed, self.combines = num_workers > 1, True

    def min(self, value):
        return float(min(self.counts)) if self.counts else float(value)


def test_epoch_shards_are_disjoint_equal_cover_the_data_and_reshuffle():
    n, workers, seed = 1003, 3, 7
    samplers = [distributed.EpochSampler(n, _FakeWorkers(r, workers), seed) for r in range(workers)]
    assert {s.num_batches(50) for s in samplers} == {6}  # the same on every worker: dist_sync needs it
    first = [s.epoch() for s in samplers]
    assert {len(e) for e in first} == {n // workers}
    union = np.concatenate(first)
    assert len(set(union.tolist())) == len(union) == n - n % workers  # disjoint; all but n mod workers
    second = [s.epoch() for s in samplers]
    assert len(set(np.concatenate(second).tolist())) == n - n % workers
    assert set(first[0].tolist()) != set(second[0].tolist())  # a new split every epoch
    # Over a few epochs every sample is used.
    for _ in range(3):
        union = np.concatenate([union] + [s.epoch() for s in samplers])
    assert set(union.tolist()) == set(range(n))


def test_a_sampler_asked_for_a_later_epoch_shuffles_as_if_it_had_drawn_the_earlier_ones():
    for presharded in (False, True):
        straight = distributed.EpochSampler(1003, _FakeWorkers(1, 3), 7, presharded)
        orders = [straight.epoch() for _ in range(4)]
        resumed = distributed.EpochSampler(1003, _FakeWorkers(1, 3), 7, presharded)
        assert resumed.epoch(3).tolist() == orders[2].tolist()  # resumed after epoch 2's checkpoint
        assert resumed.epoch().tolist() == orders[3].tolist()
        with pytest.raises(ValueError, match="epoch 2 was asked for after epoch 4: a sampler only goes forward"):
            resumed.epoch(2)


def test_presharded_data_is_cut_to_the_smallest_worker():
    counts = [120, 97]
    samplers = [
        distributed.EpochSampler(c, _FakeWorkers(r, 2, counts), 1, presharded=True) for r, c in enumerate(counts)
    ]
    assert [s.per_worker for s in samplers] == [97, 97]
    assert [s.num_batches(10) for s in samplers] == [9, 9]
    order = samplers[0].epoch()
    assert len(order) == 97 and len(set(order.tolist())) == 97 and order.max() < 120


class _TwoWorkers(distributed.Workers):
    """A real Workers whose sum over the job adds the other worker's numbers (float32, as the servers add)."""

    def __init__(self, other):
        super().__init__(None)
        self.num_workers, self.combines, self.other = 2, True, other

    def _sum(self, local):
        return (np.float32(local) + np.float32(self.other)).astype(np.float64)


def _fingerprints(params):
    seen = []

    class Tap(_TwoWorkers):
        def _sum(self, local):
            seen.append(local)
            return local * 2

    Tap(None).check_same_parameters(params)
    return seen[0]


def test_workers_parameter_check_passes_in_step_and_names_what_drifted():
    import mxnet as mx
    from mxnet.gluon import nn

    net = nn.HybridSequential()
    net.add(nn.Dense(64, in_units=784, activation="relu"), nn.Dense(10, in_units=64))
    net.initialize(mx.init.Xavier())
    same = _fingerprints(net.collect_params())
    _TwoWorkers(same).check_same_parameters(net.collect_params(), "after epoch 1")  # in step: no error
    # The other worker took a summed gradient for one weight, as the dssm race did.
    weight = net[1].weight
    saved = weight.data().copy()
    weight.set_data(saved * 0.5 + 0.01)
    drifted = _fingerprints(net.collect_params())
    weight.set_data(saved)
    with pytest.raises(distributed.DistributedError, match=r"differ after epoch 3: %s\. .*init_trainer" % weight.name):
        _TwoWorkers(drifted).check_same_parameters(net.collect_params(), "after epoch 3")
    distributed.Workers(None).check_same_parameters(net.collect_params())  # one worker: nothing to compare


def test_workers_average_batch_norm_statistics_and_leave_weights_alone():
    import mxnet as mx
    from mxnet.gluon import nn

    net = nn.HybridSequential()
    net.add(nn.Dense(4, in_units=3), nn.BatchNorm(in_channels=4))
    net.initialize()
    params = net.collect_params()
    bn = net[1]
    bn.running_mean.set_data(mx.nd.array([1.0, 2.0, 3.0, 4.0]))
    bn.running_var.set_data(mx.nd.array([1.0, 1.0, 1.0, 1.0]))
    weight = net[0].weight.data().copy()
    # The other worker's running statistics, in the order average_aux_states sends them (names sorted).
    aux = sorted(name for name in params.keys() if params[name].grad_req == "null")
    other = {bn.running_mean.name: [3.0, 2.0, 1.0, 0.0], bn.running_var.name: [3.0, 3.0, 3.0, 3.0]}
    _TwoWorkers(np.concatenate([other[name] for name in aux])).average_aux_states(params)
    assert bn.running_mean.data().asnumpy().tolist() == [2.0, 2.0, 2.0, 2.0]
    assert bn.running_var.data().asnumpy().tolist() == [2.0, 2.0, 2.0, 2.0]
    assert (net[0].weight.data() == weight).asnumpy().all()  # trained parameters are the optimizer's business


def test_training_plan_counts_batches_and_names_a_share_too_small(monkeypatch):
    from smgluon.channels import ChannelError

    monkeypatch.delenv("SM_INPUT_DATA_CONFIG", raising=False)
    sampler, num_batches = distributed.training_plan(_FakeWorkers(1, 2), 1003, 7, 50)
    assert num_batches == 10 and sampler.per_worker == 501 and not sampler.presharded
    with pytest.raises(
        ChannelError,
        match=r"250 training ratings per worker \(2 workers\) for batch_size 300: "
        r"lower batch_size or add data",
    ):
        distributed.training_plan(_FakeWorkers(0, 2), 500, 7, 300, unit="training ratings")
    # a channel the service sharded: this host's files are its shard
    monkeypatch.setenv("SM_INPUT_DATA_CONFIG", json.dumps({"train": {"S3DistributionType": "ShardedByS3Key"}}))
    sampler, _ = distributed.training_plan(_FakeWorkers(0, 2, [120, 97]), 120, 7, 10)
    assert sampler.presharded and sampler.per_worker == 97


def test_evaluation_shard_is_this_workers_slice():
    x, y = np.arange(11), np.arange(11) * 10
    parts = [distributed.evaluation_shard((x, y), _FakeWorkers(r, 2)) for r in range(2)]
    assert np.concatenate([p[0] for p in parts]).tolist() == x.tolist()
    assert (parts[1][1] == parts[1][0] * 10).all()
    alone = distributed.evaluation_shard((x, y), _FakeWorkers(0, 1))
    assert alone[0] is x and alone[1] is y


def test_evaluation_shards_cover_everything():
    for n in (0, 1, 5, 2000, 2001):
        for workers in (1, 2, 3):
            bounds = [distributed.shard_bounds(n, r, workers) for r in range(workers)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))


def test_sharded_channels_come_from_the_input_data_config():
    config = {"train": {"S3DistributionType": "ShardedByS3Key"}, "test": {"S3DistributionType": "FullyReplicated"}}
    assert distributed.sharded_channels({"SM_INPUT_DATA_CONFIG": json.dumps(config)}) == {"train"}
    assert distributed.sharded_channels({}) == set()


def test_a_distributed_kvstore_without_the_parameter_server_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DMLC_ROLE", raising=False)
    with pytest.raises(distributed.DistributedError, match="parameter_server"):
        distributed.create_kvstore("dist_sync")


def test_jobs_get_distinct_free_ports():
    taken = [ports.free_port() for _ in range(20)]
    try:
        assert len(set(taken)) == 20
        assert all(20000 <= p < 32768 for p in taken)  # below the ephemeral range ps-lite's nodes use
    finally:
        for port in taken:
            ports.release_port(port)


def test_a_job_takes_a_scheduler_port_only_when_its_parameter_server_needs_one(tmp_path):
    taken = []

    def ps_port():
        taken.append(20123)
        return 20123

    hosts = ["algo-1", "algo-2"]
    base = dict(os.environ)

    def env_for(hyperparameters):
        return host_env(
            str(tmp_path), hosts, 1, str(tmp_path / "algo-2"), "local", hyperparameters, base, str(tmp_path), ps_port
        )

    plain = env_for({})
    assert taken == [] and PS_PORT_ENV not in plain and "DMLC_NODE_HOST" not in plain
    assert json.loads(plain[hostnames.HOSTS_ENV]) == hosts
    ps = env_for({"sagemaker_parameter_server_enabled": "true"})
    assert ps[PS_PORT_ENV] == "20123" and ps["DMLC_NODE_HOST"] == hostnames.LOOPBACK
    # A port the user chose (the _ps_port hyperparameter) is left to the toolkit.
    chosen = env_for({"sagemaker_parameter_server_enabled": "true", "_ps_port": "9000"})
    assert PS_PORT_ENV not in chosen and taken == [20123]


# ---------------------------------------------------------------- real jobs (slow)


@pytest.fixture
def session(tmp_path):
    from smgluon_local import ProcessSession

    return ProcessSession(root_dir=str(tmp_path / "root"), log_stream=False)


def _estimator(session, entry_point, source_dir, instance_count=2, **kwargs):
    from sagemaker.mxnet import MXNet

    return MXNet(
        entry_point=entry_point,
        source_dir=source_dir,
        dependencies=[LIB],
        role=ROLE,
        instance_count=instance_count,
        instance_type="local",
        framework_version="1.9.0",
        py_version="py38",
        distribution=PS,
        sagemaker_session=session,
        **kwargs,
    )


def _job_dir(session, job_name):
    return os.path.join(session.root_dir, "jobs", job_name)


def _tar_members(path):
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _assert_no_process_left(session, job_name):
    assert cluster.job_processes(_job_dir(session, job_name)) == []
    assert live_processes_under(session.root_dir) == []


@pytest.mark.slow
def test_two_hosts_run_the_containers_roles_on_loopback_with_their_own_port(session, tmp_path):
    """Two 2-host jobs side by side: roles as the MXNet container starts them, names, ports, key shards."""
    from sagemaker.inputs import TrainingInput

    from smgluon_local.storage import uri_to_local_path

    data = tmp_path / "data"
    data.mkdir()
    names = ["part-%d.rec" % i for i in range(5)]
    for name in names:
        (data / name).write_text(name)
    channel = TrainingInput("file://" + str(data), distribution="ShardedByS3Key")
    jobs = [_estimator(session, "cluster_probe.py", FIXTURES) for _ in range(2)]
    for est in jobs:
        est.fit({"train": channel}, wait=False)
    for est in jobs:
        est.latest_training_job.wait(logs="None")

    ports = []
    for est in jobs:
        name = est.latest_training_job.name
        desc = session.describe_training_job(name)
        assert desc["TrainingJobStatus"] == "Completed"
        outputs = _tar_members(
            os.path.join(os.path.dirname(uri_to_local_path(est.model_data, session.local_s3)), "output.tar.gz")
        )
        probes = {h: json.loads(outputs["probe-%s.json" % h]) for h in ("algo-1", "algo-2")}
        for probe in probes.values():
            dmlc = probe["dmlc"]
            assert dmlc["DMLC_ROLE"] == "worker"
            assert dmlc["DMLC_NUM_WORKER"] == dmlc["DMLC_NUM_SERVER"] == "2"
            assert dmlc["DMLC_PS_ROOT_URI"] == "127.0.0.1"
            assert probe["resolved"] == {"algo-1": "127.0.0.1", "algo-2": "127.0.0.1"}
            assert probe["num_workers"] == 2
            assert probe["allreduce"] == [2.0, 1.0, 5.0]  # both workers, ranks 0+1, every file once
        # The scheduler on the first host, a server on every host (sagemaker_mxnet_container.training).
        assert probes["algo-1"]["roles"] == ["scheduler", "server"]
        assert probes["algo-2"]["roles"] == ["server"]
        assert {p["rank"] for p in probes.values()} == {0, 1}
        port = {p["dmlc"]["DMLC_PS_ROOT_PORT"] for p in probes.values()}
        assert len(port) == 1 and port != {"8000"}
        ports.append(port.pop())
        # ShardedByS3Key: every host its own files, together all of them.
        assert sorted(probes["algo-1"]["files"] + probes["algo-2"]["files"]) == names
        assert not set(probes["algo-1"]["files"]) & set(probes["algo-2"]["files"])
        # Only the first host writes the model; model.tar.gz is its model.
        assert _tar_members(uri_to_local_path(est.model_data, session.local_s3)) == {"model.txt": b"algo-1"}
        log = open(os.path.join(_job_dir(session, name), "job.log")).read()
        assert "algo-1 | probe algo-1 rank" in log and "algo-2 | probe algo-2 rank" in log
        assert all(re.match(r"^algo-[12] \| ", line) for line in log.splitlines())
        _assert_no_process_left(session, name)
    assert ports[0] != ports[1]  # jobs side by side never meet on one scheduler port


def _final(desc, name):
    return next(m["Value"] for m in desc["FinalMetricDataList"] if m["MetricName"] == name)


def _last_epoch_lines(log, host):
    lines = [line for line in log.splitlines() if line.startswith(host + " | metrics: epoch=")]
    return dict(kv.split("=") for kv in lines[-1].split("metrics: ")[1].split())


@pytest.mark.slow
def test_two_host_mnist_matches_one_host_with_combined_metrics(session, mnist_dirs):
    """2-host MNIST MLP (dist_sync, sharded by rank) within 1 point of the 1-host run on the same data."""
    import mnist_mlp

    channels = {"train": "file://" + mnist_dirs["train"], "test": "file://" + mnist_dirs["test"]}
    hps = {"epochs": 3, "log_interval": 0}
    runs = {
        n: _estimator(
            session,
            "mnist_mlp.py",
            os.path.join(REPO, "entry_points"),
            instance_count=n,
            hyperparameters=hps,
            metric_definitions=mnist_mlp.METRIC_DEFINITIONS,
        )
        for n in (1, 2)
    }
    for est in runs.values():
        est.fit(channels, wait=False)  # side by side
    for est in runs.values():
        est.latest_training_job.wait(logs="None")
    accuracy = {}
    for n, est in runs.items():
        desc = session.describe_training_job(est.latest_training_job.name)
        assert desc["TrainingJobStatus"] == "Completed"
        accuracy[n] = _final(desc, "validation_accuracy")
    assert accuracy[1] > 0.9
    assert abs(accuracy[2] - accuracy[1]) <= 0.01, accuracy

    name = runs[2].latest_training_job.name
    log = open(os.path.join(_job_dir(session, name), "job.log")).read()
    first, second = _last_epoch_lines(log, "algo-1"), _last_epoch_lines(log, "algo-2")
    # Summed over the workers: the whole test set's accuracy and the whole epoch's loss, on both hosts.
    for key in ("epoch", "train_loss", "train_accuracy", "validation_accuracy"):
        assert first[key] == second[key], key
    assert os.listdir(os.path.join(_job_dir(session, name), "algo-2", "model")) == []
    from smgluon_local.storage import uri_to_local_path

    assert sorted(_tar_members(uri_to_local_path(runs[2].model_data, session.local_s3))) == [
        "model-0000.params",
        "model-shapes.json",
        "model-symbol.json",
    ]
    _assert_no_process_left(session, name)


@pytest.mark.slow
def test_two_host_fmnist_cnn_trains_in_step_with_combined_metrics(session, mnist_small_dirs):
    """The CNN over two hosts (batch norm, dropout, cosine schedule): workers in step, the same metric lines."""
    import fmnist_cnn

    channels = {"train": "file://" + mnist_small_dirs["train"], "test": "file://" + mnist_small_dirs["test"]}
    est = _estimator(
        session,
        "fmnist_cnn.py",
        os.path.join(REPO, "entry_points"),
        hyperparameters={"epochs": 2, "log_interval": 0, "classes": "mnist"},
        metric_definitions=fmnist_cnn.METRIC_DEFINITIONS,
    )
    est.fit(channels, logs="None")
    name = est.latest_training_job.name
    desc = session.describe_training_job(name)
    assert desc["TrainingJobStatus"] == "Completed"
    assert _final(desc, "validation_accuracy") > 0.5  # 1,000 digits per host, 2 epochs (chance: 0.1)
    log = open(os.path.join(_job_dir(session, name), "job.log")).read()
    first, second = _last_epoch_lines(log, "algo-1"), _last_epoch_lines(log, "algo-2")
    for key in ("epoch", "train_loss", "train_accuracy", "validation_accuracy"):
        assert first[key] == second[key], key
    assert first["epoch"] == "2"  # both epochs passed the workers' parameter check
    from smgluon_local.storage import uri_to_local_path

    assert "synset.txt" in _tar_members(uri_to_local_path(est.model_data, session.local_s3))
    _assert_no_process_left(session, name)


@pytest.mark.slow
def test_sharded_by_key_mnist_hosts_train_on_their_own_files_with_equal_batches(session, tmp_path):
    """Unequal shards (3000 and 2400 images): both workers run 24 batches of 100, no dist_sync hang."""
    import mnist_mlp
    from conftest import mnist_arrays
    from sagemaker.inputs import TrainingInput

    from smgluon.idx import write_idx

    x, y = mnist_arrays()
    train, test = tmp_path / "train", tmp_path / "test"
    train.mkdir()
    test.mkdir()
    for part, (start, stop) in enumerate([(0, 3000), (3000, 5400)]):
        write_idx(str(train / ("train-%d-images-idx3-ubyte.gz" % part)), x[start:stop])
        write_idx(str(train / ("train-%d-labels-idx1-ubyte.gz" % part)), y[start:stop])
    write_idx(str(test / "t10k-images-idx3-ubyte.gz"), x[8000:9000])
    write_idx(str(test / "t10k-labels-idx1-ubyte.gz"), y[8000:9000])
    est = _estimator(
        session,
        "mnist_mlp.py",
        os.path.join(REPO, "entry_points"),
        hyperparameters={"epochs": 2, "log_interval": 0},
        metric_definitions=mnist_mlp.METRIC_DEFINITIONS,
    )
    est.fit(
        {"train": TrainingInput("file://" + str(train), distribution="ShardedByS3Key"), "test": "file://" + str(test)}
    )
    name = est.latest_training_job.name
    desc = session.describe_training_job(name)
    assert desc["TrainingJobStatus"] == "Completed"
    assert _final(desc, "validation_accuracy") > 0.8
    for host, part in (("algo-1", 0), ("algo-2", 1)):
        channel = os.path.join(_job_dir(session, name), host, "input", "data", "train")
        assert sorted(os.listdir(channel)) == [
            "train-%d-images-idx3-ubyte.gz" % part,
            "train-%d-labels-idx1-ubyte.gz" % part,
        ]
    log = open(os.path.join(_job_dir(session, name), "job.log")).read()
    # Samples per epoch over both workers: 2 x 24 batches x 100 (the larger shard cut to the smaller's size).
    last = _last_epoch_lines(log, "algo-1")
    assert abs(float(last["samples_per_sec"]) * float(last["epoch_seconds"]) - 4800) < 5
    _assert_no_process_left(session, name)


@pytest.mark.slow
def test_two_host_movielens_trains_with_combined_metrics(session, tmp_path):
    import movielens_mf
    from conftest import write_movielens_slice

    data = str(tmp_path / "ml")
    write_movielens_slice(data)
    est = _estimator(
        session,
        "movielens_mf.py",
        os.path.join(REPO, "entry_points"),
        hyperparameters={"epochs": 2, "model": "biased"},
        metric_definitions=movielens_mf.METRIC_DEFINITIONS,
    )
    est.fit({"training": "file://" + data})
    desc = session.describe_training_job(est.latest_training_job.name)
    assert desc["TrainingJobStatus"] == "Completed"
    assert 0.8 < _final(desc, "validation_rmse") < 1.3
    log = open(os.path.join(_job_dir(session, est.latest_training_job.name), "job.log")).read()
    assert "training with dense gradients" in log  # MXNet 1.9.1's servers abort on row_sparse pushes
    first, second = _last_epoch_lines(log, "algo-1"), _last_epoch_lines(log, "algo-2")
    assert first["validation_rmse"] == second["validation_rmse"] and first["train_rmse"] == second["train_rmse"]
    _assert_no_process_left(session, est.latest_training_job.name)


@pytest.mark.slow
def test_two_host_movielens_blend_fails_naming_the_fix(session, tmp_path):
    # the default model trains AutoRec by full-batch L-BFGS, on one host only
    from conftest import write_movielens_slice
    from sagemaker.exceptions import UnexpectedStatusException

    data = str(tmp_path / "ml")
    write_movielens_slice(data)
    est = _estimator(session, "movielens_mf.py", os.path.join(REPO, "entry_points"), hyperparameters={"epochs": 1})
    with pytest.raises(UnexpectedStatusException):
        est.fit({"training": "file://" + data}, logs="None")
    desc = session.describe_training_job(est.latest_training_job.name)
    assert desc["TrainingJobStatus"] == "Failed"
    assert "model blend trains AutoRec by full-batch L-BFGS on one host" in desc["FailureReason"]
    assert "instance_count=1" in desc["FailureReason"]
    _assert_no_process_left(session, est.latest_training_job.name)


def _wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s" % what)


def _process(job_dir, host, match):
    """The job's Python process on ``host`` (not a shell around one) for which ``match(env, cmdline)``."""
    for proc in cluster.job_processes(job_dir):
        try:
            env, cmdline = proc.environ(), proc.cmdline()
        except Exception:
            continue
        on_host = env.get("SAGEMAKER_BASE_DIR") == os.path.join(job_dir, host)
        if on_host and cmdline and cmdline[0] == sys.executable and match(env, " ".join(cmdline)):
            return proc
    return None


def _kill_and_time(session, est, host, match, what):
    from sagemaker.exceptions import UnexpectedStatusException

    name = est.latest_training_job.name
    job_dir = _job_dir(session, name)
    victim = _wait_for(lambda: _process(job_dir, host, match), 120, what)
    _wait_for(
        lambda: (
            "epoch=2 " in open(os.path.join(job_dir, "job.log")).read()
            or "ready" in open(os.path.join(job_dir, "job.log")).read()
        ),
        120,
        "training under way",
    )
    victim.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    while session.describe_training_job(name)["TrainingJobStatus"] == "InProgress":
        assert time.monotonic() - killed < FAULT_BOUND_S, "the job did not fail within the bound"
        time.sleep(0.1)
    failed_after = time.monotonic() - killed
    desc = session.describe_training_job(name)
    assert desc["TrainingJobStatus"] == "Failed"
    with pytest.raises(UnexpectedStatusException, match=host):
        est.latest_training_job.wait(logs="None")
    _assert_no_process_left(session, name)
    return desc["FailureReason"], failed_after


@pytest.mark.slow
def test_a_killed_worker_fails_the_job_within_the_bound_and_nothing_survives(session, mnist_small_dirs):
    est = _estimator(
        session, "mnist_mlp.py", os.path.join(REPO, "entry_points"), hyperparameters={"epochs": 1000, "log_interval": 0}
    )
    est.fit({"train": "file://" + mnist_small_dirs["train"], "test": "file://" + mnist_small_dirs["test"]}, wait=False)
    assert session.describe_training_job(est.latest_training_job.name)["TrainingJobStatus"] == "InProgress"
    reason, seconds = _kill_and_time(
        session,
        est,
        "algo-2",
        lambda env, cmd: env.get("DMLC_ROLE") == "worker" and "mnist_mlp.py" in cmd,
        "algo-2's worker",
    )
    assert reason.startswith("algo-2: ") and "ExitCode -9" in reason and "SIGKILL" in reason
    assert seconds < FAULT_BOUND_S


@pytest.mark.slow
def test_a_killed_parameter_server_fails_the_job_instead_of_stalling_it(session):
    est = _estimator(session, "cluster_probe.py", FIXTURES, hyperparameters={"sleep_seconds": 300})
    est.fit({}, wait=False)
    reason, _ = _kill_and_time(
        session,
        est,
        "algo-1",
        lambda env, cmd: env.get("DMLC_ROLE") == "server" and "import mxnet" in cmd,
        "algo-1's server",
    )
    assert reason.startswith("algo-1: AlgorithmError: its parameter-server server process was killed by SIGKILL")


@pytest.mark.slow
def test_cli_train_takes_instance_count(tmp_path, mnist_small_dirs, capsys):
    from smgluon_local.cli import main

    root, out = str(tmp_path / "root"), str(tmp_path / "out")
    assert (
        main(
            [
                "train",
                "mnist_mlp",
                "--instance-count",
                "2",
                "--hp",
                "epochs=1",
                "--train",
                mnist_small_dirs["train"],
                "--test",
                mnist_small_dirs["test"],
                "--output",
                out,
                "--root",
                root,
                "--entry-points",
                os.path.join(REPO, "entry_points"),
            ]
        )
        == 0
    )
    stdout = capsys.readouterr().out
    assert "algo-2 | metrics: epoch=1" in stdout and "validation_accuracy = " in stdout
    model = stdout.strip().splitlines()[-1].split("model: ")[1]
    assert os.path.isfile(model)
    assert live_processes_under(root) == []
    with pytest.raises(SystemExit):
        main(["train", "mnist_mlp", "--instance-count", "0", "--train", mnist_small_dirs["train"]])
    assert "not a positive integer" in capsys.readouterr().err
