"""Reading and writing the ST artifacts through Beam's FileSystems, so a local
folder, `gs://…` or any other registered Beam filesystem works the same way (on
the launching machine and on the workers). Paths are joined with tracks.join_path.
"""
from __future__ import annotations

import io
import os
from typing import BinaryIO, List

from st_model.tracks import is_remote, list_files

def open_file(path: str) -> BinaryIO:
    """A seekable read channel of `path` (no decompression guessed from the name)."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def exists(path: str) -> bool:
    from apache_beam.io.filesystems import FileSystems
    return FileSystems.exists(path)


def file_metadata(path: str):
    """FileMetadata (path, size_in_bytes, last_updated_in_seconds) of one file."""
    from apache_beam.io.filesystems import FileSystems
    from st_model.tracks import glob_escape
    found = FileSystems.match([glob_escape(path)])[0].metadata_list
    if not found:
        raise FileNotFoundError(f"{path}: no such file")
    return found[0]


def write_file(path: str, data: bytes) -> str:
    """Write `data` to `path` (parent folders created where the filesystem has them)."""
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
    from apache_beam.io.filesystems import FileSystems
    stale = [m.path for m in list_files(folder)
             if m.path.rsplit("/", 1)[-1].startswith(prefix) and m.path.endswith(suffix)]
    if stale:
        FileSystems.delete(stale)
    return stale
