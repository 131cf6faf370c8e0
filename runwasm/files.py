"""Reading files that may be anything, writing files so a reader never sees half of one,
and telling when one changed (standard library only)."""

from __future__ import annotations

import os
import stat

EINVAL = 22  # errno.EINVAL (the errno module is one more import on the hot path)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO


def open_regular(path: str) -> BinaryIO:
    """`path` opened for reading if it is a regular file (after symlinks); OSError
    (EINVAL, naming the file's kind) for anything else. O_NONBLOCK: a FIFO in its
    place never blocks the open."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(EINVAL, f"{file_kind(mode)}, not a regular file", path)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def file_kind(mode: int) -> str:
    """A file's kind, for messages: "a directory", "a FIFO", ..."""
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link"),
                       (stat.S_ISREG, "a regular file")):
        if test(mode):
            return what
    return "a special file"


def write_atomic(path: str, data: bytes, mode: int | None = None) -> None:
    """Write to a temporary name beside `path`, then rename over it. `mode` defaults to
    the existing file's, else 0644."""
    if mode is None:
        try:
            mode = os.stat(path).st_mode & 0o7777
        except OSError:
            mode = 0o644
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)


def identity(path: str) -> str:
    """Changes whenever the file (or directory) at `path` is replaced, rewritten or
    has entries added or removed; "" where nothing is."""
    try:
        st = os.stat(path)
    except OSError:
        return ""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
