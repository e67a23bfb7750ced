// amqplite dashboard: plain JavaScript over the management JSON API, no build step.
// Credentials are kept in sessionStorage and sent as HTTP Basic auth on every request.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { auth: sessionStorage.getItem("amqplite.auth"), tab: "overview", timer: null, history: [] };

function enc(s) { return encodeURIComponent(s); }
function text(v) { return v === undefined || v === null ? "" : String(v); }
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(text(c)));
  return node;
}

async function api(method, path, body) {
  // X-Requested-With: the server then leaves out the Basic challenge, so the browser does not
  // pop up its own login dialog on a wrong password.
  const opts = { method, headers: { "Authorization": "Basic " + state.auth, "X-Requested-With": "XMLHttpRequest" } };
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const resp = await fetch("/api" + path, opts);
  if (resp.status === 401) { logout("Login failed"); throw new Error("unauthorised"); }
  const raw = await resp.text();
  const data = raw ? JSON.parse(raw) : null;
  if (!resp.ok) throw new Error((data && data.reason) || resp.statusText);
  return data;
}

// ---- login -----------------------------------------------------------------
async function login(ev) {
  ev.preventDefault();
  const user = $("#login-user").value, password = $("#login-password").value;
  state.auth = btoa(unescape(encodeURIComponent(user + ":" + password)));
  try {
    await api("GET", "/whoami");
    sessionStorage.setItem("amqplite.auth", state.auth);
    start();
  } catch (e) {
    $("#login-error").textContent = "Login failed";
  }
}

function logout(message) {
  state.auth = null;
  sessionStorage.removeItem("amqplite.auth");
  clearInterval(state.timer);
  for (const s of document.querySelectorAll(".tab")) s.hidden = true;
  $("#tabs").hidden = true; $("#logout").hidden = true; $("#login").hidden = false;
  $("#whoami").textContent = "";
  $("#login-error").textContent = message || "";
}

async function start() {
  const me = await api("GET", "/whoami");
  $("#whoami").textContent = me.name;
  $("#login").hidden = true; $("#tabs").hidden = false; $("#logout").hidden = false;
  show(state.tab);
  clearInterval(state.timer);
  state.timer = setInterval(refresh, 1000);
}

function show(tab) {
  state.tab = tab;
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== tab;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === tab);
  refresh();
  if (tab === "deadletters") fillQueueSelect();
}

async function refresh() {
  if (!state.auth) return;
  try {
    if (state.tab === "overview") await refreshOverview();
    else if (state.tab === "queues") await refreshQueues();
    else if (state.tab === "topology") await refreshTopology();
    else if (state.tab === "streams") await refreshStreams();
  } catch (e) { console.warn(e); }
}

// ---- overview --------------------------------------------------------------
function rate(stats, key) { return (stats && stats[key + "_details"] && stats[key + "_details"].rate) || 0; }

async function refreshOverview() {
  const o = await api("GET", "/overview");
  const ms = o.message_stats || {};
  $("#rate-publish").textContent = rate(ms, "publish");
  $("#rate-deliver").textContent = rate(ms, "deliver_get");
  $("#rate-ack").textContent = rate(ms, "ack");
  $("#total-ready").textContent = o.queue_totals.messages_ready;
  $("#total-unacked").textContent = o.queue_totals.messages_unacknowledged;
  $("#total-connections").textContent = o.object_totals.connections;
  $("#total-channels").textContent = o.object_totals.channels;
  $("#total-queues").textContent = o.object_totals.queues;
  state.history.push([rate(ms, "publish"), rate(ms, "deliver_get")]);
  if (state.history.length > 120) state.history.shift();
  drawChart();
}

function drawChart() {
  const c = $("#rate-chart"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const max = Math.max(1, ...state.history.flat());
  const colours = ["#e8590c", "#175cd3"];
  for (let series = 0; series < 2; series++) {
    g.beginPath(); g.strokeStyle = colours[series]; g.lineWidth = 2;
    state.history.forEach((p, i) => {
      const x = (i / 119) * c.width, y = c.height - 10 - (p[series] / max) * (c.height - 20);
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  }
  g.fillStyle = "#667085"; g.fillText("max " + max + " msg/s  (publish orange, deliver blue)", 8, 14);
}

// ---- queues ----------------------------------------------------------------
async function refreshQueues() {
  const queues = await api("GET", "/queues");
  const body = $("#queues-table tbody");
  const rows = queues.map((q) => {
    const features = el("td", {});
    if (q.durable) features.append(el("span", { class: "tag" }, "D"));
    if (q.auto_delete) features.append(el("span", { class: "tag" }, "AD"));
    if (q.exclusive) features.append(el("span", { class: "tag" }, "Excl"));
    if (q.arguments && q.arguments["x-dead-letter-exchange"] !== undefined) features.append(el("span", { class: "tag" }, "DLX"));
    const ms = q.message_stats || {};
    return el("tr", { "data-vhost": q.vhost, "data-queue": q.name },
      el("td", {}, q.vhost), el("td", { class: "name" }, q.name), features,
      el("td", { class: "num ready" }, q.messages_ready), el("td", { class: "num unacked" }, q.messages_unacknowledged),
      el("td", { class: "num total" }, q.messages), el("td", { class: "num consumers" }, q.consumers),
      el("td", { class: "num" }, rate(ms, "publish")), el("td", { class: "num" }, rate(ms, "deliver_get")));
  });
  body.replaceChildren(...rows);
}

// ---- dead letters ----------------------------------------------------------
async function fillQueueSelect() {
  const queues = await api("GET", "/queues");
  const select = $("#dl-queue"), current = select.value;
  // Queues that look like dead-letter queues first: those holding messages with x-death are unknown
  // until browsed, so order by name with "dl"/"dead" in it first.
  const looksDead = (q) => /dl|dead/i.test(q.name) ? 0 : 1;
  queues.sort((a, b) => looksDead(a) - looksDead(b) || a.name.localeCompare(b.name));
  select.replaceChildren(...queues.map((q) => el("option", { value: JSON.stringify([q.vhost, q.name]) }, q.vhost + " / " + q.name + " (" + q.messages + ")")));
  if (current) select.value = current;
}

function dlTarget() {
  const raw = $("#dl-queue").value;
  if (!raw) throw new Error("choose a queue");
  const [vhost, name] = JSON.parse(raw);
  return "/queues/" + enc(vhost) + "/" + enc(name);
}

function dlFilters() {
  const f = {};
  if ($("#dl-reason").value) f.reason = $("#dl-reason").value;
  if ($("#dl-origin-queue").value) f.origin_queue = $("#dl-origin-queue").value;
  if ($("#dl-origin-exchange").value) f.origin_exchange = $("#dl-origin-exchange").value;
  if ($("#dl-routing-key").value) f.origin_routing_key = $("#dl-routing-key").value;
  return f;
}

async function browse(ev) {
  if (ev) ev.preventDefault();
  const status = $("#dl-status");
  try {
    const f = dlFilters();
    const qs = new URLSearchParams({ ...f, limit: "200", truncate: "200" }).toString();
    const [msgs, summary] = await Promise.all([api("GET", dlTarget() + "/messages?" + qs), api("GET", dlTarget() + "/messages/summary?" + qs)]);
    renderSummary(summary);
    $("#dl-table tbody").replaceChildren(...msgs.map(renderDeadLetter));
    status.textContent = msgs.length + " message(s) shown";
  } catch (e) { status.textContent = "Error: " + e.message; }
}

function renderSummary(summary) {
  const box = $("#dl-summary");
  box.replaceChildren(el("strong", {}, "Total " + summary.total + ": "));
  for (const r of summary.by_reason) box.append(el("span", { class: "reason" }, r.reason + " " + r.count));
  for (const r of summary.by_origin) box.append(el("span", { class: "origin" }, r.queue + " via " + (r.exchange || "(default)") + " " + r.count));
}

function renderDeadLetter(m) {
  const d = m.origin || {};  // the broker's reading of the latest x-death entry
  const replay = el("button", { class: "replay-one", type: "button" }, "Replay");
  replay.addEventListener("click", () => replayMatching({ ids: [m.id] }));
  const died = d.time ? new Date(d.time * 1000).toISOString().replace("T", " ").slice(0, 19) : "";
  return el("tr", { "data-id": String(m.id) },
    el("td", {}, m.position), el("td", { class: "reason" }, d.reason), el("td", {}, d.queue), el("td", {}, d.exchange === "" ? "(default)" : d.exchange),
    el("td", {}, (d.routing_keys || []).join(", ")), el("td", {}, died), el("td", {}, m.replayed || 0),
    el("td", {}, el("code", {}, m.payload)), el("td", {}, replay));
}

async function replayMatching(extra) {
  const status = $("#dl-status");
  try {
    const body = { ...dlFilters(), ...(extra || {}), dry_run: $("#dl-dry-run").checked };
    const r = await api("POST", dlTarget() + "/replay", body);
    // By default each message goes back to the queue it died in (the server's default, as in the CLI).
    const reach = r.dry_run && r.queues && r.queues.length ? " to " + r.queues.map((q) => q.queue + " (" + q.count + ")").join(", ") : "";
    status.textContent = (r.dry_run ? "Dry run: would replay " : "Replayed ") + r.replayed + " of " + r.selected + reach +
      (r.unroutable ? ", " + r.unroutable + " unroutable (kept)" : "") + (r.skipped ? ", " + r.skipped + " without origin (kept)" : "");
    await browseKeepStatus();
  } catch (e) { status.textContent = "Error: " + e.message; }
}

function dlQueueLabel() {
  const [vhost, name] = JSON.parse($("#dl-queue").value);
  return "'" + name + "' (vhost " + vhost + ")";
}

// Deleting is the one click that loses data: a dry run only counts, a delete without a filter needs
// "all" ticked (the CLI's --all; the server refuses it otherwise too), and every delete is confirmed.
async function deleteMatching() {
  const status = $("#dl-status");
  try {
    const filters = dlFilters();
    const filtered = Object.keys(filters).length > 0;
    if (!filtered && !$("#dl-all").checked) {
      status.textContent = "No filter: tick \"all messages\" to delete every message in the queue";
      return;
    }
    const body = filtered ? filters : { all: true };
    const dry = await api("POST", dlTarget() + "/messages/delete", { ...body, dry_run: true });
    if ($("#dl-dry-run").checked) {
      status.textContent = "Dry run: would delete " + dry.selected;
      return;
    }
    const what = filtered ? dry.selected + " matching message(s)" : "ALL " + dry.selected + " message(s)";
    if (!window.confirm("Delete " + what + " from queue " + dlQueueLabel() + "? This cannot be undone.")) {
      status.textContent = "Nothing deleted";
      return;
    }
    const r = await api("POST", dlTarget() + "/messages/delete", body);
    await browse();
    status.textContent = "Deleted " + r.deleted;  // last: the page is up to date when it shows
  } catch (e) { status.textContent = "Error: " + e.message; }
}

async function browseKeepStatus() {
  const s = $("#dl-status").textContent;
  await browse();
  $("#dl-status").textContent = s;
}

// ---- topology --------------------------------------------------------------
async function refreshTopology() {
  const [exchanges, bindings] = await Promise.all([api("GET", "/exchanges"), api("GET", "/bindings")]);
  const root = el("ul", {});
  for (const x of exchanges) {
    const label = x.name === "" ? "(AMQP default)" : x.name;
    const item = el("li", { "data-exchange": x.name }, el("span", { class: "ex" }, label), " ", el("span", { class: "tag" }, x.type), " ", el("span", { class: "tag" }, x.vhost));
    const out = bindings.filter((b) => b.vhost === x.vhost && b.source === x.name && b.source !== "");
    if (out.length) {
      const list = el("ul", {});
      for (const b of out) {
        list.append(el("li", {}, el("span", { class: "key" }, b.routing_key === "" ? "(empty key)" : b.routing_key), " → ",
          el("span", { class: b.destination_type === "queue" ? "q" : "ex" }, b.destination_type + " " + b.destination)));
      }
      item.append(list);
    }
    root.append(item);
  }
  $("#topology-tree").replaceChildren(el("div", { class: "tree" }, root));
}

// ---- streams ---------------------------------------------------------------
// Stream queues (type "stream") with their extent: offsets, timestamps, segments, bytes.
function streamTime(seconds) {
  if (seconds === undefined || seconds === null) return "";
  return new Date(seconds * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function streamSize(bytes) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes || 0, unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit++; }
  return (unit ? value.toFixed(1) : String(value)) + " " + units[unit];
}

function streamRetention(args) {
  const parts = [];
  if (args && args["x-max-age"] !== undefined) parts.push("age " + args["x-max-age"]);
  if (args && args["x-max-length-bytes"] !== undefined) parts.push("size " + streamSize(args["x-max-length-bytes"]));
  return parts.join(", ") || "none";
}

async function refreshStreams() {
  const streams = (await api("GET", "/queues")).filter((q) => q.type === "stream");
  const rows = streams.map((q) => el("tr", { "data-vhost": q.vhost, "data-stream": q.name },
    el("td", {}, q.vhost), el("td", { class: "name" }, q.name),
    el("td", { class: "num messages" }, q.messages),
    el("td", { class: "num first-offset" }, text(q.first_offset)),
    el("td", { class: "num last-offset" }, text(q.last_offset)),
    el("td", { class: "oldest" }, streamTime(q.first_timestamp)),
    el("td", { class: "newest" }, streamTime(q.last_timestamp)),
    el("td", { class: "num segments" }, q.segments),
    el("td", { class: "num size" }, streamSize(q.bytes)),
    el("td", { class: "num readers" }, q.consumers),
    el("td", { class: "retention" }, streamRetention(q.arguments)),
    el("td", { class: "num" }, rate(q.message_stats, "publish"))));
  $("#streams-table tbody").replaceChildren(...rows);
  $("#streams-empty").hidden = streams.length > 0;
}

// ---- wiring ----------------------------------------------------------------
$("#login-form").addEventListener("submit", login);
$("#logout").addEventListener("click", () => logout(""));
for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.tab));
$("#dl-form").addEventListener("submit", browse);
$("#dl-replay").addEventListener("click", () => replayMatching());
$("#dl-delete").addEventListener("click", deleteMatching);
if (state.auth) start().catch(() => logout(""));
