"""Paths, listings and file I/O through Beam's FileSystems, so a local folder,
`gs://…` or any other registered Beam filesystem works the same way (on the
launching machine and on the workers). Local paths (no scheme) of the common
operations go straight to `os` and `open`, as Beam's LocalFileSystem does, so a
command on local files never imports Beam (about 1.2 s of start-up).
"""
from __future__ import annotations

import io
import os
import re
from typing import BinaryIO, List, NamedTuple

# Beam's FileSystems.URI_SCHEMA_PATTERN: a path matching it names a registered scheme
_SCHEME = re.compile(r"(?P<scheme>[a-zA-Z][-a-zA-Z0-9+.]*)://.*")


def is_remote(path: str) -> bool:
    """True for a path with a scheme (`gs://...`): never joined onto a local root."""
    return _SCHEME.match(path.strip()) is not None


def join_path(root: str, *parts: str) -> str:
    """`root/part/...` for a local or remote root."""
    if not is_remote(root):
        return os.path.join(root, *parts)
    from apache_beam.io.filesystems import FileSystems
    return FileSystems.join(root, *parts)


def glob_escape(path: str) -> str:
    """`path` with Beam's glob characters matched literally."""
    return re.sub(r"([*?\[])", r"[\1]", path)


class LocalFile(NamedTuple):
    """What Beam's FileMetadata says of a local file (its LocalFileSystem's values)."""
    path: str
    size_in_bytes: int
    last_updated_in_seconds: float


def _local_file(path: str) -> LocalFile:
    return LocalFile(path, os.path.getsize(path), os.path.getmtime(path))


def list_files(folder: str, recursive: bool = False) -> list:
    """FileMetadata (path, size_in_bytes, last_updated_in_seconds) of the files in
    `folder` (and its sub-folders when `recursive`), sorted by path; [] when none."""
    if not is_remote(folder):
        found = []
        for root, _, files in os.walk(folder):
            for name in files:
                try:
                    found.append(_local_file(os.path.join(root, name)))
                except OSError:      # gone since the listing, as Beam skips it
                    pass
            if not recursive:
                break
        return sorted(found, key=lambda m: m.path)
    from apache_beam.io.filesystems import FileSystems
    pattern = join_path(glob_escape(folder.rstrip("/")), "**" if recursive else "*")
    found = FileSystems.match([pattern])[0].metadata_list
    return sorted(found, key=lambda m: m.path)


def is_folder(path: str) -> bool:
    """A local folder, or a remote prefix that holds at least one file."""
    if not is_remote(path):
        return os.path.isdir(path)
    from apache_beam.io.filesystems import FileSystems
    pattern = join_path(glob_escape(path.rstrip("/")), "**")
    return bool(FileSystems.match([pattern], limits=[1])[0].metadata_list)


def is_file(path: str) -> bool:
    if not is_remote(path):
        return os.path.isfile(path)
    from apache_beam.io.filesystems import FileSystems
    return FileSystems.exists(path)


def open_file(path: str) -> BinaryIO:
    """A seekable read channel of `path` (no decompression guessed from the name)."""
    if not is_remote(path):
        return open(path, "rb")
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def exists(path: str) -> bool:
    if not is_remote(path):
        return os.path.exists(path)
    from apache_beam.io.filesystems import FileSystems
    return FileSystems.exists(path)


def file_metadata(path: str):
    """FileMetadata (path, size_in_bytes, last_updated_in_seconds) of one file."""
    if not is_remote(path):
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such file")
        return _local_file(path)
    from apache_beam.io.filesystems import FileSystems
    found = FileSystems.match([glob_escape(path)])[0].metadata_list
    if not found:
        raise FileNotFoundError(f"{path}: no such file")
    return found[0]


def write_file(path: str, data: bytes) -> str:
    """Write `data` to `path` (parent folders created where the filesystem has them)."""
    if not is_remote(path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)
    return path


def write_with(path: str, save) -> str:
    """Write what `save(buffer)` puts into an in-memory buffer to `path`."""
    buf = io.BytesIO()
    save(buf)
    return write_file(path, buf.getvalue())


def make_folder(path: str) -> None:
    """Create a local folder (remote object stores have no folders to create)."""
    if not is_remote(path):
        os.makedirs(path, exist_ok=True)


def is_folder_path(path: str, file_suffix: str) -> bool:
    """Whether `path` names a folder rather than a file ending in `file_suffix`: an
    existing local folder, or any path not ending in the suffix."""
    if not is_remote(path) and os.path.isdir(path):
        return True
    return not path.endswith(file_suffix)


def remove_files(folder: str, prefix: str, suffix: str) -> List[str]:
    """Delete the files `folder/prefix*suffix`; returns their paths."""
    stale = [m.path for m in list_files(folder)
             if m.path.rsplit("/", 1)[-1].startswith(prefix) and m.path.endswith(suffix)]
    if not is_remote(folder):
        for path in stale:
            os.remove(path)
    elif stale:
        from apache_beam.io.filesystems import FileSystems
        FileSystems.delete(stale)
    return stale
