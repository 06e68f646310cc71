"""Reading a run back from ML Metadata: outputs of a pipeline node, and the lineage
of an artifact (every upstream execution and artifact, by input/output events)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
INPUT_EVENTS = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)
DONE = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)


def open_store(sqlite_path: str) -> metadata_store.MetadataStore:
    import os
    if not os.path.isfile(sqlite_path):
        from core.errors import InputError
        raise InputError(f"{sqlite_path}: no ML Metadata store here (run `tfusion run` "
                         "with this --output-dir first)")
    cfg = metadata_store_pb2.ConnectionConfig()
    cfg.sqlite.filename_uri = sqlite_path
    cfg.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(cfg)


def node_executions(store, pipeline_name: str, node_id: str) -> List:
    """Executions of one pipeline node, oldest first."""
    ctx = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node_id}")
    if ctx is None:
        return []
    return sorted(store.get_executions_by_context(ctx.id), key=lambda e: e.id)


def execution_node(store, execution) -> str:
    """The pipeline node id an execution ran for ('' when unknown)."""
    for ctx in store.get_contexts_by_execution(execution.id):
        if store.get_context_types_by_id([ctx.type_id])[0].name == "node":
            return ctx.name.split(".", 1)[-1]
    return ""


def execution_state(execution) -> str:
    return metadata_store_pb2.Execution.State.Name(execution.last_known_state)


def outputs_of(store, execution) -> Dict[str, List]:
    """{output key: [artifacts]} of one execution."""
    events = [e for e in store.get_events_by_execution_ids([execution.id])
              if e.type in OUTPUT_EVENTS]
    arts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    out: Dict[str, List] = {}
    for e in events:
        key = e.path.steps[0].key if e.path.steps else ""
        out.setdefault(key, []).append(arts[e.artifact_id])
    return out


def latest_outputs(store, pipeline_name: str, node_id: str) -> Dict[str, List]:
    """Outputs of the node's latest finished (complete or cached) execution."""
    done = [e for e in node_executions(store, pipeline_name, node_id)
            if e.last_known_state in DONE]
    return outputs_of(store, done[-1]) if done else {}


def artifact_type_name(store, artifact) -> str:
    return store.get_artifact_types_by_id([artifact.type_id])[0].name


@dataclass
class LineageNode:
    artifact: object
    type_name: str
    execution: Optional[object] = None   # the execution that produced it
    node_id: str = ""
    inputs: List["LineageNode"] = field(default_factory=list)


def lineage(store, artifact, seen: Optional[Dict[int, LineageNode]] = None) -> LineageNode:
    """The tree of everything upstream of `artifact` (shared parents appear once,
    then by reference)."""
    seen = {} if seen is None else seen
    if artifact.id in seen:
        return seen[artifact.id]
    node = LineageNode(artifact, artifact_type_name(store, artifact))
    seen[artifact.id] = node
    produced = [e for e in store.get_events_by_artifact_ids([artifact.id])
                if e.type in OUTPUT_EVENTS]
    if not produced:
        return node
    execution = store.get_executions_by_id([produced[-1].execution_id])[0]
    node.execution, node.node_id = execution, execution_node(store, execution)
    in_events = [e for e in store.get_events_by_execution_ids([execution.id])
                 if e.type in INPUT_EVENTS]
    for parent in store.get_artifacts_by_id(sorted({e.artifact_id for e in in_events})):
        node.inputs.append(lineage(store, parent, seen))
    return node


def latest_pushed_model(store):
    """The most recent PushedModel artifact that was actually pushed, or None."""
    pushed = [a for a in store.get_artifacts_by_type("PushedModel")
              if a.custom_properties.get("pushed") and
              a.custom_properties["pushed"].int_value == 1]
    return max(pushed, key=lambda a: a.id) if pushed else None


def format_lineage(root: LineageNode) -> str:
    """An indented tree: artifact type, id, URI; producing node and execution id."""
    lines: List[str] = []
    shown = set()

    def walk(n: LineageNode, depth: int) -> None:
        pad = "  " * depth
        by = (f"  <- {n.node_id or 'execution'} (execution {n.execution.id}, "
              f"{execution_state(n.execution)})" if n.execution is not None else "")
        again = n.artifact.id in shown
        lines.append(f"{pad}{n.type_name} #{n.artifact.id}{' (see above)' if again else ''}"
                     f"{'' if again else by}")
        if again:
            return
        lines.append(f"{pad}    {n.artifact.uri}")
        shown.add(n.artifact.id)
        for child in n.inputs:
            walk(child, depth + 1)
    walk(root, 0)
    return "\n".join(lines)


def flatten(root: LineageNode) -> List[LineageNode]:
    out, stack, seen = [], [root], set()
    while stack:
        n = stack.pop()
        if n.artifact.id in seen:
            continue
        seen.add(n.artifact.id)
        out.append(n)
        stack.extend(n.inputs)
    return out
