"""A file-backed stand-in for the session's S3 bucket, and URI resolution.

The SDK stages code by packing ``source_dir`` and ``dependencies`` into
``sourcedir.tar.gz`` and uploading it to the session's default bucket; it
repacks models the same way. :class:`LocalS3` keeps that bucket in a
directory (``<root>/s3/<bucket>/<key>``) so the SDK's own staging code runs
unchanged and nothing reaches AWS. Buckets it does not own go to real S3 and
need AWS credentials.
"""

import logging
import os
import shutil
from urllib.parse import urlparse

from smgluon import files

logger = logging.getLogger(__name__)

__all__ = ["LocalS3", "S3ResourceProxy", "LazyClient", "NoCredentialsError", "copy_tree_writable", "uri_to_local_path",
           "fetch_to_dir"]


class NoCredentialsError(RuntimeError):
    """An s3:// URI outside the local bucket needs AWS credentials that are not configured."""


class LocalS3:
    """Buckets kept as directories under ``root``.

    Args:
        root (str): Directory holding one sub-directory per bucket.
        buckets (iterable of str): Bucket names served from disk.
    """

    def __init__(self, root, buckets):
        self.root = os.path.abspath(root)
        self.buckets = set(buckets)

    def owns(self, bucket):
        """Whether ``bucket`` lives on disk here."""
        return bucket in self.buckets

    def path(self, bucket, key=""):
        """Local path of ``s3://bucket/key``.

        Raises:
            ValueError: If the key would escape the bucket directory.
        """
        base = os.path.join(self.root, bucket)
        path = os.path.normpath(os.path.join(base, key.lstrip("/")))
        if path != base and not path.startswith(base + os.sep):
            raise ValueError("s3://%s/%s: key escapes the bucket" % (bucket, key))
        return path

    def upload_file(self, filename, bucket, key):
        """Copy ``filename`` to ``s3://bucket/key``."""
        with files.replacing(self.path(bucket, key)) as tmp:
            shutil.copyfile(filename, tmp)

    def download_file(self, bucket, key, filename):
        """Copy ``s3://bucket/key`` to ``filename``.

        Raises:
            FileNotFoundError: If the object does not exist.
        """
        src = self.path(bucket, key)
        if not os.path.isfile(src):
            raise FileNotFoundError("s3://%s/%s: no such object in the local bucket (%s)" % (bucket, key, src))
        shutil.copyfile(src, filename)


class _LocalObject:
    def __init__(self, store, bucket, key):
        self._store, self.bucket_name, self.key = store, bucket, key

    def upload_file(self, Filename, ExtraArgs=None, Callback=None, Config=None):  # noqa: N803 (boto3 names)
        self._store.upload_file(Filename, self.bucket_name, self.key)

    def download_file(self, Filename, ExtraArgs=None, Callback=None, Config=None):  # noqa: N803
        self._store.download_file(self.bucket_name, self.key, Filename)


class _LocalBucket:
    def __init__(self, store, name):
        self._store, self.name = store, name

    def Object(self, key):  # noqa: N802 (boto3 name)
        return _LocalObject(self._store, self.name, key)

    def upload_file(self, Filename, Key, ExtraArgs=None, Callback=None, Config=None):  # noqa: N803
        self._store.upload_file(Filename, self.name, Key)

    def download_file(self, Key, Filename, ExtraArgs=None, Callback=None, Config=None):  # noqa: N803
        self._store.download_file(self.name, Key, Filename)


class S3ResourceProxy:
    """A boto3 S3 resource that serves the local buckets from disk.

    ``Object(bucket, key)`` and ``Bucket(name)`` for a local bucket return small
    file-backed objects with ``upload_file``/``download_file`` (all the SDK's
    staging and repacking code calls); everything else goes to the real resource.

    Args:
        store (LocalS3): The local buckets.
        real_factory (callable): Returns the real boto3 S3 resource (created lazily).
    """

    def __init__(self, store, real_factory):
        self._store = store
        self._real_factory = real_factory
        self._real = None

    def _real_resource(self):
        if self._real is None:
            self._real = self._real_factory()
        return self._real

    def Object(self, bucket_name, key):  # noqa: N802
        if self._store.owns(bucket_name):
            return _LocalObject(self._store, bucket_name, key)
        return self._real_resource().Object(bucket_name, key)

    def Bucket(self, name):  # noqa: N802
        if self._store.owns(name):
            return _LocalBucket(self._store, name)
        return self._real_resource().Bucket(name)

    def __getattr__(self, name):
        return getattr(self._real_resource(), name)


class LazyClient:
    """A boto3 client created on first attribute access.

    The SDK's LocalSession creates an S3 client up front; a job with local data and
    code never uses it, and creating it loads botocore's S3 model for nothing.

    Args:
        factory (callable): Returns the real client.
    """

    def __init__(self, factory):
        self._factory = factory
        self._real = None

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_factory", "_real"):  # copy/pickle probe, or not set up
            raise AttributeError(name)
        if self._real is None:
            self._real = self._factory()
        return getattr(self._real, name)


def copy_tree_writable(src, dest):
    """Copy the directory ``src`` to ``dest`` (following links), with every copy writable by its owner.

    Model directories are often read-only (a shared checkout, a mounted volume), and the
    copy gets code added to it and is removed afterwards.
    """
    shutil.copytree(src, dest, copy_function=shutil.copyfile, dirs_exist_ok=True)
    for root, _dirs, names in os.walk(dest):
        for name in [root] + [os.path.join(root, f) for f in names]:
            os.chmod(name, os.stat(name).st_mode | 0o200)


def require_credentials(boto_session, uri):
    """Raise :class:`NoCredentialsError` unless ``boto_session`` has AWS credentials.

    Args:
        boto_session (boto3.Session): The session that would download ``uri``.
        uri (str): The S3 URI, named in the error.
    """
    try:
        creds = boto_session.get_credentials()
    except Exception:  # botocore raises several types for broken profiles
        creds = None
    if creds is None:
        raise NoCredentialsError(
            "%s is in Amazon S3 and no AWS credentials are configured. Either configure credentials "
            "(aws configure, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) or pass a file:// URI to a "
            "local copy of the data." % uri
        )


def uri_to_local_path(uri, store):
    """Local path of a ``file://`` URI, a plain path or an ``s3://`` URI in a local bucket.

    Args:
        uri (str): The URI.
        store (LocalS3): The local buckets.

    Returns:
        str or None: The path, or None for an S3 bucket that is not local.

    Raises:
        ValueError: For an unsupported scheme.
    """
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return os.path.abspath(parsed.netloc + parsed.path)
    if parsed.scheme == "":
        return os.path.abspath(uri)
    if parsed.scheme == "s3":
        if store.owns(parsed.netloc):
            return store.path(parsed.netloc, parsed.path)
        return None
    raise ValueError("%s: unsupported URI scheme %r; use file:// or s3://" % (uri, parsed.scheme))


def fetch_to_dir(uri, dest_dir, store, sagemaker_session):
    """Make the data at ``uri`` available as local files, downloading only real S3 data.

    Args:
        uri (str): ``file://``, plain path or ``s3://``.
        dest_dir (str): Where real S3 data is downloaded to (created if needed).
        store (LocalS3): The local buckets.
        sagemaker_session (sagemaker.session.Session): Used for real S3 downloads.

    Returns:
        str: A local file or directory holding the data (``dest_dir`` for real S3).

    Raises:
        FileNotFoundError: If a local path does not exist.
        NoCredentialsError: For real S3 without credentials.
    """
    path = uri_to_local_path(uri, store)
    if path is not None:
        if not os.path.exists(path):
            raise FileNotFoundError("%s: %s does not exist; check the path" % (uri, path))
        return path
    parsed = urlparse(uri)
    require_credentials(sagemaker_session.boto_session, uri)
    os.makedirs(dest_dir, exist_ok=True)
    logger.info("Downloading %s to %s", uri, dest_dir)
    sagemaker_session.download_data(path=dest_dir, bucket=parsed.netloc, key_prefix=parsed.path.lstrip("/"))
    return dest_dir
