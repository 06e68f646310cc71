"""Fingerprints of what produced an output folder, so that reused outputs match.

A command that reuses earlier outputs records, in the folder, a fingerprint of what
produced them (preset, seed, configuration, and the content of its input folders);
on a later run it reuses the folder only when the fingerprint it would record now is
the same, and otherwise redoes the work.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, Optional

FILENAME = "fingerprint.json"


def tree_digest(folder: str) -> str:
    """SHA-256 over the relative path and bytes of every file under `folder`
    (its own fingerprint file excluded), in sorted order."""
    h = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if name == FILENAME and root == folder:
                continue
            path = os.path.join(root, name)
            h.update(os.path.relpath(path, folder).encode() + b"\0")
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            h.update(b"\0")
    return h.hexdigest()


def make(**parts: Any) -> Dict[str, Any]:
    """A fingerprint: the JSON-able description of what produces an output, plus its digest."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return {"parts": json.loads(text), "digest": hashlib.sha256(text.encode()).hexdigest()}


def recorded(folder: str) -> Optional[Dict[str, Any]]:
    """The fingerprint recorded in `folder`, or None."""
    path = os.path.join(folder, FILENAME)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def matches(folder: str, fingerprint: Dict[str, Any]) -> bool:
    """Whether `folder` was produced by exactly what `fingerprint` describes."""
    old = recorded(folder)
    return old is not None and old.get("digest") == fingerprint["digest"]


def differences(folder: str, fingerprint: Dict[str, Any]) -> str:
    """Which parts differ from the recorded fingerprint, for the log."""
    old = (recorded(folder) or {}).get("parts")
    if old is None:
        return "no fingerprint recorded"
    keys = sorted(set(old) | set(fingerprint["parts"]))
    return ", ".join(f"{k}: {old.get(k)!r} -> {fingerprint['parts'].get(k)!r}"
                     for k in keys if old.get(k) != fingerprint["parts"].get(k))


def forget(folder: str) -> None:
    """Drop the recorded fingerprint before redoing the work, so that an interrupted
    run never leaves a half-written folder that looks complete."""
    path = os.path.join(folder, FILENAME)
    if os.path.isfile(path):
        os.remove(path)


def record(folder: str, fingerprint: Dict[str, Any]) -> None:
    """Write `fingerprint` into `folder` (after its outputs are complete)."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, FILENAME), "w", encoding="utf-8") as f:
        json.dump(fingerprint, f, indent=1, sort_keys=True)
