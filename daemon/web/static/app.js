"use strict";
// The live page's wiring: the daemon's feed (server-sent events, /events) into uPlot
// charts, readouts and plain tables. The server decimates; this keeps the last two
// minutes it sent and draws at most once a frame. The page comes with the feed's first
// message in it (#first), so it shows the devices before the feed connects. When the
// feed is lost (the daemon stopped, the network gone), every device says so within
// FEED_LOST_MS: the page never shows "online" over a trace that has stopped. Every
// string that comes from a device or a person (identity, tags, event details, session
// names) goes in as textContent, never as HTML.

const KPA_PER_ATM = 101.325;
const LOOPS_SHOWN = 5;
const ROWS_SHOWN = 200;
const EVENTS_SHOWN = 50;
const FEED_LOST_MS = 2000; // the server sends every 200 ms; ten missed is a lost feed
const FEED_RETRY_MS = 5000;
const MIN_SPAN_ATM = 1; // a steady hold's noise stays noise on the pressure axis
const MIN_SPAN_ML = 0.1;
const STEP_ATM = 0.5; // a compliance step's nominal, unless the session's step_atm says
const RBP_COLOUR = "#8e24aa";
const DECIMALS = { atm: 2, kPa: 1, bar: 3, psi: 1 };

const state = {
  settings: null, session: null, devices: new Map(),
  updates: 0, lagMs: null, frames: 0, longestFrameMs: 0, errors: [],
  feed: { up: false, since: null, last: 0 },
};
window.pvlog = state; // the page's own state, for a look from the console (and the tests)
window.addEventListener("error", (e) => state.errors.push(String(e.message)));

const $ = (id) => document.getElementById(id);
const unit = () => $("units").value || "atm";
const factor = () => (state.settings ? state.settings.units[unit()] : 1 / KPA_PER_ATM);
const windowS = () => Number($("window").value);
let dirty = false;

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function fixed(x, places) {
  return x === null || x === undefined ? "" : Number(x).toFixed(places);
}

// -- times: 24-hour ISO 8601, UTC or local as chosen, and said -----------------------

const utc = () => $("tz").value === "utc";
const pad = (n, w) => String(n).padStart(w || 2, "0");

function clock(t, ms) {
  const d = new Date(t * 1000);
  const [h, m, s] = utc() ? [d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
    : [d.getHours(), d.getMinutes(), d.getSeconds()];
  return pad(h) + ":" + pad(m) + ":" + pad(s) + (ms ? "." + pad(d.getMilliseconds(), 3) : "");
}

function stamp(t) {
  const d = new Date(t * 1000);
  const [y, mo, da] = utc() ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate()];
  return y + "-" + pad(mo) + "-" + pad(da) + " " + clock(t);
}

function zone() {
  if (utc()) return "UTC";
  const off = -new Date().getTimezoneOffset();
  return "local, UTC" + (off < 0 ? "-" : "+") + pad(Math.floor(Math.abs(off) / 60)) + ":" + pad(Math.abs(off) % 60);
}

// -- axes: a minimum span, ticks that never repeat -------------------------------------

function spanned(min, max, span, extra) {
  if (extra !== null && extra !== undefined) {
    min = min === null ? extra : Math.min(min, extra);
    max = max === null ? extra : Math.max(max, extra);
  }
  if (min === null || max === null) return [0, span];
  if (max - min < span) {
    const mid = (min + max) / 2;
    return [mid - span / 2, mid + span / 2];
  }
  const padding = (max - min) * 0.05;
  return [min - padding, max + padding];
}

function decimals(incr) {
  for (let k = 0; k < 8; k++) {
    const x = incr * 10 ** k;
    if (Math.abs(x - Math.round(x)) < 1e-6 * Math.max(1, x)) return k;
  }
  return 8;
}

const ticks = (_u, splits, _ax, _space, incr) => splits.map((v) => v.toFixed(decimals(incr)));

// -- the session's numbers: rated burst pressure, cycles target, compliance step ----------

function tagNumber(name) {
  const text = state.session && state.session.tags[name];
  const x = text === undefined ? NaN : Number(text);
  return Number.isFinite(x) && x > 0 ? x : null;
}

// -- the feed -------------------------------------------------------------------

function connect() {
  const source = new EventSource("/events");
  source.addEventListener("hello", (e) => { heard(); hello(JSON.parse(e.data)); });
  source.addEventListener("update", (e) => { heard(); update(JSON.parse(e.data)); });
  source.onerror = () => {
    lost();
    // The browser reopens a feed that ended, never one refused (a 503: the server has as
    // many pages open as it takes): that one is asked for again here.
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, FEED_RETRY_MS);
  };
}

// Opened as /?token=...: the page came with its cookie, which the feed and the downloads
// send from now on; the token leaves the address bar and the history.
function dropToken() {
  const query = new URLSearchParams(location.search);
  if (!query.has("token")) return;
  query.delete("token");
  const rest = query.toString();
  history.replaceState(history.state, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
}

function heard() {
  state.feed.last = Date.now();
  if (!state.feed.up) {
    state.feed.up = true;
    state.feed.since = null;
    setLink("online", "live");
    dirty = true;
  }
}

function lost() {
  if (state.feed.since === null) state.feed.since = state.feed.last ? state.feed.last / 1000 : Date.now() / 1000;
  state.feed.up = false;
  setLink("offline", "disconnected since " + clock(state.feed.since) + ", reconnecting");
  dirty = true;
}

function setLink(cls, text) {
  $("link").className = "badge " + cls;
  $("link").textContent = text;
}

function hello(msg) {
  state.settings = msg;
  fillUnits(Object.keys(msg.units));
  $("token").hidden = !msg.token_required;
  for (const dev of state.devices.values()) {
    dev.card.remove();
  }
  state.devices.clear();
  for (const d of msg.devices) {
    ingest(addDevice(d.name), d);
  }
  showSession(msg.session);
  refreshSessions();
  dirty = true;
}

function update(msg) {
  state.updates += 1;
  let lag = null;
  for (const d of msg.devices) {
    const dev = state.devices.get(d.name);
    if (!dev) continue;
    ingest(dev, d);
    if (dev.t.length) {
      const behind = Date.now() - dev.t[dev.t.length - 1] * 1000;
      lag = lag === null ? behind : Math.max(lag, behind);
    }
  }
  state.lagMs = lag;
  if (!state.session || msg.session.name !== state.session.name) refreshSessions();
  showSession(msg.session);
  dirty = true;
}

function ingest(dev, d) {
  if (d.reset) {
    dev.t = []; dev.p = []; dev.v = [];
  }
  dev.received += d.t.length;
  for (let i = 0; i < d.t.length; i++) {
    dev.t.push(d.t[i]); dev.p.push(d.p[i]); dev.v.push(d.v[i]);
  }
  if (dev.t.length) {
    const cut = lowerBound(dev.t, dev.t[dev.t.length - 1] - state.settings.window_s);
    if (cut > 0) {
      dev.t.splice(0, cut); dev.p.splice(0, cut); dev.v.splice(0, cut);
    }
  }
  if (d.events.length) {
    dev.events = dev.events.concat(d.events).slice(-EVENTS_SHOWN);
    dev.eventsChanged = true;
  }
  if (d.inflations.length) {
    dev.inflations = dev.inflations.concat(d.inflations).slice(-1000);
    dev.tableChanged = true;
  }
  dev.status = d;
}

function lowerBound(xs, x) {
  let lo = 0, hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// -- a device's card --------------------------------------------------------------

function addDevice(name) {
  const card = $("device-card").content.firstElementChild.cloneNode(true);
  card.dataset.device = name;
  card.querySelector(".name").textContent = name;
  $("devices").appendChild(card);
  const dev = {
    name, card, t: [], p: [], v: [], events: [], inflations: [], status: null, received: 0, rbp: null,
    eventsChanged: true, tableChanged: true, trace: null, loop: null,
  };
  state.devices.set(name, dev);
  makeCharts(dev);
  return dev;
}

function makeCharts(dev) {
  if (dev.trace) dev.trace.destroy();
  if (dev.loop) dev.loop.destroy();
  const u = unit();
  const traceBox = dev.card.querySelector(".trace");
  const minSpan = MIN_SPAN_ATM * KPA_PER_ATM * factor();
  dev.trace = new uPlot({
    width: Math.max(300, traceBox.clientWidth), height: 280,
    scales: {
      x: { time: true, range: (_u, min, max) => (max === null ? [min, max] : [max - windowS(), max]) },
      p: { range: (_u, min, max) => spanned(min, max, minSpan, dev.rbp === null ? null : dev.rbp * 1.03) },
      v: { range: (_u, min, max) => spanned(min, max, MIN_SPAN_ML, null) },
    },
    series: [
      { value: (_u, t) => (t === null ? "--" : stamp(t)) },
      { label: "pressure (" + u + ")", scale: "p", stroke: "#c0392b", width: 1.5, points: { show: false },
        value: (_u, x) => (x === null ? "--" : x.toFixed(DECIMALS[u] === undefined ? 2 : DECIMALS[u])) },
      { label: "volume (mL)", scale: "v", stroke: "#2471a3", width: 1.5, points: { show: false },
        value: (_u, x) => (x === null ? "--" : x.toFixed(3)) },
    ],
    axes: [
      { values: (_u, splits) => splits.map((t) => clock(t)) },
      { scale: "p", label: "pressure (" + u + ")", values: ticks },
      { scale: "v", side: 1, label: "volume (mL)", grid: { show: false }, values: ticks },
    ],
    hooks: { draw: [(plot) => drawRbp(dev, plot)] },
  }, [[], [], []], traceBox);
  const loopBox = dev.card.querySelector(".loop");
  const facets = [{ scale: "x", auto: true }, { scale: "y", auto: true }];
  const series = [{}, { label: "under way", stroke: "#c0392b", width: 2, facets, points: { show: false } }];
  for (let i = 0; i < LOOPS_SHOWN; i++) {
    const alpha = (0.6 - 0.1 * i).toFixed(2);
    series.push({ label: "before", stroke: "rgba(36,113,163," + alpha + ")", width: 1, facets, points: { show: false } });
  }
  dev.loop = new uPlot({
    mode: 2, width: Math.max(260, loopBox.clientWidth), height: 280,
    title: "pressure-volume loop", legend: { show: false }, cursor: { show: false },
    scales: { x: { time: false, auto: true }, y: { auto: true } },
    axes: [{ scale: "x", label: "volume (mL)", values: ticks }, { scale: "y", label: "pressure (" + u + ")", values: ticks }],
    series,
  }, loopData(dev), loopBox);
}

function loopData(dev) {
  const f = factor();
  const data = [null];
  const n = dev.p.length;
  const base = state.settings ? state.settings.baseline_atm * KPA_PER_ATM : 0;
  let now = [[], []];
  if (n && dev.p[n - 1] > base) { // an inflation under way: from its last baseline on
    let i = n - 1;
    while (i > 0 && dev.p[i - 1] > base) i--;
    now = pairs(dev, Math.max(0, i - 1), n, f);
  }
  data.push(now);
  const done = dev.inflations.slice(-LOOPS_SHOWN).reverse();
  for (let k = 0; k < LOOPS_SHOWN; k++) {
    const inf = done[k];
    data.push(inf ? pairs(dev, lowerBound(dev.t, inf.start), lowerBound(dev.t, inf.end + 1e-3), f) : [[], []]);
  }
  return data;
}

function pairs(dev, from, to, f) {
  const xs = [], ys = [];
  for (let i = from; i < to; i++) {
    if (dev.v[i] !== null && dev.p[i] !== null) {
      xs.push(dev.v[i]); ys.push(dev.p[i] * f);
    }
  }
  return [xs, ys];
}

// The rated burst pressure (the session's rbp_atm tag) as a dashed line, labelled.
function drawRbp(dev, plot) {
  if (dev.rbp === null) return;
  const y = plot.valToPos(dev.rbp, "p", true);
  const { left, width, top, height } = plot.bbox;
  if (!(y >= top && y <= top + height)) return;
  const ctx = plot.ctx;
  ctx.save();
  ctx.strokeStyle = RBP_COLOUR;
  ctx.fillStyle = RBP_COLOUR;
  ctx.lineWidth = 2 * devicePixelRatio;
  ctx.setLineDash([8 * devicePixelRatio, 5 * devicePixelRatio]);
  ctx.beginPath();
  ctx.moveTo(left, y);
  ctx.lineTo(left + width, y);
  ctx.stroke();
  ctx.font = 12 * devicePixelRatio + "px system-ui, sans-serif";
  ctx.fillText("RBP " + tagNumber("rbp_atm") + " atm", left + 6 * devicePixelRatio, y - 5 * devicePixelRatio);
  ctx.restore();
}

function draw(dev) {
  const f = factor();
  const rbp = tagNumber("rbp_atm");
  dev.rbp = rbp === null ? null : rbp * KPA_PER_ATM * f;
  const from = dev.t.length ? lowerBound(dev.t, dev.t[dev.t.length - 1] - windowS()) : 0;
  const t = dev.t.slice(from);
  const p = dev.p.slice(from).map((x) => (x === null ? null : x * f));
  dev.trace.setData([t, p, dev.v.slice(from)]);
  dev.loop.setData(loopData(dev));
  drawHeader(dev);
  drawReadout(dev);
  if (dev.tableChanged) drawTable(dev);
  if (dev.eventsChanged) drawEvents(dev);
}

function drawHeader(dev) {
  const s = dev.status;
  if (!s) return;
  const badge = dev.card.querySelector(".state");
  const stale = dev.card.querySelector(".stale");
  const newest = dev.t.length ? dev.t[dev.t.length - 1] : null;
  if (!state.feed.up) { // what the daemon last said is not what it does now
    badge.className = "badge state unknown";
    badge.textContent = "unknown: no feed since " + clock(state.feed.since);
    stale.textContent = "the page lost its feed at " + clock(state.feed.since) +
      " (" + zone() + "): nothing here is live" + (newest ? "; last data " + clock(newest) : "");
  } else if (s.state === "online" && s.degraded) { // it reads, and drops too much of it
    badge.className = "badge state stalled";
    badge.textContent = "online, degraded";
    stale.textContent = "degraded: " + s.degraded;
  } else {
    badge.className = "badge state " + s.state;
    badge.textContent = s.state + (s.reason ? " (" + s.reason + ")" : "");
    stale.textContent = s.state === "online" ? "" :
      s.state + (s.reason ? " (" + s.reason + ")" : "") + (newest ? ": no data since " + clock(newest) + " (" + zone() + ")" : "");
  }
  stale.hidden = !stale.textContent;
  const id = s.identity;
  dev.card.querySelector(".identity").textContent = id
    ? [id.model, "serial " + id.serial, "firmware " + id.firmware].join(", ") : "identity not seen yet";
  dev.card.querySelector(".counts").textContent =
    s.samples + " samples, " + s.dropped + " dropped, " + s.gaps + " gaps (" + s.driver + " on " + s.port + ")";
}

function drawReadout(dev) {
  const r = dev.status && dev.status.readout;
  if (!r) return;
  const box = dev.card.querySelector(".readout");
  const f = factor();
  const u = unit();
  const places = DECIMALS[u] === undefined ? 2 : DECIMALS[u];
  const now = r.now || {};
  const live = state.feed.up && dev.status.state === "online";
  box.classList.toggle("not-live", !live);
  box.querySelector(".p").textContent = now.p === undefined ? "--" : (now.p * f).toFixed(places);
  box.querySelector(".p-unit").textContent = u;
  box.querySelector(".v").textContent = now.v === undefined ? "--" : now.v.toFixed(3);
  box.querySelector(".d-box").hidden = now.d === undefined;
  box.querySelector(".d").textContent = now.d === undefined ? "--" : now.d.toFixed(3);
  const inf = r.inflation;
  box.querySelector(".peak").textContent = inf
    ? "peak " + (inf.peak_kpa * f).toFixed(places) + " " + u + " (inflation since " + clock(inf.since) + ")"
    : "no inflation under way";
  const hold = r.hold;
  let said = "";
  if (hold) {
    const step = tagNumber("step_atm") || STEP_ATM;
    const heldAtm = hold.held_kpa / KPA_PER_ATM;
    const nominal = Math.round(heldAtm / step) * step;
    said = "hold " + hold.held_s.toFixed(1) + " s at " + (hold.held_kpa * f).toFixed(places) + " " + u +
      " · step " + hold.step + ": " + nominal.toFixed(decimals(step)) + " atm nominal";
  }
  box.querySelector(".hold").textContent = said;
  const target = tagNumber("cycles_target");
  box.querySelector(".cycle").textContent = inf
    ? "cycle " + (r.cycles + 1) + (target ? " of " + target : "") + " under way"
    : r.cycles + (target ? " of " + target : "") + " cycle" + (r.cycles === 1 && !target ? "" : "s") + " done";
  const rec = r.recording;
  const recBox = box.querySelector(".rec");
  const recording = state.feed.up && rec !== null && rec.on;
  recBox.className = "rec " + (recording ? "on" : "off");
  recBox.textContent = !state.feed.up ? "recording: unknown (no feed)"
    : rec === null ? "recording off (no [recording] table)"
    : rec.on ? "recording to " + rec.file : "not recording now";
}

function drawTable(dev) {
  dev.tableChanged = false;
  const f = factor();
  dev.card.querySelector("th.peak").textContent = "peak (" + unit() + ")";
  dev.card.querySelector("th.start").textContent = "start (" + zone() + ")";
  const body = dev.card.querySelector(".inflations tbody");
  const rows = [];
  for (const r of dev.inflations.slice(-ROWS_SHOWN).reverse()) {
    const tr = el("tr", null, r.burst ? "burst" : "");
    const cut = r.cut_start || r.cut_end ? " (cut)" : "";
    const cells = [
      r.cycle + cut, stamp(r.start), fixed(r.peak_pressure_kpa * f, 3),
      fixed(r.time_to_peak_s, 2), fixed(r.hold_s, 2), fixed(r.volume_at_peak_ml, 3),
      fixed(r.deflation_s, 2), fixed(r.duration_s, 2), r.session, r.burst ? "BURST" : "",
    ];
    for (const c of cells) tr.appendChild(el("td", c));
    rows.push(tr);
  }
  body.replaceChildren(...rows);
}

function drawEvents(dev) {
  dev.eventsChanged = false;
  const items = dev.events.slice().reverse().map((e) =>
    el("li", stamp(e.t) + "  " + e.code + (e.detail ? ": " + e.detail : "")));
  dev.card.querySelector(".events").replaceChildren(...items);
}

function frame(now) {
  if (state.lastFrame !== undefined) {
    state.longestFrameMs = Math.max(state.longestFrameMs, now - state.lastFrame);
  }
  state.lastFrame = now;
  state.frames += 1;
  if (dirty && state.settings) {
    dirty = false;
    for (const dev of state.devices.values()) draw(dev);
  }
  requestAnimationFrame(frame);
}

// -- session and downloads ----------------------------------------------------------

function showSession(session) {
  state.session = session;
  $("session-name").textContent = session.name;
  const tags = Object.entries(session.tags).map(([k, v]) => el("span", k + "=" + v, "tag"));
  $("session-tags").replaceChildren(...tags);
}

function parseTags(text) {
  const tags = {};
  for (const part of text.split(",")) {
    if (!part.trim()) continue;
    const eq = part.indexOf("=");
    if (eq < 1) throw new Error("tags: key=value, separated by commas (" + part.trim() + ")");
    tags[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return tags;
}

async function command(body) {
  const said = $("session-said");
  const headers = { "Content-Type": "application/json" };
  const token = $("token").value;
  if (token) headers.Authorization = "Bearer " + token;
  body.request_id = "page-" + Date.now();
  try {
    const resp = await fetch("/api/session", { method: "POST", headers, body: JSON.stringify(body) });
    const reply = await resp.json();
    said.className = reply.ok ? "" : "error";
    said.textContent = reply.ok ? "session now: " + reply.session : reply.error;
  } catch (err) {
    said.className = "error";
    said.textContent = String(err);
  }
}

function startSession(event) {
  event.preventDefault();
  let tags;
  try {
    tags = parseTags($("start-tags").value);
  } catch (err) {
    $("session-said").className = "error";
    $("session-said").textContent = err.message;
    return;
  }
  command({ action: "start", name: $("start-name").value.trim(), tags });
}

async function refreshSessions() {
  const said = $("downloads-said");
  let reply;
  try {
    reply = await (await fetch("/api/sessions")).json();
  } catch (err) {
    said.textContent = "cannot list the sessions: " + err;
    return;
  }
  said.textContent = reply.why || (reply.sessions.length ? "" : "no finished session recorded yet");
  const rows = reply.sessions.map((s) => {
    const tr = el("tr");
    tr.dataset.session = s.name;
    const base = "/sessions/" + encodeURIComponent(s.name) + "/";
    // A damaged recording is said before it is downloaded; its links then go past it.
    const query = "?units=" + encodeURIComponent(unit()) + (s.damaged.length ? "&allow_damaged=1" : "");
    const name = el("td", s.name);
    if (s.damaged.length) {
      const warn = el("div", "damaged: " + s.damaged.join("; "));
      warn.className = "error";
      name.appendChild(warn);
    }
    tr.appendChild(name);
    tr.appendChild(el("td", s.files));
    tr.appendChild(el("td", (s.bytes / 1e6).toFixed(2) + " MB"));
    const png = el("td");
    png.appendChild(link(base + "report.png" + query, "PNG"));
    tr.appendChild(png);
    const csv = el("td");
    for (const table of reply.tables) csv.appendChild(link(base + table + ".csv" + query, table));
    tr.appendChild(csv);
    return tr;
  });
  document.querySelector("#sessions tbody").replaceChildren(...rows);
}

function link(href, text) {
  const a = el("a", text);
  a.href = href;
  a.setAttribute("download", "");
  a.style.marginRight = ".6em";
  return a;
}

// -- controls ---------------------------------------------------------------------

function fillUnits(names) {
  const select = $("units");
  if (select.options.length) return;
  for (const name of names) {
    const opt = el("option", name);
    opt.value = name;
    select.appendChild(opt);
  }
  select.value = "atm";
}

$("units").addEventListener("change", () => {
  for (const dev of state.devices.values()) {
    makeCharts(dev);
    dev.tableChanged = true;
  }
  refreshSessions();
  dirty = true;
});
$("window").addEventListener("change", () => { dirty = true; });
$("tz").addEventListener("change", () => {
  $("tz-said").textContent = zone();
  for (const dev of state.devices.values()) {
    dev.tableChanged = true;
    dev.eventsChanged = true;
  }
  dirty = true;
});
$("session-start").addEventListener("submit", startSession);
$("stop").addEventListener("click", () => command({ action: "stop" }));
window.addEventListener("resize", () => {
  for (const dev of state.devices.values()) {
    dev.trace.setSize({ width: Math.max(300, dev.card.querySelector(".trace").clientWidth), height: 280 });
    dev.loop.setSize({ width: Math.max(260, dev.card.querySelector(".loop").clientWidth), height: 280 });
  }
});

// First paint: the feed's first message came with the page.
dropToken();
$("tz-said").textContent = zone();
const first = $("first");
if (first && first.textContent.trim()) { // as of the page's load: live until FEED_LOST_MS without the feed
  heard();
  hello(JSON.parse(first.textContent));
}
connect();
setInterval(() => { if (state.feed.up && Date.now() - state.feed.last > FEED_LOST_MS) lost(); }, 250);
requestAnimationFrame(frame);
