"""The file layout of a TFX Examples artifact — the one place it is spelled out:

    URI/Split-<split>/data_tfrecord-SSSSS-of-NNNNN.gz   GZIP TFRecord files of tf.Examples

as ExampleGen writes it and the stock Trainer and Evaluator read it (ReidExampleGen,
TripletGen and RankingEvalGen write it the same way). Paths only, no I/O: a local
folder and `gs://...` are joined alike.
"""
from __future__ import annotations

import os

SPLIT_PREFIX = "Split-"
FILE_PREFIX = "data_tfrecord"
FILE_SUFFIX = ".gz"


def split_dir(uri: str, split: str) -> str:
    """The folder of one split: URI/Split-<split>."""
    return os.path.join(uri, SPLIT_PREFIX + split)


def split_dirs_pattern(uri: str) -> str:
    """A glob of every split folder of the artifact."""
    return os.path.join(uri, SPLIT_PREFIX + "*")


def split_files_pattern(uri: str, split: str) -> str:
    """A glob of the data files of one split."""
    return os.path.join(split_dir(uri, split), f"{FILE_PREFIX}-*{FILE_SUFFIX}")


def single_file(uri: str, split: str) -> str:
    """The data file of a split written as one file (shard 0 of 1)."""
    return os.path.join(split_dir(uri, split), f"{FILE_PREFIX}-00000-of-00001{FILE_SUFFIX}")


def file_prefix(uri: str, split: str) -> str:
    """The path prefix of a split's data files, for a sharded writer (Beam's
    WriteToTFRecord) that adds -SSSSS-of-NNNNN and FILE_SUFFIX."""
    return os.path.join(split_dir(uri, split), FILE_PREFIX)
