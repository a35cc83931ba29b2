"""Request bodies and path values, checked with zferry's validators before anything runs. Pure.

Unknown fields are refused (a typo such as `"forse": true` must not run a plain receive).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from zferry import validate
from zferry.errors import UsageError
from zferry.model import Endpoint
from zferry.server.errors import ApiError, bad_request

MAX_JSON_BYTES = 64 * 1024


@dataclass(frozen=True)
class SendRequest:
    output_path: Optional[str] = None
    from_snapshot: Optional[str] = None  # "name" (a snapshot of the same dataset) or "#name" (a bookmark)
    raw: bool = False
    compressed: bool = False
    large_blocks: bool = False
    dry_run: bool = False
    recursive: bool = False  # the dataset and its descendants (tree_service.py)


@dataclass(frozen=True)
class ReceiveRequest:
    input_path: Optional[str] = None
    force: bool = False
    dry_run: bool = False


@dataclass(frozen=True)
class ReplicateRequest:
    target: Endpoint
    from_snapshot: Optional[str] = None
    raw: bool = False
    compressed: bool = False
    large_blocks: bool = False
    force: bool = False
    recursive: bool = False


def checked(call: Any, *args: Any) -> Any:
    """Run a zferry validator; its UsageError becomes a 400 with the validator's message."""
    try:
        return call(*args)
    except UsageError as error:
        raise bad_request(str(error), "fix the value; names use letters, digits and _ - : . and space") from None


def dataset(name: str) -> str:
    """A dataset name from a URL path (slashes raw or %2F)."""
    return str(checked(validate.dataset_name, name.strip("/")))


def snapshot(name: str) -> str:
    return str(checked(validate.snapshot_name, name))


def base_snapshot(text: str, dataset_name: str) -> str:
    """`from_snapshot` as `@name` or `#name`: given as `name`, `@name`, `#name` or `dataset@name`."""
    head, sigil, name = text.rpartition("@") if "@" in text else text.rpartition("#")
    if not sigil:
        return "@" + snapshot(text)
    if head and head != dataset_name:
        raise bad_request(
            f"from_snapshot {text!r} is not of {dataset_name}", "give a snapshot of the same dataset, e.g. 'daily1'"
        )
    return sigil + snapshot(name)


def parse_json(data: bytes) -> dict[str, Any]:
    """A JSON object (an empty body is `{}`)."""
    if len(data) > MAX_JSON_BYTES:
        raise ApiError(413, f"request body over {MAX_JSON_BYTES} bytes", "send a smaller JSON object")
    if not data.strip():
        return {}
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise bad_request(f"malformed JSON: {error}", 'send a JSON object such as {"dry_run": true}') from None
    if not isinstance(value, dict):
        raise bad_request("the body must be a JSON object", 'send a JSON object such as {"dry_run": true}')
    return value


def _fields(body: Mapping[str, Any], kinds: Mapping[str, type]) -> dict[str, Any]:
    unknown = sorted(set(body) - set(kinds))
    if unknown:
        raise bad_request(f"unknown field(s): {', '.join(unknown)}", f"allowed: {', '.join(kinds)}")
    out: dict[str, Any] = {}
    for key, value in body.items():
        if value is None:
            continue
        if not isinstance(value, kinds[key]):
            raise bad_request(f"{key} must be a {kinds[key].__name__}", f"e.g. {_example(kinds[key])}")
        out[key] = value
    return out


def _example(kind: type) -> str:
    return "true" if kind is bool else '"daily1"'


def send_request(body: Mapping[str, Any], dataset_name: str) -> SendRequest:
    kinds = {"output_path": str, "from_snapshot": str, "raw": bool, "compressed": bool, "large_blocks": bool}
    values = _fields(body, {**kinds, "dry_run": bool, "recursive": bool})
    if "from_snapshot" in values:
        values["from_snapshot"] = base_snapshot(values["from_snapshot"], dataset_name)
    return SendRequest(**values)


def receive_request(body: Mapping[str, Any]) -> ReceiveRequest:
    return ReceiveRequest(**_fields(body, {"input_path": str, "force": bool, "dry_run": bool}))


def replicate_request(body: Mapping[str, Any], dataset_name: str) -> ReplicateRequest:
    kinds = {"target": str, "from_snapshot": str, "raw": bool, "compressed": bool, "large_blocks": bool}
    values = _fields(body, {**kinds, "force": bool, "recursive": bool})
    if "target" not in values:
        raise bad_request("target is missing", 'e.g. {"target": "backup/data"} or {"target": "root@nas2:backup/data"}')
    values["target"] = checked(validate.endpoint, values["target"])
    if "from_snapshot" in values:
        values["from_snapshot"] = base_snapshot(values["from_snapshot"], dataset_name)
    return ReplicateRequest(**values)


def flag(value: Optional[str], name: str) -> bool:
    """A boolean query parameter (`?force=true`)."""
    if value is None or value.lower() in ("", "0", "false", "no"):
        return False
    if value.lower() in ("1", "true", "yes"):
        return True
    raise bad_request(f"{name}={value!r} is not a boolean", f"use {name}=true or {name}=false")
