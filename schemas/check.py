"""Row-level check of example features against a TFMD schema (schemas/*.pbtxt).

TFDV validates statistics of a whole dataset; ingestion needs a verdict per example so
that a bad image is listed, not just counted. This checks the parts of the schema the
re-ID and fused-ranking records use: required presence, BYTES/INT/FLOAT type,
value counts, int_domain bounds and string domains. A present list feature may be
empty when its value_count allows it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2


def load_schema(path: str) -> schema_pb2.Schema:
    """Parse a TFMD schema text proto."""
    with open(path, encoding="utf-8") as f:
        try:
            return text_format.Parse(f.read(), schema_pb2.Schema())
        except text_format.ParseError as e:
            raise ValueError(f"{path}: not a valid TFMD schema: {e}") from None


@dataclass
class _Rule:
    name: str
    kind: int
    required: bool
    lo: Optional[int] = None
    hi: Optional[int] = None
    allowed: Optional[Sequence[bytes]] = None
    counts: Optional[Tuple[int, int]] = None  # value_count (min, max); 0 = unbounded


class ExampleValidator:
    """Checks one example's feature dict ({name: bytes | int | float | list})."""

    def __init__(self, schema: schema_pb2.Schema):
        domains = {d.name: [v.encode() for v in d.value] for d in schema.string_domain}
        self.rules: List[_Rule] = []
        for f in schema.feature:
            rule = _Rule(f.name, f.type, f.presence.min_fraction >= 1.0)
            if f.HasField("value_count"):
                rule.counts = (f.value_count.min, f.value_count.max)
            elif f.HasField("shape") and len(f.shape.dim) == 1:
                rule.counts = (f.shape.dim[0].size, f.shape.dim[0].size)
            if f.HasField("int_domain"):
                rule.lo = f.int_domain.min if f.int_domain.HasField("min") else None
                rule.hi = f.int_domain.max if f.int_domain.HasField("max") else None
            if f.HasField("domain"):
                rule.allowed = domains.get(f.domain)
            elif f.HasField("string_domain"):
                rule.allowed = [v.encode() for v in f.string_domain.value]
            self.rules.append(rule)

    @classmethod
    def from_pbtxt(cls, path: str) -> "ExampleValidator":
        return cls(load_schema(path))

    def problems(self, features: Dict[str, object]) -> List[str]:
        """Every way `features` breaks the schema (empty list when it fits)."""
        out = []
        for r in self.rules:
            value = features.get(r.name)
            values = value if isinstance(value, (list, tuple)) else (
                [] if value is None else [value])
            if value is None or (not values and r.counts is None):
                if r.required:
                    out.append(f"missing required feature {r.name!r}")
                continue
            if r.counts is not None and not (
                    r.counts[0] <= len(values) <= (r.counts[1] or len(values))):
                out.append(f"{r.name!r} has {len(values)} values, expected "
                           f"{r.counts[0]} to {r.counts[1] or 'any number'}")
            for v in values:
                if r.kind == schema_pb2.BYTES and not isinstance(v, bytes):
                    out.append(f"{r.name!r} must be bytes, got {type(v).__name__}")
                elif r.kind == schema_pb2.FLOAT and not isinstance(v, float):
                    out.append(f"{r.name!r} must be a float, got {type(v).__name__}")
                elif r.kind == schema_pb2.INT and not isinstance(v, int):
                    out.append(f"{r.name!r} must be an integer, got {type(v).__name__}")
                elif r.kind == schema_pb2.INT and r.lo is not None and v < r.lo:
                    out.append(f"{r.name!r} = {v} is below its minimum {r.lo}")
                elif r.kind == schema_pb2.INT and r.hi is not None and v > r.hi:
                    out.append(f"{r.name!r} = {v} is above its maximum {r.hi}")
                elif r.allowed is not None and v not in r.allowed:
                    out.append(f"{r.name!r} = {v!r} is not one of "
                               f"{[a.decode() for a in r.allowed]}")
        return out
