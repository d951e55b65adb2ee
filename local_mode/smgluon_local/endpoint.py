"""Serve a model with multi-model-server and the SageMaker MXNet handler service.

This is what the SageMaker MXNet inference container does at start-up
(``sagemaker_mxnet_serving_container.serving.main``), minus the parts that
only make sense inside a container: the MMS configuration goes to the endpoint
directory instead of ``/etc``, the server listens on 127.0.0.1 on a free port
instead of 0.0.0.0:8080, and its pid file and worker sockets live in a private
temporary directory so several endpoints can run at once. Stopping the
endpoint kills the whole process group: the launcher, java and every Python
worker. A watchdog process (:mod:`smgluon_local.watchdog`) does the same if the
process that started the server dies without stopping it.
"""

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from xml.etree import ElementTree

from smgluon_local import request_guard
from smgluon_local.ports import free_port, port_is_free
from smgluon_local.storage import copy_tree_writable
from smgluon_local.tarfiles import safe_extract
from smgluon_local.watchdog import STOP_GRACE_S, ProcessGroup, Watchdog

logger = logging.getLogger(__name__)

__all__ = ["JavaNotFoundError", "ModelServerError", "ModelServer", "find_java", "free_port", "port_is_free"]

# The container's handler service, with its default model_fn fixed for sagemaker-inference 1.10.
HANDLER_SERVICE = "smgluon_local.handler_service"
# The request size limit in SageMaker's containers (sagemaker_inference.parameters).
MAX_PAYLOAD_ENV = request_guard.MAX_PAYLOAD_ENV
# What sagemaker_mxnet_serving_container.serving sets when the variables are unset.
SERVING_DEFAULT_ENV = {
    "MXNET_CPU_WORKER_NTHREADS": "1",
    "MXNET_CPU_PRIORITY_NTHREADS": "1",
    "MXNET_KVSTORE_REDUCTION_NTHREADS": "1",
    "OMP_NUM_THREADS": "1",
}
JAVA_HINT = ("multi-model-server needs a Java runtime and none was found on PATH or in JAVA_HOME. "
             "Install one, e.g. `sudo apt-get install -y default-jre-headless`, or set JAVA_HOME.")


class JavaNotFoundError(RuntimeError):
    """No Java runtime for multi-model-server."""


class ModelServerError(RuntimeError):
    """The model server exited or did not become healthy."""


def find_java():
    """Path of the java executable MMS will use.

    Raises:
        JavaNotFoundError: If neither ``$JAVA_HOME/bin/java`` nor ``java`` on PATH exists.
    """
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        java = os.path.join(java_home, "bin", "java")
        if os.access(java, os.X_OK):
            return java
        raise JavaNotFoundError("JAVA_HOME=%s has no bin/java. %s" % (java_home, JAVA_HINT))
    java = shutil.which("java")
    if not java:
        raise JavaNotFoundError(JAVA_HINT)
    return java


def default_vmargs(environment):
    """The frontend's JVM options: the toolkit's default and a heap bound.

    Without one the JVM sizes its heap up to a quarter of the machine's memory as load goes on, which
    on a laptop is the notebook's memory; requests need about four times the frontend's request limit
    (bodies being received and aggregated) beside a fixed 512 MB. A model's SAGEMAKER_MODEL_SERVER_VMARGS
    replaces this, as it replaces the toolkit's default.
    """
    limit_mb = request_guard.frontend_limit({**os.environ, **environment}) // (1024 * 1024)
    return "-XX:-UseContainerSupport -Xmx%dm" % (512 + 4 * limit_mb)


MAX_MMS_PORT = 32766  # MMS 1.1 rejects ports >= 32767 ("Invalid port number")


def _package_file(package, *parts):
    spec = importlib.util.find_spec(package)
    return os.path.join(list(spec.submodule_search_locations)[0], *parts)


def log_config():
    """The container's log4j2.xml (sagemaker_inference/etc) with the per-request lines kept out of mms.log.

    The container logs two lines per request to its console; here that is the
    endpoint's mms.log, which nothing rotates (about 200 bytes a request).
    Two changes: the access log no longer also goes to the console
    (logs/access_log.log keeps every request, rotated), and the worker thread's
    per-request "Backend response time" line is not logged. Everything else,
    including the worker lines :meth:`ModelServer.start` reads, is as in the
    container. It also saves the frontend CPU time on every request
    (bench/results/findings.md).

    Returns:
        str: the XML.
    """
    root = ElementTree.parse(_package_file("sagemaker_inference", "etc", "log4j2.xml")).getroot()
    loggers = root.find("Loggers")
    for logger_element in loggers.findall("Logger"):
        if logger_element.get("name") == "ACCESS_LOG":
            logger_element.set("additivity", "false")
    worker_thread = ElementTree.Element("Logger", name="com.amazonaws.ml.mms.wlm.WorkerThread", level="warn")
    loggers.insert(list(loggers).index(loggers.find("Root")), worker_thread)
    return ElementTree.tostring(root, encoding="unicode")


def _mms_launcher():
    launcher = os.path.join(os.path.dirname(sys.executable), "multi-model-server")
    if os.path.exists(launcher):
        return [launcher]
    return [sys.executable, "-c", "from mms.model_server import start; start()"]


def _lift_dependencies(code):
    """Make ``code/lib/<dep>`` importable as ``code/<dep>``.

    On SageMaker, ``estimator.deploy()`` repacks the uploaded sourcedir.tar.gz (which
    holds ``dependencies`` at its top level) and adds ``code/lib/<dep>`` too. In local
    mode the SDK repacks the local ``source_dir`` instead, so only ``code/lib/<dep>``
    exists; copying each one up restores the layout the serving container sees.
    """
    lib = os.path.join(code, "lib")
    if not os.path.isdir(lib):
        return
    for name in os.listdir(lib):
        if not os.path.exists(os.path.join(code, name)):
            src = os.path.join(lib, name)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(code, name), symlinks=True)
            else:
                shutil.copy2(src, os.path.join(code, name))


class ModelServer:
    """One endpoint: a model directory and the MMS process group serving it.

    Args:
        endpoint_dir (str): New directory for the endpoint's model, config and logs.
        model_tar (str or None): Local path of model.tar.gz, or of a directory of model files
            (None for no model files).
        environment (dict): The model's container environment (SAGEMAKER_PROGRAM, ...).
        port (int): Port to listen on; None picks a free one.
        code_dir (str): Optional local directory to use as ``model/code`` when the
            archive has none (a ``file://`` SAGEMAKER_SUBMIT_DIRECTORY).
        startup_timeout (float): Seconds to wait for a healthy /ping.
    """

    def __init__(self, endpoint_dir, model_tar, environment, port=None, code_dir=None,
                 startup_timeout=120.0):
        self.endpoint_dir = os.path.abspath(endpoint_dir)
        self.model_tar = model_tar
        self.environment = dict(environment or {})
        self.requested_port = port
        self.code_dir = code_dir
        self.startup_timeout = startup_timeout
        self.port = None
        self.process = None
        self.load_error = None
        self._tmp = None
        self._group = None
        self._watchdog = None
        self.model_dir = os.path.join(self.endpoint_dir, "model")
        self.log_path = os.path.join(self.endpoint_dir, "mms.log")

    @property
    def url(self):
        """Base URL of the running server, e.g. ``http://127.0.0.1:50123``."""
        return "http://127.0.0.1:%d" % self.port

    def _prepare(self):
        os.makedirs(self.endpoint_dir)
        os.makedirs(self.model_dir)
        if self.model_tar and os.path.isdir(self.model_tar):
            copy_tree_writable(self.model_tar, self.model_dir)
        elif self.model_tar:
            safe_extract(self.model_tar, self.model_dir)
        code = os.path.join(self.model_dir, "code")
        if not os.path.isdir(code) and self.code_dir:
            shutil.copytree(self.code_dir, code, symlinks=True)
        _lift_dependencies(code)
        os.makedirs(os.path.join(self.endpoint_dir, "logs"))

    def _write_config(self, port, management_port):
        with open(_package_file("sagemaker_inference", "etc", "default-mms.properties")) as f:
            config = f.read()
        settings = {
            "inference_address": "http://127.0.0.1:%d" % port,
            "management_address": "http://127.0.0.1:%d" % management_port,
            "default_service_handler": HANDLER_SERVICE,
            "default_response_timeout": self.environment.get("SAGEMAKER_MODEL_SERVER_TIMEOUT", "60"),
            "default_workers_per_model": self.environment.get("SAGEMAKER_MODEL_SERVER_WORKERS"),
            "vmargs": self.environment.get("SAGEMAKER_MODEL_SERVER_VMARGS") or default_vmargs(self.environment),
            # SAGEMAKER_MAX_PAYLOAD_IN_MB (batch transform sets the job's MaxPayloadInMB) is enforced by the
            # request guard with a 413 and a message; the frontend's own cap lets twice that through to it.
            "max_request_size": request_guard.frontend_limit({**os.environ, **self.environment}),
        }
        config += "".join("%s=%s\n" % (k, v) for k, v in settings.items() if v)
        path = os.path.join(self.endpoint_dir, "mms.properties")
        with open(path, "w") as f:
            f.write(config)
        with open(os.path.join(self.endpoint_dir, "log4j2.xml"), "w") as f:
            f.write(log_config())
        return path

    def _env(self):
        env = dict(os.environ)
        for key, value in SERVING_DEFAULT_ENV.items():
            env.setdefault(key, value)
        env.update({str(k): str(v) for k, v in self.environment.items()})
        code = os.path.join(self.model_dir, "code")
        # sagemaker_inference.model_server puts the model's code dir first on PYTHONPATH.
        env["PYTHONPATH"] = code + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["SAGEMAKER_BASE_DIR"] = self.endpoint_dir
        env["LOG_LOCATION"] = os.path.join(self.endpoint_dir, "logs")
        env["METRICS_LOCATION"] = os.path.join(self.endpoint_dir, "logs")
        # MMS keeps a pid file in the temp dir and refuses to start a second server; java puts
        # its worker sockets there. A short private dir keeps endpoints apart (and the unix
        # socket paths under their 108-byte limit).
        env["TMPDIR"] = env["TEMP"] = self._tmp
        return env

    def _launch(self, port):
        management_port = free_port()
        config = self._write_config(port, management_port)
        cmd = _mms_launcher() + [
            "--start", "--foreground",
            "--mms-config", config,
            # The model path is resolved against the store, as in the container (store "/").
            "--model-store", self.endpoint_dir,
            "--models", "model=" + os.path.basename(self.model_dir),
            "--log-config", os.path.join(self.endpoint_dir, "log4j2.xml"),
        ]
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(cmd, cwd=self.endpoint_dir, env=self._env(), stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        finally:
            log.close()
        self.port = port
        self.management_port = management_port
        # Named before anything reaps the leader, so a reused pid is never taken for it.
        self._group = ProcessGroup.of(self.process.pid)
        # If this process dies without stop() (SIGKILL, the OOM killer, a killed notebook kernel),
        # the watchdog stops the group, which would otherwise keep the port and the CPU for good.
        self._watchdog = Watchdog.start(self._group, log_path=self.log_path, remove_dir=self._tmp)

    def _healthy(self):
        # /ping answers 200 as soon as the frontend is up, before any worker has loaded the
        # model (requests would queue behind the load), so also wait for a worker's
        # "Model model loaded" line.
        try:
            with urllib.request.urlopen(self.url + "/ping", timeout=2) as r:
                if r.status != 200:
                    return False
        except (urllib.error.URLError, OSError):
            return False
        return "Model model loaded io_fd" in self._log_tail(10000)

    def _warn_about_load_errors(self):
        # The SageMaker handler service swallows errors from model_fn at load time and
        # answers every request with them; the endpoint still goes InService, as on
        # SageMaker. Say so now rather than at the first predict().
        lines = self._log_tail(10000).splitlines()
        end = next(i for i, line in enumerate(lines) if "Model model loaded io_fd" in line)
        start = next((i for i in range(end, -1, -1) if "Traceback (most recent call last)" in lines[i]), None)
        if start is not None:
            detail = "\n".join(line.split(" - ", 1)[-1] for line in lines[start:end] if "-stdout " in line)
            logger.warning("The model server loaded the model with an error; every request will fail "
                           "(log %s):\n%s", self.log_path, detail)
            self.load_error = detail

    def _log_tail(self, lines=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def _bound_by_other(self):
        return "Address already in use" in self._log_tail(200) or "BindException" in self._log_tail(200)

    def start(self, progress=None):
        """Prepare the model directory, start MMS and wait until /ping answers 200.

        Args:
            progress (callable): Optional ``progress(message)`` for long waits.

        Raises:
            JavaNotFoundError: Without a Java runtime.
            ValueError: If SAGEMAKER_MAX_PAYLOAD_IN_MB is not a positive whole number.
            ModelServerError: If the requested port is busy, or the server exits or
                stays unhealthy for ``startup_timeout`` seconds (the message has the
                log tail). Everything started is stopped again.
            UnsafeTarError: If model.tar.gz holds unsafe members.
        """
        find_java()
        request_guard.max_payload_bytes({**os.environ, **self.environment})  # a bad limit fails before anything runs
        if self.requested_port is not None and not 0 < self.requested_port <= MAX_MMS_PORT:
            raise ModelServerError("port %d is out of range: multi-model-server accepts 1-%d"
                                   % (self.requested_port, MAX_MMS_PORT))
        if self.requested_port is not None and not port_is_free(self.requested_port):
            raise ModelServerError("port %d is in use; pick another with --port, or leave it unset to "
                                   "use a free port" % self.requested_port)
        try:
            self._prepare()
        except BaseException:
            shutil.rmtree(self.endpoint_dir, ignore_errors=True)  # leave nothing half-written
            raise
        self._tmp = tempfile.mkdtemp(prefix="smgl-")
        attempts = 1 if self.requested_port is not None else 3
        try:
            for attempt in range(attempts):
                self._launch(self.requested_port or free_port())
                deadline = time.monotonic() + self.startup_timeout
                last_note = time.monotonic()
                while time.monotonic() < deadline:
                    if self._healthy():
                        self._warn_about_load_errors()
                        return self
                    if self.process.poll() is not None:
                        break
                    if progress and time.monotonic() - last_note > 10:
                        progress("waiting for the model server on port %d ..." % self.port)
                        last_note = time.monotonic()
                    time.sleep(0.2)
                else:
                    raise ModelServerError("model server on port %d not healthy after %.0f s; log %s:\n%s"
                                           % (self.port, self.startup_timeout, self.log_path,
                                              self._log_tail()))
                # The server exited: a port taken between choosing and binding is retried.
                self._kill()
                if not (self._bound_by_other() and attempt + 1 < attempts):
                    raise ModelServerError("model server exited with status %s; log %s:\n%s"
                                           % (self.process.returncode, self.log_path, self._log_tail()))
        except BaseException:
            self.stop()
            raise
        return self

    def _kill(self):
        proc = self.process
        if proc is None:
            return
        self._group.stop(STOP_GRACE_S, reap=proc.poll)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        # Only now: had this process died while stopping the group, the watchdog would finish the job.
        if self._watchdog is not None:
            self._watchdog.stand_down()
            self._watchdog = None

    def stop(self):
        """Stop MMS, every worker it started and the watchdog; remove the private temp dir. Idempotent."""
        self._kill()
        self.process = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
