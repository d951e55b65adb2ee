"""Bring-your-own-model benchmark (issue 17): a 224x224 image classifier through local endpoints.

The model is Gluon's ``resnet18_v1`` with seeded random weights (no pretrained weights
can be downloaded here; the cost of a forward pass does not depend on the weights),
saved the model zoo's way (``ResNet-18-symbol.json``, ``ResNet-18-0126.params``, a
1,000-line synset) and packaged twice by ``smgluon package`` from the same checkpoint:

- ``classifier``: with ``--image-classifier`` (smgluon.image_classifier in ``code/``):
  each request is one JPEG (a 448x336 picture, the lab's first photo's size), decoded,
  resized, cropped and normalised in the worker, answered with the top-5 labels;
- ``default``: for the container's default Module handler (an entry point without
  ``model_fn``): each request is the same picture already decoded and preprocessed,
  a 1x3x224x224 float32 ``application/x-npy`` array, answered with the 1,000 scores.

Measured, for each endpoint:

- model load time: ``model_fn`` in this process (the image classifier's, and the
  container's default one), median of ``--load-repeats``; and the wall time of
  ``MXNetModel.deploy()`` until the server answers (model server start included);
- requests/s, p50 and p99 with wrk at 1 and 8 connections (``--rounds`` short
  alternating runs after ``--settle`` seconds of load, as ``bench/serving.py`` does,
  with its wrk script and CPU accounting), and the endpoint's CPU time per request;
- images/s through batch transform on a folder of ``--transform-images`` JPEGs
  (``model.transformer(...).transform(data=..., content_type="image/jpeg")``: one request
  per file; the job's wall time, model server start included).

Usage, from the repository root (about 5 minutes; needs ``apt-get install -y wrk`` and Java)::

    .venv/bin/python bench/byom.py [--duration 5] [--rounds 4] [--settle 10]
    .venv/bin/python bench/byom.py --check    # build, deploy, one request each, no timing

Results go to the top of ``bench/results/byom.md`` (``--no-write`` prints them only) and the
raw numbers to ``bench/results/byom.json``.
"""

import argparse
import datetime
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # run as a script: `python bench/byom.py`
    sys.path.insert(0, REPO)

RESULTS = os.path.join(REPO, "bench", "results", "byom.md")
RESULTS_JSON = os.path.join(REPO, "bench", "results", "byom.json")
ROLE = "arn:aws:iam::111111111111:role/bench"
SHAPE = (1, 3, 224, 224)
OPTIONS = {"scale": 1 / 255.0, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "resize": 256}
EMPTY_ENTRY_POINT = '"""No model_fn, input_fn or transform_fn: the container\'s default Module handler serves."""\n'


def build_models(work):
    """The zoo-style checkpoint, packaged for both endpoints; returns the archives and the model folders."""
    import mxnet as mx
    from mxnet.gluon.model_zoo import vision

    from smgluon_local.package import package_model

    mx.random.seed(0)
    net = vision.get_model("resnet18_v1")
    net.initialize(mx.init.MSRAPrelu())
    net.hybridize()
    net(mx.nd.zeros(SHAPE))
    prefix = os.path.join(work, "ResNet-18")
    net.export(prefix, epoch=126)
    synset = os.path.join(work, "synset.txt")
    with open(synset, "w") as f:
        f.writelines("n%08d class %d\n" % (4000000 + i, i) for i in range(1000))
    entry_point = os.path.join(work, "default_handler.py")
    with open(entry_point, "w") as f:
        f.write(EMPTY_ENTRY_POINT)
    tars = {
        "classifier": package_model(
            prefix,
            os.path.join(work, "classifier.tar.gz"),
            input_shape=SHAPE,
            synset=synset,
            image_classifier=True,
            classifier_options=OPTIONS,
        )["path"],
        "default": package_model(
            prefix, os.path.join(work, "default.tar.gz"), input_shape=SHAPE, synset=synset, entry_point=entry_point
        )["path"],
    }
    dirs = {}
    for name, tar in tars.items():
        from smgluon_local.tarfiles import safe_extract

        dirs[name] = os.path.join(work, name)
        safe_extract(tar, dirs[name])
    return tars, dirs


def picture(width=448, height=336, seed=0):
    """A smooth colour picture with some texture, as JPEG bytes (quality 90)."""
    import numpy as np
    from PIL import Image

    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([127 + 100 * np.sin(x / (17 + 5 * c) + y / (23 + 3 * c)) for c in range(3)], axis=2)
    rgb += rng.normal(0, 12, rgb.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def bodies(jpeg, config, work):
    """The request bodies: the JPEG, and the same picture decoded and preprocessed as NPY."""
    from smgluon import image_classifier, images
    from smgluon.serving import encode_npy

    x = image_classifier.preprocess(images.decode_image(jpeg, colour=True), SHAPE, config)[None]
    paths = {"classifier": os.path.join(work, "picture.jpg"), "default": os.path.join(work, "picture.npy")}
    with open(paths["classifier"], "wb") as f:
        f.write(jpeg)
    with open(paths["default"], "wb") as f:
        f.write(encode_npy(x))
    return paths


CONTENT_TYPES = {"classifier": "image/jpeg", "default": "application/x-npy"}


def load_seconds(dirs, repeats):
    """model_fn's time in this process, median of ``repeats``: the image classifier's and the container's default."""
    from sagemaker_mxnet_serving_container.default_inference_handler import DefaultMXNetInferenceHandler

    from smgluon import image_classifier

    loaders = {"classifier": image_classifier.model_fn, "default": DefaultMXNetInferenceHandler().default_model_fn}
    times = {}
    for name, load in loaders.items():
        samples = []
        for _ in range(repeats):
            tic = time.perf_counter()
            load(dirs[name])
            samples.append(time.perf_counter() - tic)
        times[name] = statistics.median(samples)
    return times


def deploy(session, name, tar):
    from sagemaker.mxnet import MXNetModel

    entry_point = "inference.py" if name == "classifier" else "default_handler.py"
    model = MXNetModel(
        model_data="file://" + tar,
        entry_point=entry_point,
        role=ROLE,
        framework_version="1.9.0",
        py_version="py38",
        sagemaker_session=session,
        name="byom-" + name,
    )
    tic = time.time()
    predictor = model.deploy(initial_instance_count=1, instance_type="local")
    return predictor, session.endpoint_url(predictor.endpoint_name), time.time() - tic


def ask(url, body_path, content_type):
    with open(body_path, "rb") as f:
        body = f.read()
    request = urllib.request.Request(
        url + "/invocations",
        data=body,
        method="POST",
        headers={"Content-Type": content_type, "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as r:
        return json.loads(r.read())


def check_answers(urls, paths):
    """Both endpoints name the same best class for the picture (before any load)."""
    import numpy as np

    classifier = ask(urls["classifier"], paths["classifier"], CONTENT_TYPES["classifier"])
    default = np.asarray(ask(urls["default"], paths["default"], CONTENT_TYPES["default"]))
    best = int(default.reshape(-1).argmax())
    if classifier["predictions"] != [best]:
        raise RuntimeError(
            "the endpoints disagree: the classifier says %s, the default handler %d" % (classifier["predictions"], best)
        )
    return best


def transform_images_per_s(session, tar, work, count):
    """Images/s through a batch transform job over ``count`` JPEGs, one request per file (the job's whole time)."""
    from sagemaker.mxnet import MXNetModel

    folder = os.path.join(work, "jpegs")
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        with open(os.path.join(folder, "%04d.jpg" % i), "wb") as f:
            f.write(picture(seed=i))
    model = MXNetModel(
        model_data="file://" + tar,
        entry_point="inference.py",
        role=ROLE,
        framework_version="1.9.0",
        py_version="py38",
        sagemaker_session=session,
        name="byom-transform",
    )
    transformer = model.transformer(
        instance_count=1,
        instance_type="local",
        accept="application/json",
        output_path="file://" + os.path.join(work, "transform-out"),
    )
    tic = time.time()
    transformer.transform(data="file://" + folder, content_type="image/jpeg", wait=True, logs=False)
    return count / (time.time() - tic)


def summarise(runs):
    table = {}
    for (name, conns), records in runs.items():
        table[(name, conns)] = {
            "requests_per_s": statistics.median(r["requests_per_s"] for r in records),
            "p50_ms": statistics.median(r["p50_us"] for r in records) / 1000,
            "p99_ms": statistics.median(r["p99_us"] for r in records) / 1000,
            "server_cpu_ms": statistics.median(sum(r["server_cpu_us_per_request"].values()) for r in records) / 1000,
            "others_share": statistics.median(r["others_cpu_share"] for r in records),
        }
    return table


def render(args, table, info, vers, load_s, deploy_s, transform, sizes, started, load_after):
    lines = ["## %s" % started.strftime("%Y-%m-%d %H:%M UTC"), ""]
    shared = max((row["others_share"] for row in table.values()), default=0.0)
    lines += [
        "- machine: %d cores, %s, %.1f GiB RAM; load average (1 min) %.2f before, %.2f after (this "
        "benchmark's own processes included); other jobs used up to %.0f%% of the CPU during the measured runs"
        % (info["nproc"], info["cpu"], info["ram_gib"], info["load_before"][0], load_after, 100 * shared),
        "- versions: %s" % ", ".join("%s %s" % kv for kv in sorted(vers.items())),
        "- command: `python bench/byom.py %s`" % " ".join(args.argv),
        "- model: resnet18_v1, seeded random weights, 1x3x224x224; request bodies: JPEG %d bytes (448x336), "
        "NPY %d bytes" % (sizes["classifier"], sizes["default"]),
        "",
        "| endpoint | request | model_fn (s) | deploy (s) | connections | requests/s | p50 (ms) | p99 (ms) "
        "| server CPU (ms/request) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (name, conns), row in sorted(table.items()):
        lines.append(
            "| %s | %s | %.2f | %.1f | %d | %.1f | %.1f | %.1f | %.1f |"
            % (
                name,
                CONTENT_TYPES[name],
                load_s[name],
                deploy_s[name],
                conns,
                row["requests_per_s"],
                row["p50_ms"],
                row["p99_ms"],
                row["server_cpu_ms"],
            )
        )
    lines += [
        "",
        "Batch transform, %d JPEGs (one request each, model server start included): %.1f images/s"
        % (args.transform_images, transform),
        "",
    ]
    return "\n".join(lines)


def write_summary(args, table, load_s, deploy_s, transform, info):
    """bench/results/byom.summary.json, for bench/results.md."""
    from bench.summary import write_summary as write

    labels = {
        "classifier": "resnet18_v1 image classifier, one JPEG per request",
        "default": "resnet18_v1, default handler, pre-decoded NPY",
    }
    serving = [
        {
            "workload": labels[name],
            "concurrency": conns,
            "requests_per_sec": row["requests_per_s"],
            "p50_ms": row["p50_ms"],
            "p99_ms": row["p99_ms"],
        }
        for (name, conns), row in sorted(table.items())
    ]
    overheads = [{"what": "model_fn, %s" % labels[name], "seconds": load_s[name]} for name in sorted(load_s)]
    overheads += [{"what": "deploy() until served, %s" % labels[name], "seconds": deploy_s[name]} for name in deploy_s]
    notes = [
        "batch transform: %.1f JPEGs/s over %d files (one request each, model server start included)"
        % (transform, args.transform_images),
        "seeded random weights (no pretrained weights offline); median of %d rounds" % args.rounds,
    ]
    write(
        "byom",
        "Bring your own model: a 224x224 classifier through local endpoints and batch transform",
        "bench/results/byom.md",
        serving=serving,
        overheads=overheads,
        notes=notes,
        load=info["load_before"][0],
    )


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=int, default=5, help="seconds per measured wrk run (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="seconds of warm-up before each measured run (default 1)")
    p.add_argument("--settle", type=int, default=10, help="seconds of load on each endpoint first (default 10)")
    p.add_argument("--rounds", type=int, default=4, help="measured runs per endpoint and concurrency (default 4)")
    p.add_argument("--connections", default="1,8", help="comma-separated wrk connection counts (default 1,8)")
    p.add_argument("--load-repeats", type=int, default=3, help="model_fn timings per endpoint (default 3)")
    p.add_argument("--transform-images", type=int, default=200, help="JPEGs in the batch transform (default 200)")
    p.add_argument("--check", action="store_true", help="build, deploy and ask each endpoint once; no timing")
    p.add_argument("--no-write", action="store_true", help="print the results only")
    args = p.parse_args(argv)
    args.argv = argv
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    from bench.serving import (
        WRK_HINT,
        WRK_LUA,
        machine,
        measured_wrk,
        server_processes,
        versions,
        write_results,
        wrk,
    )

    if not args.check and not shutil.which("wrk"):
        print("byom benchmark skipped: " + WRK_HINT, file=sys.stderr)
        return 0
    from smgluon_local import ProcessSession
    from smgluon_local.endpoint import find_java

    find_java()
    started = datetime.datetime.now(datetime.timezone.utc)
    work = tempfile.mkdtemp(prefix="smgluon-byom-")
    predictors, runs = [], {}
    try:
        tars, dirs = build_models(work)
        with open(os.path.join(dirs["classifier"], "image-classifier.json")) as f:
            paths = bodies(picture(), json.load(f), work)
        sizes = {name: os.path.getsize(path) for name, path in paths.items()}
        session = ProcessSession(root_dir=os.path.join(work, "root"), log_stream=False)
        urls, deploy_s, processes = {}, {}, {}
        for name in ("classifier", "default"):
            predictor, urls[name], deploy_s[name] = deploy(session, name, tars[name])
            predictors.append(predictor)
            processes[name] = server_processes(session, predictor.endpoint_name)
        best = check_answers(urls, paths)
        if args.check:
            print("both endpoints answer class %d for the picture" % best)
            transform_images_per_s(session, tars["classifier"], work, 3)
            print("batch transform of 3 JPEGs: %s" % sorted(os.listdir(os.path.join(work, "transform-out"))))
            return 0
        info, vers = machine(), versions()
        load_s = load_seconds(dirs, args.load_repeats)
        lua = os.path.join(work, "post.lua")
        with open(lua, "w") as f:
            f.write(WRK_LUA)
        for name in urls:
            os.environ["SMGLUON_WRK_CONTENT_TYPE"] = CONTENT_TYPES[name]
            wrk(urls[name], paths[name], lua, 8, args.settle)
        for conns in [int(c) for c in args.connections.split(",")]:
            for round_ in range(args.rounds):
                # short runs, the endpoints in turn: both see much the same load from other jobs
                for name in list(urls) if round_ % 2 == 0 else list(urls)[::-1]:
                    os.environ["SMGLUON_WRK_CONTENT_TYPE"] = CONTENT_TYPES[name]
                    wrk(urls[name], paths[name], lua, conns, args.warmup)
                    record = measured_wrk(urls[name], paths[name], lua, conns, args.duration, processes[name])
                    runs.setdefault((name, conns), []).append(record)
                    print(
                        "%-10s c=%d  %6.1f req/s  p50 %.1f ms  p99 %.1f ms"
                        % (name, conns, record["requests_per_s"], record["p50_us"] / 1000, record["p99_us"] / 1000),
                        flush=True,
                    )
        transform = transform_images_per_s(session, tars["classifier"], work, args.transform_images)
    finally:
        for predictor in predictors:
            predictor.delete_endpoint()
        shutil.rmtree(work, ignore_errors=True)
    table = summarise(runs)
    section = render(args, table, info, vers, load_s, deploy_s, transform, sizes, started, os.getloadavg()[0])
    print(section)
    if not args.no_write:
        raw = {
            "started": started.isoformat(),
            "machine": info,
            "versions": vers,
            "model_fn_s": load_s,
            "deploy_s": deploy_s,
            "transform_images_per_s": transform,
            "runs": {"%s c=%d" % k: [{x: r[x] for x in r if x != "text"} for r in v] for k, v in runs.items()},
        }
        write_results(section, raw, RESULTS, RESULTS_JSON, "Bring your own model", "bench/byom.py")
        write_summary(args, table, load_s, deploy_s, transform, info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
