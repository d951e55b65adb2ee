"""smgluon package: Module checkpoints, Gluon exports, Modules and HybridBlocks as model.tar.gz; every refusal.

The archives are loaded back the way the serving container does (its default Module handler,
or smgluon's image classifier script) in this process; test_byom.py serves them for real.
"""

import base64
import json
import os
import tarfile

import mxnet as mx
import numpy as np
import pytest
from byom_models import (
    BYOM_SCRIPT,
    ZOO_EPOCH,
    ZOO_OPTIONS,
    ZOO_SHAPE,
    digit_picture,
    fmnist_checkpoint,
    lab_scores,
    mnist_dict,
    picture_bytes,
    train_byom_module,
    zoo_checkpoint,
)
from PIL import Image
from sagemaker_mxnet_serving_container.default_inference_handler import DefaultModuleInferenceHandler

from smgluon import image_classifier
from smgluon.serving import RequestError, encode_npy, softmax
from smgluon_local import cli
from smgluon_local.package import PackageError, package_model


@pytest.fixture(scope="module")
def byom_module():
    return train_byom_module(epochs=3)


@pytest.fixture(scope="module")
def mlp_prefix(byom_module, tmp_path_factory):
    """The document's export: Module.save_checkpoint under a prefix of the user's choosing, epoch 3."""
    prefix = str(tmp_path_factory.mktemp("mlp") / "my-mlp")
    byom_module.save_checkpoint(prefix, 3)
    return prefix


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """resnet18_v1 from Gluon's model zoo, seeded, saved as ResNet-18-symbol.json / ResNet-18-0126.params."""
    return zoo_checkpoint(str(tmp_path_factory.mktemp("zoo")), "resnet18_v1", file_name="ResNet-18")


@pytest.fixture(scope="module")
def zoo_served(zoo, tmp_path_factory):
    prefix, synset = zoo
    root = tmp_path_factory.mktemp("zoo_served")
    package_model(
        prefix,
        str(root / "model.tar.gz"),
        input_shape=ZOO_SHAPE,
        synset=synset,
        image_classifier=True,
        classifier_options=ZOO_OPTIONS,
    )
    return image_classifier.model_fn(extract(str(root / "model.tar.gz"), str(root / "model")))


@pytest.fixture(scope="module")
def fmnist(tmp_path_factory, mnist_small_dirs):
    return fmnist_checkpoint(str(tmp_path_factory.mktemp("fmnist")), mnist_small_dirs)


def extract(archive, directory):
    with tarfile.open(archive) as tar:
        tar.extractall(directory)
    return directory


def members(archive):
    with tarfile.open(archive) as tar:
        return sorted(tar.getnames())


def classify(model, data, content_type="image/jpeg", accept="application/json"):
    body, ctype = image_classifier.transform_fn(model, data, content_type, accept)
    assert ctype == "application/json"
    return json.loads(body)


# ---------------------------------------------------------------- Module checkpoints and the default handler


def test_module_checkpoint_is_packaged_in_the_default_handler_layout(mlp_prefix, tmp_path):
    result = package_model(mlp_prefix, str(tmp_path / "model.tar.gz"), epoch=3, input_shape="1,1,28,28")
    assert members(result["path"]) == ["model-0000.params", "model-shapes.json", "model-symbol.json"]
    model_dir = extract(result["path"], str(tmp_path / "model"))
    with open(os.path.join(model_dir, "model-shapes.json")) as f:
        assert json.load(f) == [{"name": "data", "shape": [1, 1, 28, 28]}]
    # the container's own default handler loads it and answers for real digits
    handler = DefaultModuleInferenceHandler()
    module = handler.default_model_fn(model_dir)
    data = mnist_dict()["test_data"][:200]
    scores = handler.default_predict_fn(
        handler.default_input_fn(json.dumps(data.tolist()), "application/json", module), module
    )
    expected = mnist_dict()["test_label"][:200]
    assert np.mean(scores.asnumpy().argmax(axis=1) == expected) > 0.8


def test_input_shape_is_read_from_a_graph_whose_first_layer_fixes_it(mlp_prefix, tmp_path):
    # flatten -> FullyConnected(784 inputs): any 784 values; the only epoch on disk is taken
    result = package_model(mlp_prefix, str(tmp_path))  # a folder: model.tar.gz inside it
    assert result["input_shape"] == (1, 784) and result["output_shape"] == (1, 10)
    assert result["path"] == str(tmp_path / "model.tar.gz") and os.path.isfile(result["path"])


def test_input_shape_from_the_input_variable_or_the_one_size_the_params_fit(tmp_path, capsys):
    data = mx.sym.var("data", shape=(0, 1, 28, 28))  # 0: any batch size
    head = mx.sym.FullyConnected(mx.sym.flatten(data), num_hidden=10, name="fc")
    arg = {"fc_weight": mx.nd.zeros((10, 784)), "fc_bias": mx.nd.zeros((10,))}
    mx.model.save_checkpoint(str(tmp_path / "declared"), 0, head, arg, {})
    assert package_model(str(tmp_path / "declared"), str(tmp_path / "a.tar.gz"))["input_shape"] == (1, 1, 28, 28)
    # a valid 3x3 convolution, then a dense layer over its 8 x 26 x 26 outputs: only 28x28 pictures fit
    conv = mx.sym.Convolution(mx.sym.var("data"), kernel=(3, 3), num_filter=8, name="conv")
    head = mx.sym.FullyConnected(mx.sym.flatten(conv), num_hidden=10, name="fc")
    arg = {
        "conv_weight": mx.nd.zeros((8, 1, 3, 3)),
        "conv_bias": mx.nd.zeros((8,)),
        "fc_weight": mx.nd.zeros((10, 8 * 26 * 26)),
        "fc_bias": mx.nd.zeros((10,)),
    }
    mx.model.save_checkpoint(str(tmp_path / "conv"), 0, head, arg, {})
    capsys.readouterr()
    assert package_model(str(tmp_path / "conv"), str(tmp_path / "b.tar.gz"))["input_shape"] == (1, 1, 28, 28)
    assert capsys.readouterr().out == ""  # the sizes tried are not echoed by MXNet


def test_a_trained_module_and_its_entry_point_in_one_call(byom_module, tmp_path):
    result = package_model(byom_module, str(tmp_path / "model.tar.gz"), entry_point=BYOM_SCRIPT)
    assert result["input_shape"] == (1, 1, 28, 28)  # the Module's bound shape, batch 1
    assert members(result["path"]) == [
        "code",
        "code/byom_mnist.py",
        "model-0000.params",
        "model-shapes.json",
        "model-symbol.json",
    ]


def test_a_hybridblock_is_exported_with_one_forward_pass(tmp_path):
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Dense(16, activation="relu"), mx.gluon.nn.Dense(10))
    net.initialize()
    with pytest.raises(PackageError, match="pass input_shape"):
        package_model(net, str(tmp_path / "model.tar.gz"))
    result = package_model(net, str(tmp_path / "model.tar.gz"), input_shape=(1, 784))
    assert result["input_shape"] == (1, 784) and result["output_shape"] == (1, 10)


def test_several_epochs_need_one_chosen(byom_module, tmp_path):
    prefix = str(tmp_path / "mlp")
    byom_module.save_checkpoint(prefix, 1)
    byom_module.save_checkpoint(prefix, 2)
    with pytest.raises(PackageError, match=r"several epochs \(1, 2\): choose one with --epoch"):
        package_model(prefix, str(tmp_path / "model.tar.gz"))
    assert package_model(prefix, str(tmp_path / "model.tar.gz"), epoch=2)["output_shape"] == (1, 10)


# ---------------------------------------------------------------- refusals: nothing is written


def _refused(tmp_path, match, *args, **kwargs):
    out = tmp_path / "out" / "model.tar.gz"
    out.parent.mkdir(exist_ok=True)
    with pytest.raises(PackageError, match=match):
        package_model(*args, output=str(out), **kwargs)
    assert not out.exists() and os.listdir(out.parent) == []  # no archive, no temporary files


def _write_params(prefix, epoch, params):
    mx.nd.save("%s-%04d.params" % (prefix, epoch), params)


def _layer_names(mlp_prefix):
    """The MLP's weight and bias names: MXNet numbers unnamed layers per process, so they depend on test order."""
    arguments = mx.sym.load(mlp_prefix + "-symbol.json").list_arguments()
    return [n for n in arguments if n.endswith("_weight")], [n for n in arguments if n.endswith("_bias")]


def test_refuses_params_of_another_net(mlp_prefix, tmp_path):
    prefix = str(tmp_path / "other")
    mx.sym.load(mlp_prefix + "-symbol.json").save(prefix + "-symbol.json")
    _write_params(prefix, 0, {"arg:conv0_weight": mx.nd.zeros((8, 1, 3, 3))})
    first_weight = _layer_names(mlp_prefix)[0][0]
    _refused(tmp_path, r"do not match the graph: no weights for \['%s'" % first_weight, prefix)


def _changed_checkpoint(mlp_prefix, prefix, **weights):
    """The MLP's graph with its params, some replaced or added."""
    symbol, arg, aux = mx.model.load_checkpoint(mlp_prefix, 3)
    arg.update(weights)
    mx.model.save_checkpoint(prefix, 0, symbol, arg, aux)
    return prefix


def test_refuses_params_of_other_shapes(mlp_prefix, tmp_path):
    first_weight = _layer_names(mlp_prefix)[0][0]
    prefix = _changed_checkpoint(mlp_prefix, str(tmp_path / "wide"), **{first_weight: mx.nd.zeros((128, 100))})
    _refused(
        tmp_path,
        r"%s is \(128, 100\), the graph needs \(128, 784\)" % first_weight,
        prefix,
        input_shape="1,1,28,28",
    )


def test_refuses_params_with_extra_weights(mlp_prefix, tmp_path):
    prefix = _changed_checkpoint(mlp_prefix, str(tmp_path / "extra"), head_weight=mx.nd.zeros((2, 2)))
    _refused(tmp_path, r"\['head_weight'\] are not in it", prefix)


def test_refuses_params_written_by_save_parameters(mlp_prefix, tmp_path):
    prefix = str(tmp_path / "gluon")
    mx.sym.load(mlp_prefix + "-symbol.json").save(prefix + "-symbol.json")
    _write_params(prefix, 0, {"dense0_weight": mx.nd.zeros((128, 784))})
    _refused(tmp_path, "written by save_parameters. Export the net with HybridBlock.export", prefix)


def test_refuses_a_missing_input_name(mlp_prefix, tmp_path):
    _refused(
        tmp_path, r"no input named 'image'; its inputs without params are \['data'\]", mlp_prefix, input_name="image"
    )


def test_refuses_an_impossible_shape(fmnist, tmp_path):
    prefix, _ = fmnist
    _refused(tmp_path, r"the input shape \(1, 1, 3, 3\) is impossible for this graph", prefix, input_shape="1,1,3,3")


def test_refuses_a_shape_the_params_do_not_fit(mlp_prefix, tmp_path):
    _refused(tmp_path, r"with input \(1, 3, 28, 28\).*input shape is wrong", mlp_prefix, input_shape="1,3,28,28")


def test_refuses_to_guess_a_size_the_graph_leaves_open(zoo, fmnist, tmp_path):
    _refused(tmp_path, r"3-channel pictures of several sizes.*--input-shape", zoo[0])
    # fmnist_cnn's graph starts by reshaping to (-1, 1, 28, 28): that fixes the size
    assert package_model(fmnist[0], str(tmp_path / "f.tar.gz"))["input_shape"] == (1, 1, 28, 28)


@pytest.mark.parametrize("shape", ["1,3,a,224", "1,0,224,224", "-1,3,224,224", ""])
def test_refuses_a_malformed_shape(mlp_prefix, tmp_path, shape):
    _refused(tmp_path, "input shape must be", mlp_prefix, input_shape=shape)


def test_refuses_missing_files(mlp_prefix, tmp_path):
    _refused(tmp_path, "no-such-symbol.json: no such file", str(tmp_path / "no-such"))
    _refused(tmp_path, r"no such file \(epoch 9 of", mlp_prefix, epoch=9)
    _refused(tmp_path, "no such synset file", mlp_prefix, synset=str(tmp_path / "synset.txt"))
    _refused(tmp_path, "entry point must be an existing .py file", mlp_prefix, entry_point=str(tmp_path / "x.py"))


def test_refuses_a_synset_of_the_wrong_length(mlp_prefix, tmp_path):
    synset = tmp_path / "synset.txt"
    synset.write_text("".join("digit %d\n" % d for d in range(9)))
    _refused(tmp_path, "holds 9 labels .* the model has 10 classes", mlp_prefix, synset=str(synset))


@pytest.mark.parametrize(
    "options, match",
    [
        ({"channel_order": "RGBA"}, "channel_order must be RGB or BGR"),
        ({"std": 0}, "std must be positive"),
        ({"mean": [1, 2]}, "mean must be one number or 3 numbers"),
        ({"scale": -1}, "scale must be a positive number"),
        ({"resize": 100}, "resize .* must be an integer of at least 224"),
        ({"top_k": 0}, "top_k must be a positive integer"),
        ({"crop": 224}, r"unknown image classifier options \['crop'\]"),
    ],
)
def test_refuses_bad_classifier_options(zoo, tmp_path, options, match):
    _refused(tmp_path, match, zoo[0], input_shape=ZOO_SHAPE, image_classifier=True, classifier_options=options)


def test_refuses_an_image_classifier_without_pictures(mlp_prefix, tmp_path):
    _refused(
        tmp_path,
        r"takes pictures as \(N, C, H, W\) with 1 or 3 channels; this model's input is \(1, 784\)",
        mlp_prefix,
        image_classifier=True,
    )


def test_zoo_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxnet"))  # no cached weights
    monkeypatch.setenv("MXNET_GLUON_REPO", "http://127.0.0.1:9/")  # nothing listens there: as offline
    _refused(tmp_path, "could not fetch the pretrained weights of resnet18_v1 .* offline", zoo="resnet18_v1")
    _refused(tmp_path, "not_a_net", zoo="not_a_net")


# ---------------------------------------------------------------- the image classifier, in process


@pytest.mark.parametrize(
    "size, mode, fmt",
    [
        ((300, 200), "RGB", "JPEG"),
        ((64, 64), "L", "JPEG"),
        ((1000, 240), "RGB", "JPEG"),
        ((224, 224), "RGBA", "PNG"),
        ((150, 400), "P", "PNG"),
        ((320, 240), "CMYK", "JPEG"),
        ((90, 120), "I;16", "PNG"),
    ],
)
def test_classifier_equals_the_labs_in_process_answer(zoo, zoo_served, size, mode, fmt):
    prefix, _ = zoo
    data = picture_bytes(digit_picture(7, *size, mode=mode), fmt)
    answer = classify(zoo_served, data, "image/%s" % fmt.lower(), "application/json; top_k=5; probabilities=true")
    expected = softmax(lab_scores(prefix, ZOO_EPOCH, data, ZOO_SHAPE, **{k: v for k, v in ZOO_OPTIONS.items()})[None])
    best = np.argsort(-expected[0])[:5].tolist()
    assert [item["class"] for item in answer["top_k"][0]] == best
    assert answer["labels"] == ["n%08d class %d, label %d" % (4000000 + best[0], best[0], best[0])]
    np.testing.assert_allclose(answer["probabilities"][0], expected[0], rtol=1e-4, atol=2e-6)


def test_classifier_batches_of_pictures_and_arrays_agree(zoo_served):
    pictures = [picture_bytes(digit_picture(i, 200 + 40 * i, 180), "JPEG") for i in range(3)]
    one_by_one = [classify(zoo_served, p)["top_k"][0] for p in pictures]

    def same(answer, expected):
        # a batch is computed in other kernels than one picture: the 6th decimal may differ
        assert [[item["label"] for item in row] for row in answer] == [
            [item["label"] for item in row] for row in expected
        ]
        np.testing.assert_allclose(
            [[item["probability"] for item in row] for row in answer],
            [[item["probability"] for item in row] for row in expected],
            atol=5e-6,
        )

    batch = {"instances": [{"b64": base64.b64encode(p).decode()} for p in pictures], "top_k": 5}
    same(classify(zoo_served, json.dumps(batch), "application/json")["top_k"], one_by_one)
    # the first picture, decoded, as an NPY array: the same answer
    decoded = mx.image.imdecode(pictures[0], to_rgb=True).asnumpy()
    same(classify(zoo_served, encode_npy(decoded), "application/x-npy")["top_k"], one_by_one[:1])
    # the model's own input, preprocessed
    x = image_classifier.preprocess(decoded, ZOO_SHAPE, zoo_served.config)[None]
    same(classify(zoo_served, encode_npy(x), "application/x-npy; preprocessed=true")["top_k"], one_by_one[:1])


def test_grey_model_from_fmnist_cnn_with_its_labels(fmnist, tmp_path):
    prefix, synset = fmnist
    archive = str(tmp_path / "model.tar.gz")
    package_model(prefix, archive, input_shape="1,1,28,28", synset=synset, image_classifier=True)
    model = image_classifier.model_fn(extract(archive, str(tmp_path / "model")))
    assert model.config["output"] == "logits"
    for size in ((28, 28), (90, 60)):
        data = picture_bytes(digit_picture(3, *size, mode="L"), "PNG")
        answer = classify(model, data, "image/png", "application/json; top_k=3")
        expected = int(np.argmax(lab_scores(prefix, ZOO_EPOCH, data, (1, 1, 28, 28))))
        assert answer["predictions"] == [expected] and answer["labels"] == [str(expected)]
        assert len(answer["top_k"][0]) == 3


@pytest.mark.parametrize(
    "body, content_type, accept, status, match",
    [
        (b"GIF89a....", "image/png", "application/json", 400, "not a PNG or JPEG image"),
        (b"", "image/jpeg", "application/json", 400, "the request body is empty"),
        ("TRUNCATED_JPEG", "image/jpeg", "application/json", 400, "JPEG image is truncated or corrupt"),
        ("HUGE_PNG", "image/png", "application/json", 400, "too large"),
        ("PICTURE", "image/gif", "application/json", 415, "unsupported content type 'image/gif'"),
        ("PICTURE", "image/jpeg", "text/csv", 406, "unsupported accept type"),
        ("PICTURE", "image/jpeg", "application/json; top_k=1001", 400, "top_k must be an integer from 1 to 1000"),
        ('{"instances": [{"b64": "***"}]}', "application/json", "application/json", 400, "not valid base64"),
        ('{"instances": [{"url": "x"}]}', "application/json", "application/json", 400, 'a picture in JSON is {"b64"'),
        ('{"pictures": []}', "application/json", "application/json", 400, 'a JSON object must be {"instances"'),
        ('{"instances": []}', "application/json", "application/json", 400, r"got shape \(0,\)"),
        ("[[1, 2], [3]]", "application/json", "application/json", 400, "pixels must be an array of numbers"),
        ("[[[[[1]]]]]", "application/json", "application/json", 400, r"N x H x W x C; got shape \(1, 1, 1, 1, 1\)"),
        ("[[300, 2], [3, 4]]", "application/json", "application/json", 400, "pixel values must be finite and in 0-255"),
        ("MANY", "application/json", "application/json", 400, "65 pictures in one request; at most 64"),
        ("STRIP", "image/png", "application/json", 400, r"too narrow \(40000x1\).*crop it first"),
        (
            "PREPROCESSED_WRONG",
            "application/x-npy; preprocessed=true",
            "application/json",
            400,
            "a preprocessed batch must be N x 3 x 224 x 224",
        ),
        ("PICTURE", "image/jpeg; preprocessed=maybe", "application/json", 400, "preprocessed must be true or false"),
        ("NPY_NAN", "application/x-npy; preprocessed=true", "application/json", 400, "must hold finite numbers"),
        ("NPY_MANY", "application/x-npy; preprocessed=true", "application/json", 400, "65 inputs in one request"),
        ("NPY_NONE", "application/x-npy; preprocessed=true", "application/json", 400, "holds no picture"),
        ("PICTURE", "image/jpeg", "application/json; probabilities=yes", 400, "probabilities must be true or false"),
        (
            '{"instances": [["a"]]}',
            "application/json; preprocessed=true",
            "application/json",
            400,
            "a preprocessed batch must be an array of numbers",
        ),
    ],
)
def test_classifier_refuses_bad_requests(zoo_served, body, content_type, accept, status, match):
    picture = picture_bytes(digit_picture(1, 120, 90), "JPEG")
    huge = picture_bytes(digit_picture(1, 16, 16), "PNG")
    huge = huge[:16] + (10000).to_bytes(4, "big") + (5000).to_bytes(4, "big") + huge[24:]  # claims 50 megapixels
    body = {
        "PICTURE": picture,
        "TRUNCATED_JPEG": picture[:-300],
        "HUGE_PNG": huge,
        "MANY": json.dumps({"instances": [{"b64": base64.b64encode(picture).decode()}] * 65}),
        "STRIP": picture_bytes(digit_picture(1, 40000, 1, mode="L"), "PNG"),
        "PREPROCESSED_WRONG": encode_npy(np.zeros((1, 3, 32, 32), np.float32)),
        "NPY_NAN": encode_npy(np.full((1, 3, 224, 224), np.nan, np.float32)),
        "NPY_MANY": encode_npy(np.zeros((65, 3, 224, 224), np.float32)),
        "NPY_NONE": encode_npy(np.zeros((0, 3, 224, 224), np.float32)),
    }.get(body, body)
    with pytest.raises(RequestError, match=match) as error:
        image_classifier.transform_fn(zoo_served, body, content_type, accept)
    assert error.value.status_code == status


# ---------------------------------------------------------------- command line


def test_command_line_packages_a_zoo_style_checkpoint(zoo, tmp_path, capsys):
    prefix, synset = zoo
    out = str(tmp_path / "m.tar.gz")
    status = cli.main(
        [
            "package",
            prefix + "-symbol.json",
            "-o",
            out,
            "--input-shape",
            "1,3,224,224",
            "--synset",
            synset,
            "--image-classifier",
            "--scale",
            str(1 / 255),
            "--mean",
            "0.485,0.456,0.406",
            "--std",
            "0.229,0.224,0.225",
            "--resize",
            "256",
            "--top-k",
            "3",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0 and "input data 1x3x224x224, output 1x1000" in printed and "model: %s" % out in printed
    names = members(out)
    assert {"code/inference.py", "code/smgluon/image_classifier.py", "synset.txt", "image-classifier.json"} <= set(
        names
    )
    assert not [n for n in names if "__pycache__" in n]


def test_command_line_refusal_is_one_line(mlp_prefix, tmp_path, capsys):
    assert cli.main(["package", mlp_prefix, "-o", str(tmp_path / "m.tar.gz"), "--input-name", "x"]) == 1
    assert capsys.readouterr().err.startswith("smgluon: error: the graph has no input named 'x'")


def test_preprocess_orders_channels_then_normalises_in_the_models_order():
    pixels = np.asarray(digit_picture(4, 300, 200))  # RGB
    rgb = image_classifier.check_config({"resize": 256, "mean": [1, 2, 3]}, ZOO_SHAPE, 1000)
    bgr = image_classifier.check_config({"resize": 256, "mean": [3, 2, 1], "channel_order": "BGR"}, ZOO_SHAPE, 1000)
    x_rgb = image_classifier.preprocess(pixels, ZOO_SHAPE, rgb)
    x_bgr = image_classifier.preprocess(pixels, ZOO_SHAPE, bgr)
    assert x_rgb.shape == (3, 224, 224) and x_rgb.dtype == np.float32
    np.testing.assert_array_equal(x_bgr, x_rgb[::-1])
    # the shorter side scaled to 256, the centre 224 x 224 kept: the same as the lab's crop
    expected = mx.image.center_crop(mx.image.resize_short(mx.nd.array(pixels, dtype=np.uint8), 256, 1), (224, 224))
    np.testing.assert_array_equal(x_rgb[0] + 1, expected[0].asnumpy()[:, :, 0])


def test_a_loss_head_with_its_own_label_name_needs_no_editing(tmp_path):
    """The lab's VGG16 ends in SoftmaxOutput named 'prob' (input 'prob_label'); it is served as it is."""
    conv = mx.sym.Convolution(mx.sym.var("data"), kernel=(3, 3), num_filter=4, name="conv")
    head = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.flatten(conv), num_hidden=10, name="fc"), name="prob")
    mx.random.seed(1)
    arg = {
        "conv_weight": mx.nd.random.normal(shape=(4, 1, 3, 3)),
        "conv_bias": mx.nd.zeros((4,)),
        "fc_weight": mx.nd.random.normal(scale=0.01, shape=(10, 4 * 26 * 26)),
        "fc_bias": mx.nd.zeros((10,)),
    }
    mx.model.save_checkpoint(str(tmp_path / "vgg-like"), 0, head, arg, {})
    result = package_model(str(tmp_path / "vgg-like"), str(tmp_path / "m.tar.gz"), image_classifier=True)
    assert result["input_shape"] == (1, 1, 28, 28)
    model = image_classifier.model_fn(extract(result["path"], str(tmp_path / "model")))
    assert model.config["output"] == "probabilities"  # no second softmax over SoftmaxOutput's
    answer = classify(model, picture_bytes(digit_picture(2, 28, 28, mode="L"), "PNG"), "image/png")
    assert sum(item["probability"] for item in answer["top_k"][0]) <= 1.0
    assert 0 <= answer["predictions"][0] < 10


# ---------------------------------------------------------------- the other refusals, one each


def _mlp_copy(mlp_prefix, prefix, params=None, epochs=(0,)):
    """The MLP's symbol under ``prefix`` with its params (or ``params``) at ``epochs``."""
    mx.sym.load(mlp_prefix + "-symbol.json").save(prefix + "-symbol.json")
    _, arg, aux = mx.model.load_checkpoint(mlp_prefix, 3)
    for epoch in epochs:
        saved = params if params is not None else {"arg:" + k: v for k, v in arg.items()}
        mx.nd.save("%s-%04d.params" % (prefix, epoch), saved)
    return prefix


def test_refuses_checkpoint_files_that_are_not_what_they_claim(mlp_prefix, tmp_path):
    prefix = str(tmp_path / "broken")
    (tmp_path / "broken-symbol.json").write_text("not json")
    _write_params(prefix, 0, {"arg:w": mx.nd.zeros(1)})
    _refused(tmp_path, "broken-symbol.json is not an MXNet symbol file", prefix)
    prefix = _mlp_copy(mlp_prefix, str(tmp_path / "noparams"), epochs=())
    _refused(tmp_path, "no .*noparams-NNNN.params beside .*noparams-symbol.json: the weights are missing", prefix)
    (tmp_path / "noparams-0000.params").write_bytes(b"garbage")
    _refused(tmp_path, "noparams-0000.params is not an MXNet params file", prefix)
    mx.nd.save(prefix + "-0000.params", [mx.nd.zeros(1)])
    _refused(tmp_path, "holds no named parameters", prefix)


def test_refuses_a_folder_without_exactly_one_checkpoint(mlp_prefix, tmp_path):
    (tmp_path / "empty").mkdir()
    _refused(tmp_path, "holds no \\*-symbol.json files; name the checkpoint as PREFIX", str(tmp_path / "empty"))
    (tmp_path / "two").mkdir()
    _mlp_copy(mlp_prefix, str(tmp_path / "two" / "a"))
    _mlp_copy(mlp_prefix, str(tmp_path / "two" / "b"))
    _refused(tmp_path, "holds 2 \\*-symbol.json files", str(tmp_path / "two"))
    # a folder with one checkpoint is that checkpoint
    assert package_model(str(tmp_path / "two" / "a-symbol.json"), str(tmp_path / "a.tar.gz"))["input_shape"]


def test_refuses_missing_auxiliary_states(fmnist, tmp_path):
    prefix, _ = fmnist
    symbol, arg, aux = mx.model.load_checkpoint(prefix, ZOO_EPOCH)
    mx.model.save_checkpoint(str(tmp_path / "noaux"), 0, symbol, arg, {})
    _refused(tmp_path, r"no auxiliary states \(batch norm statistics\) for", str(tmp_path / "noaux"))


def test_refuses_a_weight_named_as_the_input(mlp_prefix, tmp_path):
    _, arg, _ = mx.model.load_checkpoint(mlp_prefix, 3)
    params = {"arg:" + k: v for k, v in arg.items()}
    params["arg:data"] = mx.nd.zeros((1, 784))
    prefix = _mlp_copy(mlp_prefix, str(tmp_path / "weighted"), params=params)
    _refused(tmp_path, "the params hold a weight named 'data', the graph's input", prefix)


def test_refuses_to_guess_between_several_inputs(tmp_path):
    both = mx.sym.FullyConnected(mx.sym.var("a") + mx.sym.var("b"), num_hidden=2, name="fc")
    mx.model.save_checkpoint(
        str(tmp_path / "two"), 0, both, {"fc_weight": mx.nd.zeros((2, 3)), "fc_bias": mx.nd.zeros(2)}, {}
    )
    _refused(
        tmp_path,
        r"not named 'data' and its inputs without params are \['a', 'b'\]: pass the input's name",
        str(tmp_path / "two"),
    )


def test_refuses_a_graph_whose_size_cannot_be_read(tmp_path):
    pooled = mx.sym.Pooling(mx.sym.var("data"), kernel=(2, 2), pool_type="max")
    head = mx.sym.FullyConnected(mx.sym.flatten(pooled), num_hidden=2, name="fc")
    mx.model.save_checkpoint(
        str(tmp_path / "pool"), 0, head, {"fc_weight": mx.nd.zeros((2, 4)), "fc_bias": mx.nd.zeros(2)}, {}
    )
    _refused(tmp_path, r"cannot be read from the graph \(its first layer is Pooling\)", str(tmp_path / "pool"))
    # a convolution whose params fit no square picture
    conv = mx.sym.Convolution(mx.sym.var("data"), kernel=(3, 3), num_filter=2, name="conv")
    head = mx.sym.FullyConnected(mx.sym.flatten(conv), num_hidden=2, name="fc")
    arg = {
        "conv_weight": mx.nd.zeros((2, 1, 3, 3)),
        "conv_bias": mx.nd.zeros(2),
        "fc_weight": mx.nd.zeros((2, 7)),
        "fc_bias": mx.nd.zeros(2),
    }
    mx.model.save_checkpoint(str(tmp_path / "odd"), 0, head, arg, {})
    _refused(tmp_path, "no square input of 1 channels up to 1024x1024 fits", str(tmp_path / "odd"))


def test_refuses_weights_that_give_nan(mlp_prefix, tmp_path):
    _, arg, _ = mx.model.load_checkpoint(mlp_prefix, 3)
    params = {"arg:" + k: v for k, v in arg.items()}
    params["arg:" + _layer_names(mlp_prefix)[1][-1]] = mx.nd.full((10,), float("nan"))
    prefix = _mlp_copy(mlp_prefix, str(tmp_path / "nan"), params=params)
    _refused(tmp_path, "gives NaN or infinite outputs: the params are broken", prefix)


def test_refuses_modules_and_blocks_it_cannot_package(tmp_path):
    unbound = mx.mod.Module(mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=2), label_names=None)
    _refused(tmp_path, "the Module has no parameters yet", unbound)
    two = mx.mod.Module(mx.sym.var("a") + mx.sym.var("b"), data_names=["a", "b"], label_names=None)
    two.bind(data_shapes=[("a", (1, 2)), ("b", (1, 2))], for_training=False)
    two.init_params()
    _refused(tmp_path, r"the Module has 2 data inputs \['a', 'b'\]", two)
    fixed = mx.gluon.nn.Dense(4, in_units=5)
    fixed.initialize()
    _refused(tmp_path, r"the block cannot run on an input of shape \(1, 3\)", fixed, input_shape=(1, 3))
    _refused(
        tmp_path, r"the block cannot run: .*initialize\(\) or train it first", mx.gluon.nn.Dense(4), input_shape=(1, 3)
    )
    _refused(tmp_path, "a Block that is not a HybridBlock", mx.gluon.nn.Sequential())
    _refused(tmp_path, "cannot package a dict", {"not": "a model"})


def test_refuses_contradictory_options(mlp_prefix, zoo, tmp_path):
    _refused(tmp_path, "nothing to package", None)
    _refused(tmp_path, "either a model or a zoo name", mlp_prefix, zoo="resnet18_v1")
    _refused(
        tmp_path,
        "either an entry point or image_classifier=True",
        zoo[0],
        input_shape=ZOO_SHAPE,
        entry_point=BYOM_SCRIPT,
        image_classifier=True,
    )
    _refused(
        tmp_path,
        "classifier options are for image_classifier=True",
        zoo[0],
        input_shape=ZOO_SHAPE,
        classifier_options={"top_k": 3},
    )


def test_refuses_labels_or_a_classifier_for_an_output_that_is_not_classes(tmp_path):
    conv = mx.sym.Convolution(mx.sym.var("data"), kernel=(1, 1), num_filter=2, name="conv")  # (1, 2, H, W)
    mx.model.save_checkpoint(
        str(tmp_path / "dense"), 0, conv, {"conv_weight": mx.nd.zeros((2, 3, 1, 1)), "conv_bias": mx.nd.zeros(2)}, {}
    )
    synset = tmp_path / "synset.txt"
    synset.write_text("a\nb\n")
    _refused(
        tmp_path,
        r"a synset names classes, but the model's output has shape \(1, 2, 8, 8\)",
        str(tmp_path / "dense"),
        input_shape="1,3,8,8",
        synset=str(synset),
    )
    _refused(
        tmp_path,
        r"an image classifier's output is \(1, classes\); this model's is \(1, 2, 8, 8\)",
        str(tmp_path / "dense"),
        input_shape="1,3,8,8",
        image_classifier=True,
    )


def test_zoo_packages_the_fetched_net_as_a_classifier_with_imagenet_normalisation(tmp_path, monkeypatch):
    """What --zoo does once MXNet's model store has the weights (here a seeded net stands in for the download)."""
    from mxnet.gluon.model_zoo import vision

    fetched = []

    def get_model(name, pretrained=False, **kwargs):
        fetched.append((name, pretrained))
        mx.random.seed(0)
        net = vision.mobilenet0_25()
        net.initialize(mx.init.MSRAPrelu())
        return net

    monkeypatch.setattr(vision, "get_model", get_model)
    result = package_model(output=str(tmp_path / "zoo.tar.gz"), zoo="mobilenet0.25")
    assert fetched == [("mobilenet0.25", True)]
    assert result["input_shape"] == (1, 3, 224, 224) and result["entry_point"] == "inference.py"
    model = image_classifier.model_fn(extract(result["path"], str(tmp_path / "model")))
    assert model.config["resize"] == 256 and model.config["channel_order"] == "RGB"
    assert model.config["mean"] == [0.485, 0.456, 0.406] and model.config["std"] == [0.229, 0.224, 0.225]
    assert model.config["output"] == "logits" and model.labels is None
    answer = classify(model, picture_bytes(digit_picture(3, 320, 240), "JPEG"))
    assert answer["labels"] == [str(answer["predictions"][0])]  # no synset: the class numbers


def test_aws_inference_toolkits_own_mnist_checkpoint(tmp_path):
    """A checkpoint made elsewhere (sagemaker-mxnet-inference-toolkit's test model, 2019): packaged from its
    folder (its model-shapes.json gives the input), served by the default handler and as a grey classifier."""
    from conformance.common import INFERENCE, require_fixtures

    require_fixtures()
    folder = extract(os.path.join(INFERENCE, "mnist", "model", "model.tar.gz"), str(tmp_path / "aws"))
    with open(os.path.join(INFERENCE, "mnist", "images", "04.json")) as f:
        # 0-1 in the file; the net answers on 0-255 pixels (for 0-1 its scores are almost flat)
        digit = np.asarray(json.load(f), dtype=np.float32) * 255
    result = package_model(folder, str(tmp_path / "default.tar.gz"))
    assert result["input_shape"] == (1, 1, 28, 28)
    handler = DefaultModuleInferenceHandler()
    module = handler.default_model_fn(extract(result["path"], str(tmp_path / "default")))
    batch = handler.default_input_fn(json.dumps(digit[None].tolist()), "application/json", module)
    assert int(handler.default_predict_fn(batch, module).asnumpy().argmax()) == 4
    synset = tmp_path / "digits.txt"
    synset.write_text("".join("digit %d\n" % d for d in range(10)))
    result = package_model(
        folder,
        str(tmp_path / "classifier.tar.gz"),
        synset=str(synset),
        image_classifier=True,
    )
    model = image_classifier.model_fn(extract(result["path"], str(tmp_path / "classifier")))
    png = picture_bytes(Image.fromarray(digit[0].round().astype(np.uint8)), "PNG")
    assert classify(model, png, "image/png")["labels"] == ["digit 4"]
