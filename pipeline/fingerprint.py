"""Fingerprints of what produced an output folder, so that reused outputs match.

A command that reuses earlier outputs records, in the folder, a fingerprint of what
produced them (preset, seed, configuration, and the content of its input folders);
on a later run it reuses the folder only when the fingerprint it would record now is
the same, and otherwise redoes the work. A folder's content has one fingerprint,
tree_digest, which the pipeline's ReidExampleGen also takes as its dataset's.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, List, Optional, Tuple

FILENAME = "fingerprint.json"


def _listing(folder: str) -> List[Tuple[str, str]]:
    """(relative path, path) of every file under `folder` (local or remote, through
    Beam's FileSystems), its own fingerprint file excluded, sorted by path."""
    from core.files import is_folder, list_files
    root = folder.rstrip("/")
    if not is_folder(root):
        return []
    out = [(m.path[len(root):].lstrip("/"), m.path)
           for m in list_files(root, recursive=True)]
    return [(rel, path) for rel, path in out if rel != FILENAME]


def _digest(files: List[Tuple[str, str]]) -> str:
    from core.files import open_file
    h = hashlib.sha256()
    for rel, path in files:
        h.update(rel.encode() + b"\0")
        with open_file(path) as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def tree_digest(folder: str) -> str:
    """The one fingerprint of a folder's content: SHA-256 over the relative path and
    bytes of every file under `folder` (its own fingerprint file excluded), in sorted
    order. Local and remote folders (gs://...) are read alike."""
    return _digest(_listing(folder))


def dataset_fingerprint(root: str) -> str:
    """tree_digest of a dataset folder, which must hold files: part of
    ReidExampleGen's cache key (and of the demo's), so changed content is
    re-ingested and unchanged content is not."""
    files = _listing(root)
    if not files:
        from pipeline.run_config import RunConfigError
        raise RunConfigError(f"{root.rstrip('/')}: dataset folder is empty or does not "
                             "exist")
    return _digest(files)


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
