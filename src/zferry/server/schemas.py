"""The request bodies as OpenAPI shows them (/docs); requests.py checks them."""

from __future__ import annotations

from typing import Any

_BOOL = {"type": "boolean", "default": False}
_SEND = {
    "output_path": {"type": "string", "description": "file under --export-dir; without it the stream is the body"},
    "from_snapshot": {"type": "string", "description": "incremental base (zfs send -i): 'snap' or '#bookmark'"},
    "raw": {**_BOOL, "description": "zfs send -w (always on for encrypted datasets)"},
    "compressed": {**_BOOL, "description": "zfs send -c"},
    "large_blocks": {**_BOOL, "description": "zfs send -L"},
}
SEND = {
    **_SEND,
    "dry_run": {**_BOOL, "description": "only estimate the size (zfs send -nP)"},
    "recursive": {
        **_BOOL,
        "description": "the dataset and its descendants: with output_path a new directory of one file per "
        "dataset and manifest.json; streamed, zfs send -R (no zvols)",
    },
}
RECEIVE = {
    "input_path": {
        "type": "string",
        "description": "file under --import-dir (or send the stream as octet-stream); a directory written by a "
        "recursive send receives its whole tree",
    },
    "force": {**_BOOL, "description": "zfs receive -F, through the destroy guard; refused for encrypted"},
    "dry_run": {**_BOOL, "description": "zfs receive -n"},
}
REPLICATE = {
    "target": {"type": "string", "description": "[[user@]host:]pool/dataset"},
    **_SEND,
    "force": {**_BOOL, "description": "--force-rollback-to-latest-common-snapshot"},
    "recursive": {**_BOOL, "description": "the dataset and its children (zvols each on their own)"},
}
del REPLICATE["output_path"]


def body(properties: dict[str, Any], required: tuple[str, ...] = (), stream: bool = False) -> dict[str, Any]:
    """`openapi_extra` for an endpoint that reads its JSON body (or a stream) itself."""
    content: dict[str, Any] = {
        "application/json": {"schema": {"type": "object", "properties": properties, "required": list(required)}}
    }
    if stream:
        content["application/octet-stream"] = {"schema": {"type": "string", "format": "binary"}}
    return {"requestBody": {"required": bool(required), "content": content}}
