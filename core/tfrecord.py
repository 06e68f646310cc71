"""tf.Example serialization and TFRecord framing without TensorFlow.

A writer that imports TensorFlow only to build tf.Examples pays ~2.5 s of start-up;
these encode the same bytes by the protobuf wire format
(tensorflow/core/example/{example,feature}.proto):

  Example  { Features features = 1; }
  Features { map<string, Feature> feature = 1; }   # entries {key = 1; value = 2}
  Feature  { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
                          Int64List int64_list = 3; } }
  BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1 [packed]; }
  Int64List { repeated int64 value = 1 [packed]; }

and the TFRecord framing (tensorflow/core/lib/io/record_writer.cc): per record
uint64 length, masked crc32c of the length, the data, masked crc32c of the data
(all little-endian). TensorFlow's parsers read them back (tests/test_tfrecord.py).
"""
from __future__ import annotations

import struct
from typing import Dict, Sequence, Union

import numpy as np

_MASK_DELTA = 0xA282EAD8


def varint(n: int) -> bytes:
    """Base-128 varint of a non-negative int (protobuf wire format)."""
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def length_delimited(field: int, payload: bytes) -> bytes:
    """Field `field` of wire type 2 (bytes, string, message, packed list)."""
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def bytes_values(values: Sequence[bytes]) -> bytes:
    """The `value` fields of a BytesList (each `0x0A len bytes`), to join with others."""
    return b"".join(b"\x0a" + varint(len(v)) + v for v in values)


def bytes_feature(values: Union[Sequence[bytes], bytes]) -> bytes:
    """A Feature holding a BytesList; `values` may be the joined bytes_values."""
    body = values if isinstance(values, bytes) else bytes_values(values)
    return length_delimited(1, body)


def float_feature(values) -> bytes:
    """A Feature holding a FloatList (packed float32; float64 input rounds to nearest)."""
    packed = np.asarray(values, "<f4").tobytes()
    return length_delimited(2, length_delimited(1, packed) if packed else b"")


def int64_feature(values) -> bytes:
    """A Feature holding an Int64List (packed varints; negatives as 10-byte two's
    complement, as protobuf writes them)."""
    packed = b"".join(varint(int(v) & 0xFFFFFFFFFFFFFFFF) for v in values)
    return length_delimited(3, length_delimited(1, packed) if packed else b"")


def example(features: Dict[str, bytes]) -> bytes:
    """A serialized tf.Example of {name: an encoded Feature (*_feature above)}."""
    body = b"".join(length_delimited(1, length_delimited(1, key.encode())
                                     + length_delimited(2, feature))
                    for key, feature in features.items())
    return length_delimited(1, body)


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C: rotate right by 15 bits, add 0xa282ead8."""
    import google_crc32c  # pinned (constraints.txt); ~4 ms to import
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One TFRecord: length, its masked crc, the data, the data's masked crc."""
    length = struct.pack("<Q", len(data))
    return (length + struct.pack("<I", masked_crc32c(length)) + data
            + struct.pack("<I", masked_crc32c(data)))
