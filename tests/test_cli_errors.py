"""The command line's first run: data that cannot be had, errors without tracebacks, quiet SDK output."""

import logging
import os
import subprocess
import sys
import types

import pytest

from smgluon_local import datasets, sdk_logging
from smgluon_local.cli import main
from smgluon_local.ports import free_port


@pytest.fixture
def offline(monkeypatch):
    """No local copy of any data set, every download URL a closed local port, and no waits between retries."""
    closed = "http://127.0.0.1:%d/" % free_port()
    for dataset in datasets.DATASETS.values():
        monkeypatch.setattr(dataset, "local_copies", [])
        monkeypatch.setattr(dataset, "urls", [closed])
    monkeypatch.delenv(datasets.MIRROR_ENV, raising=False)
    monkeypatch.setattr(datasets, "time", types.SimpleNamespace(sleep=lambda seconds: None))
    return closed


def _one_paragraph(err):
    """The error paragraph: one line starting ``smgluon: error:``, the last one (progress lines come before it)."""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("smgluon: error:")]
    assert len(errors) == 1 and err.rstrip("\n").endswith(errors[0]), err
    return errors[0]


def test_quickstart_without_data_is_one_paragraph_and_status_2(offline, tmp_path, capsys):
    data = tmp_path / "data"
    status = main(["quickstart", "--data", str(data), "--output", str(tmp_path / "out"), "--root", str(tmp_path / "r")])
    assert status == 2
    err = capsys.readouterr().err
    paragraph = _one_paragraph(err)
    assert paragraph.startswith("smgluon: error: fashion-mnist could not be fetched: ")
    assert "cannot connect" in paragraph
    assert "three ways to get it" in paragraph
    assert "sudo apt-get install -y dataset-fashion-mnist" in paragraph
    assert "--mirror DIR" in paragraph and "SMGLUON_DATA_MIRROR=DIR" in paragraph
    assert "connect this machine to the internet" in paragraph
    assert not data.exists() or not any(data.iterdir())  # nothing half-written


def test_data_fetch_with_downloading_off_names_the_ways_out(offline, tmp_path, capsys):
    assert main(["data", "fetch", "fashion-mnist", "--dest", str(tmp_path), "--no-download"]) == 2
    paragraph = _one_paragraph(capsys.readouterr().err)
    assert "no local copy of train-images-idx3-ubyte.gz" in paragraph and "three ways" in paragraph


def test_a_data_set_without_a_debian_package_has_two_ways_out(offline, tmp_path, capsys):
    assert main(["data", "fetch", "mnist", "--dest", str(tmp_path), "--retries", "0"]) == 2
    paragraph = _one_paragraph(capsys.readouterr().err)
    assert "two ways to get it: (1) copy the files" in paragraph and "apt-get" not in paragraph


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    from smgluon_local import cli

    def broken(args):
        raise KeyError("nope")

    monkeypatch.setattr(cli, "cmd_predict", broken)
    argv = ["predict", "--endpoint", "http://127.0.0.1:9", "x.json"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == "smgluon: error: KeyError: 'nope' (run again with --debug for the traceback)\n"
    for debug in (["--debug"] + argv, argv + ["--debug"]):
        with pytest.raises(KeyError):
            main(debug)


def test_options_go_before_or_after_the_subcommand():
    from smgluon_local.cli import build_parser

    parser = build_parser()
    for argv in (["--verbose", "data", "fetch", "mnist"], ["data", "fetch", "mnist", "--verbose"]):
        args = parser.parse_args(argv)
        assert args.verbose and not args.debug
    args = parser.parse_args(["serve", "m.tar.gz"])
    assert not args.verbose and not args.debug


def _sdk_records():
    """The SDK's routine notices, logged through its own loggers, and whether each came out."""
    from sagemaker.config.config_utils import get_sagemaker_config_logger
    from sagemaker.telemetry import telemetry_logging

    seen = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    handler = Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    config_logger = get_sagemaker_config_logger()
    config_logger.addHandler(handler)
    try:
        config_logger.info("Not applying SDK defaults from location: %s", "/etc/xdg/sagemaker/config.yaml")
        config_logger.info("Applied value from config key = %s", "SageMaker.PythonSDK.Modules.TelemetryOptOut")
        telemetry_logging.logger.info(telemetry_logging.TELEMETRY_OPT_OUT_MESSAGING)
        logging.getLogger("sagemaker").info("Repacking model artifact (%s), script artifact (%s) ...", "a", "b")
        logging.getLogger("sagemaker").info("Creating model with name: %s", "m")
        config_logger.warning("Not applying SDK defaults from location: a warning is kept")
    finally:
        root.removeHandler(handler)
        config_logger.removeHandler(handler)
        root.setLevel(old_level)
    return seen


def test_the_sdk_notices_are_hidden_unless_verbose(capsys):
    try:
        sdk_logging.quiet(False)
        quiet = _sdk_records()
        assert quiet == ["Creating model with name: m", "Not applying SDK defaults from location: a warning is kept"]
        # The long step keeps a short progress line.
        err = capsys.readouterr().err  # (a root handler an earlier test bound to its own capture may add to it)
        assert err.count("smgluon: packaging the model and its code into one model.tar.gz ...\n") == 1
        sdk_logging.quiet(True)
        assert len(_sdk_records()) == 6
    finally:
        sdk_logging.quiet()


def test_a_session_option_shows_them(tmp_path, monkeypatch):
    from smgluon_local import ProcessSession

    try:
        ProcessSession(root_dir=str(tmp_path), verbose=True)
        assert len(_sdk_records()) == 6
        ProcessSession(root_dir=str(tmp_path))  # None: leaves the choice as it is
        assert len(_sdk_records()) == 6
        ProcessSession(root_dir=str(tmp_path), verbose=False)
        assert len(_sdk_records()) == 2
    finally:
        sdk_logging.quiet()


@pytest.mark.parametrize("verbose, shown", [("", False), ("1", True)])
def test_importing_the_sdk_after_smgluon_local_prints_no_config_lines(verbose, shown):
    env = dict(os.environ, SMGLUON_VERBOSE=verbose)
    proc = subprocess.run(
        [sys.executable, "-c", "import smgluon_local, sagemaker.mxnet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert ("sagemaker.config INFO - Not applying SDK defaults" in proc.stdout + proc.stderr) == shown


def test_a_file_that_is_no_archive_is_one_line(tmp_path, capsys):
    not_a_tar = tmp_path / "model.tar.gz"
    not_a_tar.write_text("hello")
    assert main(["serve", str(not_a_tar), "--root", str(tmp_path / "root")]) == 1
    err = capsys.readouterr().err
    assert err == "smgluon: error: %s: not a readable model.tar.gz (not a tar archive, or a damaged one)\n" % (
        not_a_tar
    )
