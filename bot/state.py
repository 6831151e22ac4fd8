"""The local state directory (SQLite databases, secrets, logs) readable by this user only.

Her words and her number live in these files; on a shared machine every other local user could
read a 0644 database. The directory is 0700 and each file 0600, created that way (an existing
installation is tightened on start). SQLite creates its -wal and -shm files with the permissions
of the database file."""

from __future__ import annotations

import os
from pathlib import Path

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def private_directory(path: Path) -> Path:
    path.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIRECTORY_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 if missing (before SQLite or Rasa opens it); tighten it if not.

    An existing file is never opened: closing any descriptor of a SQLite file releases every POSIX
    lock this process holds on it, also those of its open (pooled) SQLite connections, and another
    process writing at that moment corrupts the database ("database disk image is malformed" in CI,
    https://www.sqlite.org/howtocorrupt.html section 2.2)."""
    private_directory(path.parent)
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    except FileExistsError:
        pass
    else:
        os.close(descriptor)
    os.chmod(path, FILE_MODE)
    for sidecar in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if sidecar.exists():
            os.chmod(sidecar, FILE_MODE)
    return path
