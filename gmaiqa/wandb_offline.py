"""Read what an offline W&B run recorded (the ``run-*.wandb`` log), without syncing it anywhere.

Used by the tests to check what was logged, and handy to inspect a run before ``wandb sync``.
"""

from __future__ import annotations

import json
from pathlib import Path


def find_runs(root: str | Path) -> list[Path]:
    """Every offline run folder below ``root`` (``.../wandb/offline-run-*``)."""
    return sorted(Path(root).rglob("offline-run-*"))


_HEADER = 7  # b":W&B", magic 0xBEE1, version
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _records(data: bytes):
    """The W&B transaction log: LevelDB-style 32 KiB blocks of (crc32, length, type, payload) records."""
    if data[:4] != b":W&B":
        raise ValueError("not a W&B transaction log")
    pos, pending = _HEADER, b""
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:  # block trailer padding
            pos += left
            continue
        length = int.from_bytes(data[pos + 4 : pos + 6], "little")
        kind = data[pos + 6]
        payload = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == _FULL:
            yield payload
        elif kind == _FIRST:
            pending = payload
        elif kind == _MIDDLE:
            pending += payload
        elif kind == _LAST:
            yield pending + payload
            pending = b""
        elif kind == 0 and length == 0:
            break


def read_run(run_dir: str | Path) -> dict:
    """{"id", "group", "job_type", "config", "history": [dict per log call], "summary": dict,
    "artifacts": [{"name", "type", "aliases", "metadata", "files", "references"}], "files": [relative
    paths]}."""
    # here, not at import: loads wandb only when this runs
    from wandb.proto import wandb_internal_pb2

    run_dir = Path(run_dir)
    log = next(run_dir.glob("run-*.wandb"))
    result = {
        "id": log.stem.removeprefix("run-"),
        "group": None,
        "job_type": None,
        "config": {},
        "history": [],
        "summary": {},
        "artifacts": [],
    }

    def key_of(item) -> str:
        return item.key or "/".join(item.nested_key)

    for data in _records(log.read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            result["history"].append({key_of(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            for item in record.summary.update:
                result["summary"][key_of(item)] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                result["config"][key_of(item)] = json.loads(item.value_json)
        elif kind == "artifact":
            art = record.artifact
            result["artifacts"].append(
                {
                    "name": art.name,
                    "type": art.type,
                    "aliases": list(art.aliases),
                    "metadata": json.loads(art.metadata) if art.metadata else {},
                    "files": [entry.path for entry in art.manifest.contents],
                    "references": [entry.ref for entry in art.manifest.contents if entry.ref],
                }
            )
        elif kind == "run":
            result["group"] = record.run.run_group or result["group"]
            result["job_type"] = record.run.job_type or result["job_type"]
            for item in record.run.config.update:
                result["config"][key_of(item)] = json.loads(item.value_json)
    result["files"] = sorted(
        str(p.relative_to(run_dir / "files")) for p in (run_dir / "files").rglob("*") if p.is_file()
    )
    return result
