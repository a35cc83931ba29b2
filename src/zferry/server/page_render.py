"""The status page's HTML from a `GET /v1/status` answer: pure functions, every value escaped.

The first render is complete without JavaScript; the inline script (page_assets.JS) rebuilds the
same sections from the same JSON every 2 s. Elements carry data attributes (`data-task-id`,
`data-bytes-done`, `data-pool`, ...) so that scripts and tests can read the figures exactly.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any, Optional

from zferry.observe import progress, readonly
from zferry.server.page_assets import CSS, JS

FINAL = ("succeeded", "failed", "cancelled")
RECENT = 20  # finished tasks shown
DASH = "\u2013"
DOT = " \u00b7 "
ARROW = " \u2192 "


def esc(value: object) -> str:
    """`value` as HTML text or attribute value (None is empty)."""
    return escape("" if value is None else str(value), quote=True)


def number(value: object) -> Optional[float]:
    """`value` when it is a number (not a bool), else None."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def human_bytes(value: object) -> str:
    """1536 -> '1.5 KiB' (as the CLI's progress lines); None -> a dash."""
    amount = number(value)
    return DASH if amount is None else progress.human_bytes(amount)


def human_rate(value: object) -> str:
    """Bytes per second as '1.5 MiB/s'."""
    return DASH if number(value) is None else human_bytes(value) + "/s"


def human_duration(value: object) -> str:
    """Seconds as '45 s', '12 min', '3.5 h' or '2.0 days' (as the CLI's logs; negative: 0 s)."""
    amount = number(value)
    return DASH if amount is None else readonly.human_duration(max(0.0, amount))


def utc(value: object) -> str:
    """A Unix time as '2026-12-07 14:01:21 UTC'."""
    moment = number(value)
    return DASH if moment is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(int(moment)))


def percent(done: object, total: object) -> Optional[int]:
    """Whole percent of `done` in `total` (at most 100), None when the total is unknown."""
    d, t = number(done), number(total)
    return None if d is None or t is None or t <= 0 else min(100, int(d * 100 // t))


def _text(value: object) -> str:
    return "" if value is None else str(value)


def describe(task: Mapping[str, Any]) -> str:
    """What a task works on, e.g. 'pool/data@s1 -> dst/data' (plain text; escape it)."""
    request = task.get("request") or {}
    what = _text(request.get("dataset")) + (f"@{request['snapshot']}" if request.get("snapshot") else "")
    kind = task.get("kind")
    if kind == "send":
        base = f" (from {request['from_snapshot']})" if request.get("from_snapshot") else ""
        return what + base + ARROW + (_text(request["output_path"]) if request.get("output_path") else "HTTP stream")
    if kind == "receive":
        return (_text(request["input_path"]) if request.get("input_path") else "HTTP stream") + ARROW + what
    if kind == "replicate":
        return what + ARROW + _text(request.get("target"))
    return ", ".join(_text(p) for p in task.get("pools") or ())


def summary(result: object) -> str:
    """A task's result as 'key: value, ...' (lists and objects by their size)."""
    if not isinstance(result, Mapping):
        return _text(result)
    parts = []
    for key, value in result.items():
        shown = len(value) if isinstance(value, (list, tuple, Mapping)) else value
        parts.append(f"{key}: {'none' if shown is None else shown}")
    return ", ".join(parts)


def _attrs(attrs: Mapping[str, object]) -> str:
    return "".join(f' {name}="{esc(value)}"' for name, value in attrs.items() if value is not None)


def _badge(text: object, css: str) -> str:
    return f'<span class="badge {css}">{esc(text)}</span>'


def _health_class(health: object) -> str:
    return "good" if health == "ONLINE" else "warn" if health == "DEGRADED" else "bad"


def _state_class(state: object) -> str:
    return {"succeeded": "good", "failed": "bad", "cancelled": "warn"}.get(_text(state), "busy")


def _td(label: str, html: str, css: Optional[str] = None) -> str:
    return f"<td{_attrs({'data-label': label, 'class': css})}>{html}</td>"


def _table(heads: Sequence[str], rows: Iterable[str]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in heads)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _code(value: object) -> str:
    return f"<code>{esc(value)}</code>"


def _short_id(task_id: object) -> str:
    return f'<code class="id">{esc(_text(task_id)[:8])}</code>'


def _pool_row(pool: Mapping[str, Any]) -> str:
    size, allocated = number(pool.get("size")), number(pool.get("allocated"))
    used = percent(allocated, size)
    used_text = "" if used is None else f"{used}%"
    meter = ""
    if size:
        bounds = {"min": 0, "max": size, "value": allocated or 0, "low": 0.8 * size, "high": 0.9 * size, "optimum": 0}
        meter = f"<meter{_attrs(bounds)}>{used_text}</meter>"
    busy = pool.get("busy_task")
    busy_html = f'<code class="id" data-task="{esc(busy)}">{esc(_text(busy)[:8])}</code>' if busy else "idle"
    cells = (
        _td("Pool", _code(pool.get("name"))),
        _td("Health", _badge(pool.get("health"), _health_class(pool.get("health")))),
        _td("Size", esc(human_bytes(size)), "num"),
        _td("Allocated", esc(human_bytes(allocated)), "num"),
        _td("Free", esc(human_bytes(pool.get("free"))), "num"),
        _td("Used", meter + (f" {used_text}" if used_text else ""), "num"),
        _td("Busy with", busy_html),
    )
    return f'<tr class="pool" data-pool="{esc(pool.get("name"))}">{"".join(cells)}</tr>'


def render_pools(pools: Sequence[Mapping[str, Any]]) -> str:
    """The pools table: health, size, allocated, free, use, the task keeping it busy."""
    if not pools:
        return '<p class="empty">No pool.</p>'
    heads = ("Pool", "Health", "Size", "Allocated", "Free", "Used", "Busy with")
    return _table(heads, (_pool_row(p) for p in pools))


def _task_attrs(task: Mapping[str, Any]) -> dict[str, object]:
    total = number(task.get("bytes_total"))
    return {
        "data-task-id": _text(task.get("id")),
        "data-state": _text(task.get("state")),
        "data-bytes-done": int(number(task.get("bytes_done")) or 0),
        "data-bytes-total": None if total is None else int(total),
    }


def _progress(task: Mapping[str, Any]) -> str:
    done, total = number(task.get("bytes_done")) or 0, number(task.get("bytes_total"))
    share = percent(done, total)
    label = f"progress of task {_text(task.get('id'))[:8]}"
    if share is None or total is None:
        return f"<progress{_attrs({'aria-label': label})}></progress>"
    attrs = {"aria-label": label, "max": int(total), "value": int(min(done, total))}
    return f"<progress{_attrs(attrs)}>{share}%</progress>"


def render_running_task(task: Mapping[str, Any]) -> str:
    """One running (or queued) task: what it does, a progress bar, bytes, rate, start."""
    share = percent(task.get("bytes_done"), task.get("bytes_total"))
    amount = human_bytes(task.get("bytes_done"))
    if number(task.get("bytes_total")) is not None:
        amount += f" of {human_bytes(task.get('bytes_total'))}"
    if share is not None:
        amount += f" ({share}%)"
    head = (
        f'<div class="head"><strong class="kind">{esc(task.get("kind"))}</strong>'
        f'<span class="what mono">{esc(describe(task))}</span>'
        f"{_badge(task.get('state'), _state_class(task.get('state')))}</div>"
    )
    nums = (
        f'<p class="nums"><span class="bytes">{esc(amount)}</span>{DOT}'
        f'<span class="rate">{esc(human_rate(task.get("rate_bytes_per_s")))}</span>{DOT}started '
        f"{esc(utc(task.get('started')))}{DOT}task {_short_id(task.get('id'))}</p>"
    )
    return f"<article{_attrs({'class': 'task', **_task_attrs(task)})}>{head}{_progress(task)}{nums}</article>"


def render_running(tasks: Sequence[Mapping[str, Any]]) -> str:
    """Every task not ended yet, with live progress."""
    if not tasks:
        return '<p class="empty">No task is running.</p>'
    return "".join(render_running_task(t) for t in tasks)


def _recent_row(task: Mapping[str, Any]) -> str:
    outcome = _text(task.get("error")) or summary(task.get("result"))
    cells = (
        _td("Ended", esc(utc(task.get("ended"))), "num"),
        _td("Task", _short_id(task.get("id"))),
        _td("Kind", esc(task.get("kind"))),
        _td("What", f'<span class="mono">{esc(describe(task))}</span>'),
        _td("State", _badge(task.get("state"), _state_class(task.get("state")))),
        _td("Bytes", esc(human_bytes(task.get("bytes_done"))), "num"),
        _td("Rate", esc(human_rate(task.get("rate_bytes_per_s"))), "num"),
        _td("Outcome", esc(outcome), "outcome"),
    )
    return f"<tr{_attrs(_task_attrs(task))}>{''.join(cells)}</tr>"


def render_recent(tasks: Sequence[Mapping[str, Any]]) -> str:
    """Finished tasks, newest first."""
    if not tasks:
        return '<p class="empty">No finished task in the last hour.</p>'
    heads = ("Ended", "Task", "Kind", "What", "State", "Bytes", "Rate", "Outcome")
    return _table(heads, (_recent_row(t) for t in tasks))


def _pair_row(pair: Mapping[str, Any]) -> str:
    source_latest, target_latest, result = pair.get("source_latest"), pair.get("target_latest"), pair.get("last_result")
    synced = bool(source_latest) and source_latest == target_latest
    attrs: dict[str, object] = {"data-source": _text(pair.get("source")), "data-target": _text(pair.get("target"))}
    lag = number(pair.get("lag_seconds"))
    attrs["data-lag-seconds"] = None if lag is None else f"{lag:.15g}"
    cells = (
        _td("Source", _code(pair.get("source"))),
        _td("Target", _code(pair.get("target"))),
        _td("Source latest", _code(_text(source_latest) or DASH)),
        _td("Target latest", _code(_text(target_latest) or DASH) + (" " + _badge("in sync", "good") if synced else "")),
        _td("Lag", esc(human_duration(lag)), "num"),
        _td("Last run", f"{_badge(result, _state_class(result))} {esc(utc(pair.get('last_run_end')))}", "num"),
    )
    return f"<tr{_attrs(attrs)}>{''.join(cells)}</tr>"


def render_pairs(pairs: Sequence[Mapping[str, Any]]) -> str:
    """Each replicated pair: the latest snapshot on both sides, the lag, the last run."""
    if not pairs:
        return '<p class="empty">No replication since the server started.</p>'
    heads = ("Source", "Target", "Source latest", "Target latest", "Lag", "Last run")
    return _table(heads, (_pair_row(p) for p in pairs))


def _head(title: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark"><meta name="referrer" content="no-referrer">'
        f'<link rel="icon" href="data:,"><title>{esc(title)}</title><style>{CSS}</style></head>'
    )


def _section(ident: str, title: str, body: str) -> str:
    heading = f'<h2 id="h-{ident}">{esc(title)}</h2>'
    return f'<section aria-labelledby="h-{ident}">{heading}<div id="{ident}">{body}</div></section>'


def render_page(status: Mapping[str, Any]) -> str:
    """The whole status page for a `GET /v1/status` answer (plus an optional `error` to show)."""
    tasks = [t for t in status.get("tasks") or () if isinstance(t, Mapping)]
    running = [t for t in tasks if t.get("state") not in FINAL]
    recent = [t for t in tasks if t.get("state") in FINAL][:RECENT]
    error = _text(status.get("error"))
    error_html = f'<p id="error" class="error" role="alert"{"" if error else " hidden"}>{esc(error)}</p>'
    header = (
        '<header><h1>zferry-server</h1><p class="updated" id="updated" aria-live="polite">'
        "Refreshes every 2 s</p>"
        '<form method="post" action="logout"><button type="submit">Log out</button></form></header>'
    )
    sections = (
        _section("running", "Running tasks", render_running(running)),
        _section("pools", "Pools", render_pools([p for p in status.get("pools") or () if isinstance(p, Mapping)])),
        _section(
            "pairs",
            "Replicated datasets",
            render_pairs([p for p in status.get("pairs") or () if isinstance(p, Mapping)]),
        ),
        _section("recent", "Recent tasks", render_recent(recent)),
    )
    return (
        f"{_head('zferry-server status')}<body>{header}<main>{error_html}{''.join(sections)}"
        '<noscript><p class="note">Without JavaScript this page does not refresh itself: reload it.</p></noscript>'
        f"</main><script>{JS}</script></body></html>\n"
    )


def render_login(message: str = "") -> str:
    """The login form: the server's token, posted to `login` (it becomes an HttpOnly cookie)."""
    note = f'<p class="error" role="alert">{esc(message)}</p>' if message else ""
    form = (
        '<form class="login" method="post" action="login"><h1>zferry-server</h1>'
        f'{note}<p class="note">Sign in with the server\'s API token (the first line of its --token-file).</p>'
        '<label for="token">Token</label>'
        '<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>'
        '<button type="submit">Sign in</button></form>'
    )
    return f"{_head('zferry-server: sign in')}<body><main>{form}</main></body></html>\n"
