"""Writing inside a folder, never outside it and never through a symbolic link.

The run store, the board builder, the viewer and ``gapbench analyze`` write, rename and delete
files only through this module. Each call names the *root* (the folder the user named: a run
directory, a board folder) and a path inside it. The path is checked lexically to stay inside the
root (no absolute path, no ``..``), and then reached one component at a time from an open handle
on the root, each opened with ``O_NOFOLLOW``: a component that is a symbolic link (a folder
``runs`` or ``analysis`` linked elsewhere, a ``README.md.tmp``, ``.lock`` or ``verdicts.jsonl``
that links to another file) is refused with an error naming it, so nothing is written, truncated,
appended to or deleted through it. Git stores symbolic links, so a board that arrives in a pull
request may carry them. The root itself may be a link: the user named it.

Renames and deletions act on names relative to that handle (``dir_fd``), so a folder swapped for
a link between the check and the write is not followed either.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gapbench.harness.errors import GapbenchError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def relative_parts(root: Path | str, path: Path | str, what: str = "a file") -> tuple[str, ...]:
    """The components of ``path`` (given as ``root / rel``) below ``root``, refused unless it stays
    inside ``root`` (compared lexically: ``..`` and absolute names cannot leave it)."""
    rel = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root)))
    if rel.is_absolute() or not rel.parts or rel.parts[0] in ("..", "."):
        raise GapbenchError(f"{what} would be written or deleted at {str(path)!r}, outside the folder {root}; refused.")
    return rel.parts


def inside(root: Path | str, rel: str | Path, what: str = "a file") -> Path:
    """``root / rel``, refused unless ``rel`` is a relative path that stays inside ``root`` and no
    existing component of it below ``root`` is a symbolic link."""
    rel = Path(rel)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise GapbenchError(f"{what} would be written or deleted at {str(rel)!r}, outside the folder {root}; refused.")
    here = Path(root)
    for part in rel.parts:
        here = here / part
        if here.is_symlink():
            raise link_error(here, what)
    return Path(root) / rel


def link_error(path: Path, what: str = "a file") -> GapbenchError:
    try:
        target = f" (to {os.readlink(path)})"
    except OSError:
        target = ""
    return GapbenchError(
        f"{path} is a symbolic link{target}; gapbench writes, renames and deletes nothing through a link, so that a "
        f"folder it writes cannot send {what} elsewhere. Remove the link (or put a plain file or folder in its place) "
        "and run again."
    )


@contextmanager
def _parent(root: Path | str, path: Path | str, what: str, create: bool) -> Iterator[tuple[int, str, Path]]:
    """An open handle on the folder that holds ``path`` (reached from ``root`` without following a
    link; missing folders made when ``create``), and the file's name in it."""
    root = Path(root)
    parts = relative_parts(root, path, what)
    try:
        fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    except FileNotFoundError:
        if not create:
            raise
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    here = root
    try:
        for part in parts[:-1]:
            here = here / part
            if create:
                try:
                    os.mkdir(part, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                nxt = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(here):
                    raise link_error(here, what) from None
                if exc.errno == errno.ENOTDIR:
                    raise GapbenchError(f"{here}: a file is in the way of a folder gapbench writes {what} into; move it away and run again.") from None
                raise
            os.close(fd)
            fd = nxt
        yield fd, parts[-1], here / parts[-1]
    finally:
        os.close(fd)


def _no_link(fd: int, name: str, path: Path, what: str) -> None:
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    import stat

    if stat.S_ISLNK(st.st_mode):
        raise link_error(path, what)


def _open_file(fd: int, name: str, path: Path, flags: int, what: str) -> int:
    try:
        return os.open(name, flags | _NOFOLLOW | _CLOEXEC, 0o666, dir_fd=fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno in (errno.EEXIST, errno.EISDIR, errno.ENXIO) and os.path.islink(path)):
            raise link_error(path, what) from None
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


def _write_all(out: int, data: bytes, path: Path) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(out, view) :]
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def write_bytes(root: Path | str, path: Path | str, data: bytes, *, what: str = "a file", tmp_suffix: str | None = None, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` (inside ``root``) atomically: into ``<name>.tmp`` (or the name with
    its suffix swapped for ``tmp_suffix``), then renamed over it. Neither name may be a link."""
    with _parent(root, path, what, create=True) as (fd, name, full):
        tmp = (Path(name).with_suffix(tmp_suffix).name if tmp_suffix else name + ".tmp")
        _no_link(fd, name, full, what)
        out = _open_file(fd, tmp, full.with_name(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, what)
        try:
            _write_all(out, data, full.with_name(tmp))
            if fsync:
                os.fsync(out)
        finally:
            os.close(out)
        os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
    return Path(path)


def write_text(root: Path | str, path: Path | str, text: str, **kwargs) -> Path:
    return write_bytes(root, path, text.encode("utf-8"), **kwargs)


def append_bytes(root: Path | str, path: Path | str, data: bytes, *, what: str = "a file") -> None:
    """Append ``data`` to ``path`` (inside ``root``; made when missing), fsynced before returning."""
    with _parent(root, path, what, create=False) as (fd, name, full):
        out = _open_file(fd, name, full, os.O_WRONLY | os.O_CREAT | os.O_APPEND, what)
        try:
            _write_all(out, data, full)
            os.fsync(out)
        finally:
            os.close(out)


def truncate(root: Path | str, path: Path | str, size: int, *, what: str = "a file") -> None:
    """Cut ``path`` (inside ``root``) to ``size`` bytes; a link is refused, not followed."""
    with _parent(root, path, what, create=False) as (fd, name, full):
        out = _open_file(fd, name, full, os.O_WRONLY, what)
        try:
            os.ftruncate(out, size)
        finally:
            os.close(out)


def open_lock(root: Path | str, path: Path | str, *, what: str = "the lock file"):
    """``path`` (inside ``root``) opened for reading and writing, made when missing; never a link."""
    with _parent(root, path, what, create=True) as (fd, name, full):
        handle = _open_file(fd, name, full, os.O_RDWR | os.O_CREAT, what)
    return os.fdopen(handle, "r+", encoding="utf-8")


def unlink(root: Path | str, path: Path | str, *, what: str = "a file", missing_ok: bool = True) -> None:
    """Delete ``path`` (inside ``root``), reached without following a link. A link as the file itself
    is removed (the link, never its target)."""
    try:
        with _parent(root, path, what, create=False) as (fd, name, _):
            os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        if not missing_ok:
            raise


def mkdir(root: Path | str, path: Path | str, *, what: str = "a folder") -> Path:
    """Make the folder ``path`` inside ``root`` (and those above it), refusing one that is a link."""
    with _parent(root, Path(path) / "_", what, create=True):
        pass
    return Path(path)


def listdir(root: Path | str, path: Path | str, *, what: str = "a folder") -> list[str]:
    """The names in the folder ``path`` inside ``root`` (none when it is missing), reached without
    following a link."""
    try:
        with _parent(root, Path(path) / "_", what, create=False) as (fd, _, _):
            return sorted(os.listdir(fd))
    except FileNotFoundError:
        return []


def slugify(text: str) -> str:
    """A file-name part from a name (a checkpoint, a verifier): letters, digits and ``._``, the rest
    ``-``; a long one keeps its first 80 characters and a digest of the whole, so file names stay within
    the 255 bytes a file system allows."""
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", str(text)).strip("-.") or "model"
    if len(slug) > 100:
        slug = slug[:80].rstrip("-.") + "-" + hashlib.sha256(str(text).encode()).hexdigest()[:12]
    return slug
