"""Safe reading and writing of the tar archives SageMaker passes around.

``sourcedir.tar.gz`` and ``model.tar.gz`` come from users and from other
machines, so extraction checks every member before writing anything: no
absolute paths, no ``..`` components, no links that point outside the target,
no device files. A bad archive raises :class:`UnsafeTarError` and leaves the
target untouched.
"""

import os
import tarfile
import tempfile

__all__ = ["UnsafeTarError", "safe_extract", "create_tar_gz"]


class UnsafeTarError(ValueError):
    """An archive holds a member that would escape the extraction directory."""


def _inside(root, path):
    root = os.path.realpath(root)
    path = os.path.realpath(path)
    return path == root or path.startswith(root + os.sep)


def _check_member(archive, member, dest):
    name = member.name
    if os.path.isabs(name) or name.startswith(("/", "\\")):
        raise UnsafeTarError("%s: member %r has an absolute path; rebuild the archive with relative paths"
                             % (archive, name))
    if ".." in name.replace("\\", "/").split("/"):
        raise UnsafeTarError("%s: member %r contains '..'; rebuild the archive without parent references"
                             % (archive, name))
    target = os.path.join(dest, name)
    if not _inside(dest, target):
        raise UnsafeTarError("%s: member %r would be written outside %s" % (archive, name, dest))
    if member.issym() or member.islnk():
        link = member.linkname
        if member.issym():
            resolved = os.path.join(os.path.dirname(target), link)
        else:
            resolved = os.path.join(dest, link)
        if os.path.isabs(link) or not _inside(dest, resolved):
            raise UnsafeTarError("%s: link %r -> %r points outside the archive; replace it with the file"
                                 % (archive, name, link))
    elif not (member.isfile() or member.isdir()):
        raise UnsafeTarError("%s: member %r is a device, FIFO or other special file; remove it"
                             % (archive, name))


def safe_extract(archive, dest):
    """Extract a (possibly gzip-compressed) tar archive after checking every member.

    Args:
        archive (str): Path of the ``.tar`` or ``.tar.gz`` file.
        dest (str): Directory to extract into; created if missing.

    Raises:
        FileNotFoundError: If ``archive`` does not exist.
        UnsafeTarError: If any member is absolute, contains ``..``, is a link leaving
            ``dest`` or is a special file. Nothing is extracted in that case.
        tarfile.TarError: If the file is not a readable tar archive.
    """
    if not os.path.isfile(archive):
        raise FileNotFoundError("%s: archive not found" % archive)
    os.makedirs(dest, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            _check_member(archive, member, dest)
        for member in members:
            # Extract one member at a time: links were checked above, and files must not
            # follow links created by earlier members out of the tree.
            target = os.path.join(dest, member.name)
            if not _inside(dest, os.path.dirname(target) or dest):
                raise UnsafeTarError("%s: member %r would be written through a link outside %s"
                                     % (archive, member.name, dest))
            tar.extract(member, dest, set_attrs=member.isfile())


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
    os.makedirs(os.path.dirname(os.path.abspath(archive)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(archive)), suffix=".partial")
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            if src_dir and os.path.isdir(src_dir):
                for name in sorted(os.listdir(src_dir)):
                    tar.add(os.path.join(src_dir, name), arcname=name)
            for arcname, path in sorted((extra_files or {}).items()):
                tar.add(path, arcname=arcname)
        # mkstemp creates the file 0600; give it the mode any new file gets (0644 under umask 022).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, archive)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return archive
