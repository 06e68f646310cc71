"""A Beam FileSystem under its own scheme, `tfusiontest://`, over a local folder.

Importing this module registers it with Beam (FileSystems finds every FileSystem
subclass). `tfusiontest://a/b` is stored at `<root>/a/b`, with root from
$TFUSIONTEST_ROOT: code that reads or writes such a path through FileSystems works,
code that hands it to os / open() finds nothing (or writes into a folder literally
named `tfusiontest:`), which is what the tests check for.
"""
import os

from apache_beam.io.filesystem import FileMetadata, FileSystem
from apache_beam.io.localfilesystem import LocalFileSystem

SCHEME = "tfusiontest"
PREFIX = SCHEME + "://"
ROOT_ENV = "TFUSIONTEST_ROOT"


class SchemeFileSystem(FileSystem):
    """Every operation of the LocalFileSystem, on scheme paths mapped under a root."""

    def __init__(self, pipeline_options=None):
        super().__init__(pipeline_options)
        self._local = LocalFileSystem(pipeline_options)

    @classmethod
    def scheme(cls):
        return SCHEME

    # path mapping
    @staticmethod
    def local(path: str) -> str:
        assert path.startswith(PREFIX), path
        return os.path.join(os.environ[ROOT_ENV], path[len(PREFIX):])

    @staticmethod
    def remote(local_path: str) -> str:
        return PREFIX + os.path.relpath(local_path, os.environ[ROOT_ENV])

    def _meta(self, m: FileMetadata) -> FileMetadata:
        return FileMetadata(self.remote(m.path), m.size_in_bytes, m.last_updated_in_seconds)

    # the FileSystem interface
    def join(self, basepath, *paths):
        return "/".join([basepath.rstrip("/")] + [p.strip("/") for p in paths])

    def split(self, path):
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def has_dirs(self):
        return True

    def mkdirs(self, path):
        self._local.mkdirs(self.local(path))

    def _list(self, dir_or_prefix):
        for m in self._local._list(self.local(dir_or_prefix)):
            yield self._meta(m)

    def create(self, path, mime_type="application/octet-stream", compression_type="auto"):
        return self._local.create(self.local(path), mime_type, compression_type)

    def open(self, path, mime_type="application/octet-stream", compression_type="auto"):
        return self._local.open(self.local(path), mime_type, compression_type)

    def copy(self, source_file_names, destination_file_names):
        self._local.copy([self.local(p) for p in source_file_names],
                         [self.local(p) for p in destination_file_names])

    def rename(self, source_file_names, destination_file_names):
        self._local.rename([self.local(p) for p in source_file_names],
                           [self.local(p) for p in destination_file_names])

    def exists(self, path):
        return self._local.exists(self.local(path))

    def size(self, path):
        return self._local.size(self.local(path))

    def last_updated(self, path):
        return self._local.last_updated(self.local(path))

    def checksum(self, path):
        return self._local.checksum(self.local(path))

    def metadata(self, path):
        return self._meta(self._local.metadata(self.local(path)))

    def delete(self, paths):
        self._local.delete([self.local(p) for p in paths])
