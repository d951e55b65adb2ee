"""Safe reading and writing of the tar archives SageMaker passes around.

``sourcedir.tar.gz`` and ``model.tar.gz`` come from users and from other
machines, so extraction goes through tarfile's ``"data"`` filter (no member
outside the target, no link pointing out of it, no device files, no set-user-id
bits), and every member is checked with it before anything is written. A
member with an absolute path is refused too, where the filter would quietly
make it relative. A bad archive raises :class:`UnsafeTarError`.
"""

import os
import tarfile

from smgluon import files

__all__ = ["UnsafeTarError", "safe_extract", "create_tar_gz"]


class UnsafeTarError(ValueError):
    """An archive holds a member that would escape the extraction directory."""


def _unsafe(archive, member, error, dest):
    """The :class:`UnsafeTarError` for a member the data filter refused: what is wrong and how to fix it."""
    name = member.name
    if ".." in name.replace("\\", "/").split("/"):
        return UnsafeTarError("%s: member %r contains '..'; rebuild the archive without parent references"
                              % (archive, name))
    if isinstance(error, (tarfile.AbsoluteLinkError, tarfile.LinkOutsideDestinationError)):
        return UnsafeTarError("%s: link %r -> %r points outside the archive; replace it with the file"
                              % (archive, name, member.linkname))
    if isinstance(error, tarfile.SpecialFileError):
        return UnsafeTarError("%s: member %r is a device, FIFO or other special file; remove it" % (archive, name))
    return UnsafeTarError("%s: member %r would be written outside %s (%s)" % (archive, name, dest, error))


def safe_extract(archive, dest):
    """Extract a (possibly gzip-compressed) tar archive after checking every member.

    Args:
        archive (str): Path of the ``.tar`` or ``.tar.gz`` file.
        dest (str): Directory to extract into; created if missing.

    Raises:
        FileNotFoundError: If ``archive`` does not exist.
        UnsafeTarError: If any member is absolute, leaves ``dest`` (``..``, through a link), is a
            link leaving ``dest`` or is a special file. Nothing is extracted in that case.
        tarfile.TarError: If the file is not a readable tar archive.
    """
    if not os.path.isfile(archive):
        raise FileNotFoundError("%s: archive not found" % archive)
    os.makedirs(dest, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            if os.path.isabs(member.name) or member.name.startswith(("/", "\\")):
                raise UnsafeTarError("%s: member %r has an absolute path; rebuild the archive with relative paths"
                                     % (archive, member.name))
            try:
                tarfile.data_filter(member, dest)
            except tarfile.FilterError as e:
                raise _unsafe(archive, member, e, dest) from None
        try:
            tar.extractall(dest, members=members, filter="data")
        except tarfile.FilterError as e:
            raise _unsafe(archive, e.tarinfo, e, dest) from None


def create_tar_gz(src_dir, archive, extra_files=None):
    """Pack the contents of ``src_dir`` (not the directory itself) into ``archive``.

    This is the layout SageMaker uses for ``model.tar.gz`` and ``output.tar.gz``:
    the files of ``/opt/ml/model`` sit at the top level of the archive. The archive
    is written to a temporary name and renamed, so a reader never sees half of it.

    Args:
        src_dir (str): Directory whose entries become the archive's top level. May
            be missing, which gives an empty archive.
        archive (str): Path of the ``.tar.gz`` file to write.
        extra_files (dict): Optional ``{arcname: path}`` of single files to add.

    Returns:
        str: ``archive``.
    """
    with files.replacing(archive) as tmp, tarfile.open(tmp, "w:gz") as tar:
        if src_dir and os.path.isdir(src_dir):
            for name in sorted(os.listdir(src_dir)):
                tar.add(os.path.join(src_dir, name), arcname=name)
        for arcname, path in sorted((extra_files or {}).items()):
            tar.add(path, arcname=arcname)
    return archive
