#!/usr/bin/env python3
"""A case-insensitive, case-preserving filesystem for tests: a FUSE passthrough of BACKING at
MOUNTPOINT that looks names up the way APFS and NTFS do (Unicode normalisation and case
ignored, the spelling a name was made with kept).

    casefold-fs.py BACKING MOUNTPOINT     (runs in the foreground until unmounted)

Used by test-support/casefold.ts. Every lookup of a path component that does not exist as
spelled is matched against the directory's names by NFC + full case folding; symlinks are
never followed here (the kernel resolves them, one lookup at a time, through this same fold,
which is what a restore onto macOS or Windows meets). Kernel caches are off, so a name made
under one spelling is found under any other at once.
"""

import errno
import os
import sys
import unicodedata

from fusepy import FUSE, FuseOSError, Operations


def fold(name):
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


class CaseFold(Operations):
    use_ns = True

    def __init__(self, backing):
        self.backing = os.path.realpath(backing)

    def real(self, path):
        """The backing path of `path`, each component matched folded when not found as spelled
        (a component found nowhere keeps its spelling: it is about to be made)."""
        cur = self.backing
        for seg in [s for s in path.split("/") if s]:
            exact = os.path.join(cur, seg)
            if not os.path.lexists(exact):
                want = fold(seg)
                try:
                    names = os.listdir(cur)
                except OSError:
                    names = []
                match = next((n for n in sorted(names) if fold(n) == want), None)
                if match is not None:
                    exact = os.path.join(cur, match)
            cur = exact
        return cur

    # ---- metadata

    def getattr(self, path, fh=None):
        st = os.lstat(self.real(path))
        keys = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_ino")
        out = {k: getattr(st, k) for k in keys}
        out.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
        return out

    def access(self, path, amode):
        if not os.access(self.real(path), amode, follow_symlinks=False):
            raise FuseOSError(errno.EACCES)

    def chmod(self, path, mode):
        os.chmod(self.real(path), mode)

    def chown(self, path, uid, gid):
        os.lchown(self.real(path), uid, gid)

    def utimens(self, path, times=None):
        os.utime(self.real(path), ns=times, follow_symlinks=False)

    def statfs(self, path):
        sv = os.statvfs(self.real(path))
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files",
                "f_flag", "f_frsize", "f_namemax")
        return {k: getattr(sv, k) for k in keys}

    # ---- names

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self.real(path))

    def readlink(self, path):
        return os.readlink(self.real(path))

    def mkdir(self, path, mode):
        os.mkdir(self.real(path), mode)

    def rmdir(self, path):
        os.rmdir(self.real(path))

    def unlink(self, path):
        os.unlink(self.real(path))

    def symlink(self, name, target):
        os.symlink(target, self.real(name))

    def link(self, name, target):
        os.link(self.real(target), self.real(name))

    def rename(self, old, new):
        src = self.real(old)
        dest = self.real(new)
        if os.path.lexists(dest) and os.path.samestat(os.lstat(src), os.lstat(dest)):
            # one name spelled anew (a change of case): the new spelling is kept
            dest = os.path.join(os.path.dirname(dest), os.path.basename(new))
        os.rename(src, dest)

    def mknod(self, path, mode, dev):
        os.mknod(self.real(path), mode, dev)

    # ---- content

    def create(self, path, mode, fi=None):
        return os.open(self.real(path), os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)

    def open(self, path, flags):
        return os.open(self.real(path), flags)

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        return os.pwrite(fh, data, offset)

    def truncate(self, path, length, fh=None):
        if fh is not None:
            os.ftruncate(fh, length)
        else:
            os.truncate(self.real(path), length)

    def flush(self, path, fh):
        return 0

    def fsync(self, path, datasync, fh):
        if datasync:
            os.fdatasync(fh)
        else:
            os.fsync(fh)

    def release(self, path, fh):
        os.close(fh)


def main():
    backing, mountpoint = sys.argv[1], sys.argv[2]
    FUSE(CaseFold(backing), mountpoint, foreground=True, nothreads=False, use_ino=True,
         entry_timeout=0, attr_timeout=0, negative_timeout=0, default_permissions=True)


if __name__ == "__main__":
    main()
