"""`make setup`'s system packages: installed as root with apt-get, else the one command printed.

The script runs with PATH holding only fakes of ``id``, ``apt-get`` and ``java`` (it uses
nothing else but shell built-ins), so no test installs anything or needs root.
"""

import os
import subprocess

import pytest
from local_helpers import REPO

SCRIPT = os.path.join(REPO, "requirements", "system-packages.sh")
BOTH = "default-jre-headless dataset-fashion-mnist"


def _fake(directory, name, body):
    path = directory / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def run_script(tmp_path, uid=0, java=False, data=False, apt="ok", env=None):
    """Runs the script against fakes; returns (stdout, the apt-get calls made)."""
    fakes = tmp_path / "bin"
    fakes.mkdir(exist_ok=True)
    log = tmp_path / "apt.log"
    _fake(fakes, "id", 'echo "%d"' % uid)
    if apt is not None:
        # "ok": every call succeeds; "needs-update": install fails until `update` ran; "fail": every call fails.
        _fake(
            fakes,
            "apt-get",
            f"""echo "$*" >> {log}
case "{apt}" in
  ok) exit 0 ;;
  fail) exit 100 ;;
  needs-update) [ "$1" = update ] && : > {tmp_path}/updated; [ -e {tmp_path}/updated ] || exit 100 ;;
esac""",
        )
    if java:
        _fake(fakes, "java", "exit 0")
    data_dir = tmp_path / "fashion-mnist"
    if data:
        data_dir.mkdir(exist_ok=True)
    environ = {"PATH": str(fakes), "SMGLUON_FASHION_MNIST_DIR": str(data_dir)}
    environ.update(env or {})
    proc = subprocess.run(["/bin/sh", SCRIPT], capture_output=True, text=True, env=environ, timeout=60)
    assert proc.returncode == 0, proc.stderr  # never fails the setup
    assert proc.stderr == ""
    calls = log.read_text().splitlines() if log.exists() else []
    return proc.stdout, calls


def test_nothing_to_do_when_both_are_there(tmp_path):
    assert run_script(tmp_path, java=True, data=True) == ("", [])


def test_java_from_java_home_counts(tmp_path):
    java_home = tmp_path / "jdk"
    (java_home / "bin").mkdir(parents=True)
    _fake(java_home / "bin", "java", "exit 0")
    assert run_script(tmp_path, data=True, env={"JAVA_HOME": str(java_home)}) == ("", [])


def test_root_installs_what_is_missing(tmp_path):
    out, calls = run_script(tmp_path)
    assert calls == ["install -y -q %s" % BOTH]
    assert out == "system packages: installing %s with apt-get\n" % BOTH


def test_root_installs_only_the_data_set_when_java_is_there(tmp_path):
    assert run_script(tmp_path, java=True)[1] == ["install -y -q dataset-fashion-mnist"]


def test_a_fresh_machine_without_package_lists_is_updated_first(tmp_path):
    out, calls = run_script(tmp_path, apt="needs-update")
    assert calls == ["install -y -q %s" % BOTH, "update -q", "install -y -q %s" % BOTH]
    assert "run:" not in out


def test_when_apt_get_fails_the_command_is_printed(tmp_path):
    out, calls = run_script(tmp_path, apt="fail")
    assert calls == ["install -y -q %s" % BOTH, "update -q"]
    assert out.splitlines()[-1] == "system packages: %s not installed; run: apt-get install -y %s" % (BOTH, BOTH)


@pytest.mark.parametrize("uid, env", [(1000, {}), (0, {"SMGLUON_SYSTEM_PACKAGES": "skip"})])
def test_without_root_or_when_skipped_only_the_command_is_printed(tmp_path, uid, env):
    out, calls = run_script(tmp_path, uid=uid, java=True, env=env)
    assert calls == []
    sudo = "sudo " if uid else ""
    assert (
        out == "system packages: dataset-fashion-mnist not installed; run: %sapt-get install -y "
        "dataset-fashion-mnist\n" % sudo
    )


def test_without_apt_get_the_way_is_described(tmp_path):
    out, calls = run_script(tmp_path, apt=None)
    assert calls == [] and "install a Java runtime" in out and "smgluon data fetch fashion-mnist" in out


def test_make_setup_runs_it_before_creating_the_environment(tmp_path):
    # Under `make test` the outer make's MAKELEVEL/MAKEFLAGS reach this make, which then prints
    # "Entering directory" lines; the dry run must read the same whoever starts the tests.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "setup", "VENV=%s" % (tmp_path / "venv")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    lines = dry_run.stdout.splitlines()
    assert lines[0] == "sh requirements/system-packages.sh" and "-m venv" in lines[1]
