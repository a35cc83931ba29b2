"""The status page's stylesheet and script, inlined into the page (no build step, no CDN, no fonts to fetch).

The Content-Security-Policy allows exactly these two blocks by their SHA-256 hashes (`CSP`), so
nothing else (no injected markup, no other origin) can run or style the page.
"""

from __future__ import annotations

import base64
import hashlib

CSS = """
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #f6f7f9; --card: #fff; --line: #d7dbe0;
  --muted: #5b6570; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --run: #0969da; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117; --card: #161b22;
  --line: #30363d; --muted: #8b949e; --ok: #3fb950; --warn: #d29922; --bad: #f85149; --run: #58a6ff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
body > header { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem;
  padding: .75rem 1rem; border-bottom: 1px solid var(--line); background: var(--card); }
h1 { font-size: 1.15rem; margin: 0; }
h2 { font-size: 1rem; margin: 1.25rem 0 .5rem; }
main { max-width: 1100px; margin: 0 auto; padding: 0 1rem 2rem; }
.updated { color: var(--muted); margin: 0; flex: 1; font-size: .85rem; }
button { font: inherit; padding: .35rem .9rem; border: 1px solid var(--line); border-radius: 6px;
  background: var(--bg); color: var(--fg); cursor: pointer; }
form { margin: 0; }
.error { color: var(--bad); border: 1px solid var(--bad); border-radius: 6px; padding: .5rem .75rem; }
.empty, .note { color: var(--muted); margin: .25rem 0; }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line);
  border-radius: 6px; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .8rem; color: var(--muted); font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .85em;
  overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 1rem; font-size: .8rem; font-weight: 600;
  border: 1px solid currentColor; white-space: nowrap; }
code.id { white-space: nowrap; }
.good { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); } .busy { color: var(--run); }
.task { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .6rem .75rem;
  margin-bottom: .6rem; }
.task .head { display: flex; flex-wrap: wrap; gap: .25rem .6rem; align-items: baseline; }
.task .what { overflow-wrap: anywhere; flex: 1; }
.task progress { width: 100%; height: 1rem; margin: .4rem 0 .2rem; }
.task .nums { margin: 0; color: var(--muted); font-size: .85rem; }
meter { width: 5rem; vertical-align: middle; }
.outcome { max-width: 28rem; overflow-wrap: anywhere; font-size: .85rem; }
.login { max-width: 24rem; margin: 3rem auto; padding: 1.25rem; background: var(--card);
  border: 1px solid var(--line); border-radius: 8px; }
.login label { display: block; margin-bottom: .35rem; font-weight: 600; }
.login input { width: 100%; font: inherit; padding: .45rem; margin-bottom: .75rem; border: 1px solid var(--line);
  border-radius: 6px; background: var(--bg); color: var(--fg); }
@media (max-width: 640px) {
  table, tbody, tr, td { display: block; width: 100%; }
  table { border: 0; background: none; }
  thead { display: none; }
  tr { background: var(--card); border: 1px solid var(--line); border-radius: 6px; margin-bottom: .6rem; }
  td { display: flex; align-items: baseline; gap: .4rem; border-bottom: 0; padding: .25rem .6rem;
    overflow-wrap: anywhere; }
  td.num { white-space: normal; }
  tr.pool { display: flex; flex-wrap: wrap; padding: .25rem 0; }
  tr.pool td { width: auto; padding: .15rem .6rem; }
  tr.pool td::before { flex: none; }
  td::before { content: attr(data-label); flex: 0 0 7.5rem; color: var(--muted); font-size: .8rem; }
  .outcome { max-width: none; }
}
"""

# Mirrors page_render.py: the same markup, built with DOM calls (text only through textContent, so
# nothing from the server is parsed as HTML), from a GET v1/status answer every 2 s.
JS = """
(function () {
  "use strict";
  var UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
  var FINAL = ["succeeded", "failed", "cancelled"];
  var RECENT = 20;
  function num(v) { return typeof v === "number" && isFinite(v) ? v : null; }
  function bytes(n) {
    n = num(n); if (n === null) return "\\u2013";
    var u = 0; while (Math.abs(n) >= 1024 && u < UNITS.length - 1) { n /= 1024; u++; }
    return u === 0 ? n.toFixed(0) + " B" : n.toFixed(1) + " " + UNITS[u];
  }
  function rate(r) { return num(r) === null ? "\\u2013" : bytes(r) + "/s"; }
  function duration(s) {
    s = num(s); if (s === null) return "\\u2013";
    s = Math.max(0, s);
    if (s < 120) return s.toFixed(0) + " s";
    if (s < 7200) return (s / 60).toFixed(0) + " min";
    if (s < 172800) return (s / 3600).toFixed(1) + " h";
    return (s / 86400).toFixed(1) + " days";
  }
  function utc(t) {
    t = num(t); if (t === null) return "\\u2013";
    return new Date(Math.floor(t) * 1000).toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }
  function percent(done, total) {
    done = num(done); total = num(total);
    return done === null || total === null || total <= 0 ? null : Math.min(100, Math.floor(done * 100 / total));
  }
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, String(attrs[k]));
    });
    (kids || []).forEach(function (c) { e.append(c === null || c === undefined ? "" : c); });
    return e;
  }
  function str(v) { return v === null || v === undefined ? "" : String(v); }
  function healthClass(h) { return h === "ONLINE" ? "good" : h === "DEGRADED" ? "warn" : "bad"; }
  function stateClass(s) {
    return s === "succeeded" ? "good" : s === "failed" ? "bad" : s === "cancelled" ? "warn" : "busy";
  }
  function shortId(id) { return el("code", {"class": "id"}, [str(id).slice(0, 8)]); }
  function badge(text, cls) { return el("span", {"class": "badge " + cls}, [text]); }
  function describe(t) {
    var r = t.request || {}, what = str(r.dataset);
    if (r.snapshot) what += "@" + r.snapshot;
    if (t.kind === "send") {
      if (r.from_snapshot) what += " (from " + r.from_snapshot + ")";
      return what + " \\u2192 " + (r.output_path ? str(r.output_path) : "HTTP stream");
    }
    if (t.kind === "receive") return (r.input_path ? str(r.input_path) : "HTTP stream") + " \\u2192 " + what;
    if (t.kind === "replicate") return what + " \\u2192 " + str(r.target);
    return (t.pools || []).join(", ");
  }
  function summary(result) {
    if (!result || typeof result !== "object") return str(result);
    return Object.keys(result).map(function (k) {
      var v = result[k];
      if (Array.isArray(v)) v = v.length;
      else if (v && typeof v === "object") v = Object.keys(v).length;
      return k + ": " + (v === null ? "none" : str(v));
    }).join(", ");
  }
  function table(heads, rows) {
    return el("table", {}, [el("thead", {}, [el("tr", {}, heads.map(function (h) { return el("th", {}, [h]); }))]),
      el("tbody", {}, rows)]);
  }
  function td(label, kids, cls) { return el("td", {"data-label": label, "class": cls || null}, kids); }
  function pools(list) {
    if (!list.length) return el("p", {"class": "empty"}, ["No pool."]);
    return table(["Pool", "Health", "Size", "Allocated", "Free", "Used", "Busy with"], list.map(function (p) {
      var size = num(p.size), alloc = num(p.allocated), used = percent(alloc, size);
      var bounds = {min: 0, max: size, value: alloc || 0, low: 0.8 * size, high: 0.9 * size, optimum: 0};
      var meter = size ? el("meter", bounds, [used === null ? "" : used + "%"]) : "";
      var busy = p.busy_task ? shortId(p.busy_task) : "idle";
      if (p.busy_task) busy.setAttribute("data-task", str(p.busy_task));
      return el("tr", {"class": "pool", "data-pool": str(p.name)}, [
        td("Pool", [el("code", {}, [str(p.name)])]), td("Health", [badge(str(p.health), healthClass(p.health))]),
        td("Size", [bytes(size)], "num"), td("Allocated", [bytes(alloc)], "num"),
        td("Free", [bytes(p.free)], "num"), td("Used", [meter, used === null ? "" : " " + used + "%"], "num"),
        td("Busy with", [busy])]);
    }));
  }
  function taskAttrs(t) {
    return {"data-task-id": str(t.id), "data-state": str(t.state), "data-bytes-done": num(t.bytes_done) || 0,
      "data-bytes-total": num(t.bytes_total)};
  }
  function running(tasks) {
    if (!tasks.length) return [el("p", {"class": "empty"}, ["No task is running."])];
    return tasks.map(function (t) {
      var pc = percent(t.bytes_done, t.bytes_total), label = "progress of task " + str(t.id).slice(0, 8);
      var bar = pc === null ? el("progress", {"aria-label": label}, []) : el("progress",
        {"aria-label": label, max: t.bytes_total, value: Math.min(t.bytes_done, t.bytes_total)}, [pc + "%"]);
      var amount = bytes(t.bytes_done) + (num(t.bytes_total) === null ? "" : " of " + bytes(t.bytes_total)) +
        (pc === null ? "" : " (" + pc + "%)");
      return el("article", Object.assign({"class": "task"}, taskAttrs(t)), [
        el("div", {"class": "head"}, [el("strong", {"class": "kind"}, [str(t.kind)]),
          el("span", {"class": "what mono"}, [describe(t)]), badge(str(t.state), stateClass(t.state))]),
        bar,
        el("p", {"class": "nums"}, [el("span", {"class": "bytes"}, [amount]), " \\u00b7 ",
          el("span", {"class": "rate"}, [rate(t.rate_bytes_per_s)]), " \\u00b7 started ", utc(t.started),
          " \\u00b7 task ", shortId(t.id)])]);
    });
  }
  function recent(tasks) {
    if (!tasks.length) return el("p", {"class": "empty"}, ["No finished task in the last hour."]);
    return table(["Ended", "Task", "Kind", "What", "State", "Bytes", "Rate", "Outcome"], tasks.map(function (t) {
      return el("tr", taskAttrs(t), [td("Ended", [utc(t.ended)], "num"),
        td("Task", [shortId(t.id)]), td("Kind", [str(t.kind)]),
        td("What", [el("span", {"class": "mono"}, [describe(t)])]),
        td("State", [badge(str(t.state), stateClass(t.state))]),
        td("Bytes", [bytes(t.bytes_done)], "num"), td("Rate", [rate(t.rate_bytes_per_s)], "num"),
        td("Outcome", [t.error ? str(t.error) : summary(t.result)], "outcome")]);
    }));
  }
  function pairs(list) {
    if (!list.length) return el("p", {"class": "empty"}, ["No replication since the server started."]);
    return table(["Source", "Target", "Source latest", "Target latest", "Lag", "Last run"], list.map(function (p) {
      var synced = p.source_latest && p.source_latest === p.target_latest;
      var attrs = {"data-source": str(p.source), "data-target": str(p.target), "data-lag-seconds": num(p.lag_seconds)};
      return el("tr", attrs, [
        td("Source", [el("code", {}, [str(p.source)])]), td("Target", [el("code", {}, [str(p.target)])]),
        td("Source latest", [el("code", {}, [str(p.source_latest) || "\\u2013"])]),
        td("Target latest", [el("code", {}, [str(p.target_latest) || "\\u2013"]), synced ? " " : "",
          synced ? badge("in sync", "good") : ""]),
        td("Lag", [duration(p.lag_seconds)], "num"),
        td("Last run", [badge(str(p.last_result), stateClass(p.last_result)), " ", utc(p.last_run_end)], "num")]);
    }));
  }
  function put(id, nodes) { var box = document.getElementById(id); box.replaceChildren.apply(box, [].concat(nodes)); }
  function update(s) {
    var tasks = s.tasks || [];
    put("pools", pools(s.pools || []));
    put("running", running(tasks.filter(function (t) { return FINAL.indexOf(t.state) < 0; })));
    put("pairs", pairs(s.pairs || []));
    put("recent", recent(tasks.filter(function (t) { return FINAL.indexOf(t.state) >= 0; }).slice(0, RECENT)));
    var error = document.getElementById("error");
    error.textContent = s.error ? str(s.error) : ""; error.hidden = !s.error;
  }
  function say(text) { document.getElementById("updated").textContent = text; }
  var pending = false;
  function poll() {
    if (pending) return;
    pending = true;
    fetch("v1/status", {credentials: "same-origin", cache: "no-store", headers: {"Accept": "application/json"}})
      .then(function (r) {
        if (r.status === 401) { location.assign("login"); throw new Error("logged out"); }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (s) { update(s); say("Live \\u00b7 updated " + new Date().toLocaleTimeString()); })
      .catch(function (e) { say("Not updated: " + e.message + " (retrying)"); })
      .finally(function () { pending = false; });
  }
  setInterval(poll, 2000);
})();
"""


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CSP = (
    f"default-src 'none'; script-src {_hash(JS)}; style-src {_hash(CSS)}; connect-src 'self'; img-src data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
