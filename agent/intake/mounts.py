"""Which file system holds a folder, read from the mount table: inotify sees nothing of what
another machine writes to a network or FUSE mount, so the watcher polls there."""

from __future__ import annotations

import os
from pathlib import Path

NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smb3", "smbfs", "9p", "ceph", "glusterfs", "afs", "davfs",
     "lustre", "gpfs", "beegfs", "ncpfs", "virtiofs", "vboxsf", "vmhgfs"}
)


def filesystem_type(path: Path, mounts_file: str = "/proc/self/mounts") -> str:
    """The type of the file system holding ``path`` ('' when the mount table cannot be read)."""
    real = os.path.realpath(path)
    best, best_type = "", ""
    try:
        with open(mounts_file, encoding="utf-8") as fh:
            lines = fh.readlines()
    except OSError:
        return ""
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1].encode().decode("unicode_escape")  # \040 for spaces
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, best_type = mount, parts[2]
    return best_type


def choose_mode(configured: str, inbox: Path, mounts_file: str = "/proc/self/mounts") -> str:
    """``inotify`` or ``poll``: auto polls on network and FUSE mounts, where inotify is blind."""
    if configured != "auto":
        return configured
    fstype = filesystem_type(inbox, mounts_file)
    if fstype in NETWORK_FILESYSTEMS or fstype.startswith("fuse"):
        return "poll"
    return "inotify"
