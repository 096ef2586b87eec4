/**
 * The Observer's web page: one HTML document with its CSS and script inline,
 * so it works with no network access at all. It reads `events` (Server-Sent
 * Events) relative to its own URL and posts actions to `action`.
 *
 * @internal
 */

/** @internal */
export interface PageOptions {
  readonly title: string
  readonly actions: boolean
}

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!)

/** @internal */
export const render = (options: PageOptions): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(options.title)}</title>
<style>${css}</style>
</head>
<body data-actions="${options.actions ? "on" : "off"}">
<header>
  <h1>${escapeHtml(options.title)}</h1>
  <span id="root-name"></span>
  <span class="spacer"></span>
  <span id="dropped" title="events this page missed because it read too slowly (the oldest were dropped)"></span>
  <span id="status" class="status connecting">connecting</span>
</header>
<section id="plots">
  <figure data-series="children"><figcaption>children <b></b></figcaption><canvas width="240" height="48"></canvas></figure>
  <figure data-series="restarts"><figcaption>restarts/s <b></b></figcaption><canvas width="240" height="48"></canvas></figure>
  <figure data-series="poolWaiting"><figcaption>pool waits <b></b></figcaption><canvas width="240" height="48"></canvas></figure>
  <figure data-series="limiterQueued"><figcaption>limiter queue <b></b></figcaption><canvas width="240" height="48"></canvas></figure>
</section>
<main>
  <section id="tree-pane"><h2>Tree</h2><ul id="tree" class="tree"></ul></section>
  <aside>
    <section id="details"><h2>Details</h2><div id="details-body" class="muted">select a node</div></section>
    <section id="log-pane"><h2>Crash log <small id="log-count"></small></h2><ol id="log"></ol></section>
  </aside>
</main>
<script>${script}</script>
</body>
</html>
`

const css = `
:root { --bg:#f7f7f5; --panel:#fff; --ink:#1d232a; --muted:#6b7480; --line:#e3e5e8; --accent:#3b5bdb;
  --ok:#2b8a3e; --warn:#e67700; --bad:#c92a2a; font: 13px/1.45 ui-sans-serif, system-ui, -apple-system, "Segoe UI", sans-serif; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink); }
header { display:flex; align-items:center; gap:12px; padding:10px 16px; background:#1d232a; color:#fff; }
header h1 { font-size:15px; margin:0; font-weight:600; }
#root-name { color:#aab2bd; }
.spacer { flex:1; }
.status { padding:2px 8px; border-radius:10px; font-size:12px; background:#495057; }
.status.live { background:var(--ok); } .status.down { background:var(--bad); }
#dropped { color:#ffd43b; font-size:12px; }
#plots { display:grid; grid-template-columns:repeat(4, 1fr); gap:10px; padding:10px 16px 0; }
figure { margin:0; background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:6px 8px; }
figcaption { color:var(--muted); font-size:12px; display:flex; justify-content:space-between; }
figcaption b { color:var(--ink); font-variant-numeric:tabular-nums; }
canvas { width:100%; height:48px; display:block; }
main { display:grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap:10px; padding:10px 16px 16px; }
main > section, aside > section { background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:8px 10px; }
aside { display:flex; flex-direction:column; gap:10px; min-width:0; }
h2 { font-size:12px; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); margin:0 0 6px; }
.tree, .tree ul { list-style:none; margin:0; padding-left:16px; }
#tree { padding-left:0; max-height:calc(100vh - 190px); overflow:auto; }
.row { display:flex; align-items:center; gap:6px; padding:1px 4px; border-radius:4px; cursor:pointer; white-space:nowrap; }
.row:hover { background:#f1f3f5; } .selected > .row { background:#e7edff; }
.tw { width:12px; color:var(--muted); display:inline-block; text-align:center; }
.kind { font-size:10px; padding:0 5px; border-radius:3px; background:#e9ecef; color:#495057; }
.k-Supervisor .kind, .k-DynamicSupervisor .kind, .k-TaskSupervisor .kind, .k-RateLimitedSupervisor .kind { background:#dbe4ff; color:#364fc7; }
.k-Pool .kind { background:#d3f9d8; color:#2b8a3e; } .k-Registry .kind { background:#fff3bf; color:#946200; }
.k-RateLimiter .kind { background:#ffe8cc; color:#d9480f; }
.pid { color:var(--muted); font-variant-numeric:tabular-nums; }
.state { font-size:11px; } .s-running > .row .state { color:var(--ok); } .s-restarting > .row .state, .s-starting > .row .state { color:var(--warn); }
.s-failed > .row .state, .s-stopped > .row .state { color:var(--bad); }
.restarts { font-size:11px; color:var(--bad); }
.stat { font-size:11px; color:var(--muted); }
.collapsed > ul { display:none; }
.more { color:var(--muted); font-style:italic; padding-left:22px; }
.changed > .row { animation: flash 1.5s ease-out; }
@keyframes flash { from { background:#ffe3e3; } to { background:transparent; } }
#details-body table { border-collapse:collapse; width:100%; }
#details-body td { padding:2px 4px; border-bottom:1px solid var(--line); vertical-align:top; }
#details-body td:first-child { color:var(--muted); width:40%; }
.muted { color:var(--muted); }
.actions { margin-top:8px; display:flex; gap:6px; }
button { font:inherit; padding:3px 10px; border:1px solid var(--line); background:#fff; border-radius:4px; cursor:pointer; }
button.danger { border-color:#ffc9c9; color:var(--bad); }
#log { list-style:none; padding:0; margin:0; max-height:calc(100vh - 420px); min-height:120px; overflow:auto; }
#log li { border-left:3px solid var(--bad); padding:3px 8px; margin-bottom:6px; background:#fff5f5; }
#log li.gaveup { border-color:#862e9c; background:#f8f0fc; } #log li.abandoned { border-color:var(--warn); background:#fff9db; }
#log .when { color:var(--muted); font-size:11px; }
#log pre { margin:2px 0 0; white-space:pre-wrap; font:11px/1.35 ui-monospace, SFMono-Regular, Menlo, monospace; max-height:8em; overflow:auto; }
`

// The client. Plain ES2020, no library. State: the latest snapshot, which
// nodes are collapsed, which one is selected, the plot series and the log.
const script = `
"use strict";
const $ = (s) => document.querySelector(s);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const base = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
const actionsOn = document.body.dataset.actions === "on";
const collapsed = new Set();
let selected = null;
let latest = null;
let lastPids = new Map();
let restartsThisTick = 0;
const SERIES_LEN = 60;
const series = { children: [], restarts: [], poolWaiting: [], limiterQueued: [] };
const log = [];
const LOG_MAX = 200;
const isLeaf = (k) => k === "Worker" || k === "Task" || k === "Connection";
const short = { Supervisor: "SUP", DynamicSupervisor: "DYN", TaskSupervisor: "TASKS", RateLimitedSupervisor: "RLS",
  Pool: "POOL", Registry: "REG", RateLimiter: "LIMIT", Worker: "worker", Task: "task", Connection: "conn", Server: "SRV", Agent: "AGENT" };
// a child started without an id (a task, say) is named by its kind
const label = (n) => n.id ?? n.name ?? "(" + (short[n.kind] || n.kind).toLowerCase() + ")";
const keyOf = (parent, n, i) => parent + "/" + (n.id ?? n.name ?? "#" + i);

function statLine(n) {
  const s = n.stats || {};
  if (n.kind === "Pool") return "open " + (s.open ?? "?") + " · idle " + (s.idle ?? "?") + " · in use " + (s.inUse ?? "?") + " · waiting " + (s.waiting ?? "?");
  if (n.kind === "RateLimiter" || n.kind === "RateLimitedSupervisor") {
    return (s.live !== undefined ? s.live + " live · " : "") + "queued " + (s.queued ?? 0) + " · in window " + (s.inWindow ?? "?");
  }
  if (n.kind === "Registry") return (s.entries ?? 0) + " entries" + (s.keys ? " (" + s.keys + " keys)" : "");
  if (n.kind === "TaskSupervisor") return (n.counts ? n.counts.active : 0) + " running";
  if (n.counts) return n.counts.active + " active";
  return "";
}

function renderNode(n, key, out, pids) {
  const kids = n.children || [];
  const cls = ["node", "k-" + n.kind, "s-" + n.state];
  if (collapsed.has(key)) cls.push("collapsed");
  if (selected === key) cls.push("selected");
  if (n.pid !== undefined) {
    pids.set(key, n.pid);
    const before = lastPids.get(key);
    if (before !== undefined && before !== n.pid) cls.push("changed");
  }
  out.push('<li class="' + cls.join(" ") + '" data-key="' + esc(key) + '" data-kind="' + esc(n.kind) + '"' +
    (n.id !== undefined ? ' data-id="' + esc(n.id) + '"' : "") + (n.pid !== undefined ? ' data-pid="' + n.pid + '"' : "") + '>');
  out.push('<div class="row"><span class="tw">' + (kids.length || n.omitted ? (collapsed.has(key) ? "▸" : "▾") : "") + "</span>");
  out.push('<span class="kind">' + esc(short[n.kind] || n.kind) + '</span><span class="label">' + esc(label(n)) + "</span>");
  if (n.pid !== undefined) out.push('<span class="pid">#' + n.pid + "</span>");
  out.push('<span class="state">' + esc(n.state) + "</span>");
  if (n.restarts > 0) out.push('<span class="restarts" title="restarts">↻ ' + n.restarts + "</span>");
  const st = statLine(n);
  if (st) out.push('<span class="stat">' + esc(st) + "</span>");
  out.push("</div>");
  if (kids.length || n.omitted) {
    out.push("<ul>");
    kids.forEach((c, i) => renderNode(c, keyOf(key, c, i), out, pids));
    if (n.omitted) out.push('<li class="more">… ' + n.omitted.toLocaleString() + " more not shown</li>");
    out.push("</ul>");
  }
  out.push("</li>");
}

function findNode(n, key, want, parent) {
  if (key === want) return { node: n, parent };
  const kids = n.children || [];
  for (let i = 0; i < kids.length; i++) {
    const k = keyOf(key, kids[i], i);
    if (want.startsWith(k)) { const r = findNode(kids[i], k, want, n); if (r) return r; }
  }
  return null;
}

function renderTree() {
  if (!latest) return;
  const out = [];
  const pids = new Map();
  const rootKey = latest.name ?? latest.id ?? "root";
  renderNode(latest, rootKey, out, pids);
  const tree = $("#tree");
  const scroll = tree.scrollTop;
  tree.innerHTML = out.join("");
  tree.scrollTop = scroll;
  lastPids = pids;
  $("#root-name").textContent = (latest.name ?? latest.id ?? "") + " · " + latest.kind;
  renderDetails(rootKey);
}

function ago(ms) {
  if (ms < 1000) return ms + " ms";
  const s = Math.floor(ms / 1000);
  if (s < 120) return s + " s";
  const m = Math.floor(s / 60);
  return m < 120 ? m + " min" : Math.floor(m / 60) + " h " + (m % 60) + " min";
}

function renderDetails(rootKey) {
  const body = $("#details-body");
  const found = selected ? findNode(latest, rootKey, selected, null) : null;
  const n = found && found.node;
  if (!n) { body.className = "muted"; body.textContent = selected ? "no longer in the tree" : "select a node"; return; }
  body.className = "";
  const rows = [["kind", n.kind], ["type", n.type], ["name", n.name], ["id", n.id], ["pid", n.pid], ["state", n.state],
    ["restarts", n.restarts], ["uptime", n.startedAt !== undefined && latest.at !== undefined ? ago(Math.max(0, latest.at - n.startedAt)) : undefined],
    ["children", (n.children || []).length + (n.omitted || 0)]];
  if (n.counts) for (const k of Object.keys(n.counts)) rows.push(["count." + k, n.counts[k]]);
  if (n.stats) for (const k of Object.keys(n.stats)) rows.push([k, n.stats[k]]);
  let html = "<table>" + rows.filter((r) => r[1] !== undefined && r[1] !== null).map((r) =>
    "<tr><td>" + esc(r[0]) + "</td><td>" + esc(r[1]) + "</td></tr>").join("") + "</table>";
  const parentKind = found.parent && found.parent.kind;
  if (actionsOn && n.pid !== undefined && (parentKind === "Supervisor" || parentKind === "DynamicSupervisor")) {
    // children of a Supervisor or a DynamicSupervisor can be terminated; restart is Supervisor.restartChild,
    // which only a static supervisor's children have
    html += '<div class="actions"><button class="danger" data-op="terminate">terminate</button>' +
      (parentKind === "Supervisor" ? '<button data-op="restart">restart</button>' : "") + "</div>";
  }
  body.innerHTML = html;
  body.querySelectorAll("button[data-op]").forEach((b) => b.addEventListener("click", () => act(b.dataset.op, n)));
}

async function act(op, n) {
  const res = await fetch(base + "action", { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ op, pid: n.pid }) });
  if (!res.ok) alert(op + " failed: " + await res.text());
}

$("#tree").addEventListener("click", (e) => {
  const li = e.target.closest("li.node");
  if (!li) return;
  const key = li.dataset.key;
  if (e.target.classList.contains("tw")) { collapsed.has(key) ? collapsed.delete(key) : collapsed.add(key); }
  else selected = key;
  renderTree();
});

function draw(name) {
  const fig = document.querySelector('figure[data-series="' + name + '"]');
  const values = series[name];
  const canvas = fig.querySelector("canvas");
  const w = canvas.width = canvas.clientWidth * devicePixelRatio, h = canvas.height = canvas.clientHeight * devicePixelRatio;
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, w, h);
  const last = values.length ? values[values.length - 1] : 0;
  fig.querySelector("b").textContent = Number.isInteger(last) ? last.toLocaleString() : last.toFixed(1);
  if (values.length < 2) return;
  const max = Math.max(1, ...values);
  const x = (i) => (i + SERIES_LEN - values.length) / (SERIES_LEN - 1) * w;
  const y = (v) => h - 2 - (v / max) * (h - 6);
  g.beginPath(); g.moveTo(x(0), h);
  values.forEach((v, i) => g.lineTo(x(i), y(v)));
  g.lineTo(x(values.length - 1), h); g.closePath();
  g.fillStyle = "rgba(59,91,219,0.12)"; g.fill();
  g.beginPath(); values.forEach((v, i) => i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v)));
  g.strokeStyle = "#3b5bdb"; g.lineWidth = 1.5 * devicePixelRatio; g.stroke();
}

function sample(f, seconds) {
  const push = (k, v) => { series[k].push(v); if (series[k].length > SERIES_LEN) series[k].shift(); };
  push("children", f.children);
  push("restarts", seconds > 0 ? restartsThisTick / seconds : 0);
  push("poolWaiting", f.poolWaiting);
  push("limiterQueued", f.limiterQueued);
  restartsThisTick = 0;
  for (const k of Object.keys(series)) draw(k);
}

function time(at) {
  const d = new Date(at), p = (n, w) => String(n).padStart(w || 2, "0");
  return p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds()) + "." + p(d.getMilliseconds(), 3);
}

function logEvent(e) {
  if (e._tag === "Restarted") {
    restartsThisTick++;
    const entry = log.find((x) => x.e.supervisor === e.supervisor && x.e.pid === e.previousPid && x.next === undefined);
    if (entry) { entry.next = e.pid; renderLog(); }
    return;
  }
  const crash = e._tag === "Exited" && e.reason === "crash";
  if (!crash && e._tag !== "GaveUp" && e._tag !== "Abandoned") return;
  log.unshift({ e, next: undefined });
  if (log.length > LOG_MAX) log.pop();
  renderLog();
}

function renderLog() {
  $("#log-count").textContent = log.length ? "(" + log.length + ")" : "";
  $("#log").innerHTML = log.map(({ e, next }) => {
    const cls = e._tag === "GaveUp" ? "gaveup" : e._tag === "Abandoned" ? "abandoned" : "crash";
    const what = e._tag === "GaveUp" ? "gave up (" + e.reason + ": more than " + e.maxRestarts + " restarts in " + e.maxSeconds + " s)"
      : e._tag === "Abandoned" ? "abandoned after " + e.shutdownMillis + " ms" : "crashed";
    return '<li class="' + cls + '" data-id="' + esc(e.id ?? "") + '" data-pid="' + (e.pid ?? "") + '"><span class="when">' + time(e.at) + " · " + esc(e.supervisor) + "</span><br><b>" +
      esc(e.id ?? "?") + "</b> #" + (e.pid ?? "?") + " " + what + (next !== undefined ? ' → restarted as <b class="next-pid">#' + next + "</b>" : "") +
      (e.cause ? "<pre>" + esc(e.cause) + "</pre>" : "") + "</li>";
  }).join("");
}

let lastTick = 0;
function connect() {
  const source = new EventSource(base + "events");
  const status = $("#status");
  source.onopen = () => { status.textContent = "live"; status.className = "status live"; };
  source.onerror = () => { status.textContent = "reconnecting"; status.className = "status down"; };
  source.addEventListener("snapshot", (m) => {
    const frame = JSON.parse(m.data);
    latest = frame.root; latest.at = frame.at;
    renderTree();
    if (frame.tick) { const s = lastTick ? (frame.at - lastTick) / 1000 : 0; lastTick = frame.at; sample(frame.figures, s); }
  });
  source.addEventListener("inspect", (m) => logEvent(JSON.parse(m.data)));
  source.addEventListener("dropped", (m) => {
    const d = JSON.parse(m.data);
    $("#dropped").textContent = d.total.toLocaleString() + " events dropped";
  });
}
connect();
`
