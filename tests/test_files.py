"""smgluon.files: a file is replaced whole or not at all, with the mode of any new file."""

import json
import os
import stat

import pytest

from smgluon import files


def test_write_text_and_json_replace_the_file_whole(tmp_path):
    path = str(tmp_path / "deep" / "metrics.json")
    files.write_json(path, {"a": float("nan"), "b": [1, 2]})
    assert json.load(open(path))["b"] == [1, 2]
    files.write_text(path, "new\n")
    assert open(path).read() == "new\n"
    assert os.listdir(str(tmp_path / "deep")) == ["metrics.json"]


def test_new_files_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        files.write_text(str(tmp_path / "failure"), "reason\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(str(tmp_path / "failure")).st_mode) == 0o644


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    path = str(tmp_path / "model.params")
    files.write_text(path, "old")
    with pytest.raises(RuntimeError, match="disk full"):
        with files.replacing(path) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("disk full")
    assert open(path).read() == "old"
    assert os.listdir(str(tmp_path)) == ["model.params"]
    with pytest.raises(TypeError):
        files.write_json(path, {"not json": object()})
    assert open(path).read() == "old" and os.listdir(str(tmp_path)) == ["model.params"]
