// Mission Control operations dashboard: plain JavaScript, no dependencies, served by the binary.
// Lists come over HTTP; every change after them comes over the WebSocket relay, which resumes
// from the last positions seen (`since`) after a disconnect, so nothing is missed.
"use strict";

const API = "/api/v1";
const POINTS = 300; // per telemetry chart
const $ = (id) => document.getElementById(id);

const state = {
  token: localStorage.getItem("mc.token"),
  ws: null,
  since: null, // {events, telemetry}: the last positions seen
  retry: 0,
  missions: new Map(),
  agents: new Map(),
  alarms: new Map(),
  spacecraft: localStorage.getItem("mc.spacecraft") || "",
  limits: {},
  series: new Map(), // parameter -> [[time, value]]
  started: false,
};

// ---- HTTP ------------------------------------------------------------------------------------

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (options.body) headers["Content-Type"] = "application/json";
  const r = await fetch(API + path, { ...options, headers });
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = text; }
  if (r.status === 401) {
    askToken("the server refused this token");
    throw new Error("unauthorized");
  }
  if (!r.ok) {
    const e = new Error((body && body.detail) || `${r.status} ${r.statusText}`);
    e.status = r.status;
    throw e;
  }
  return body;
}

const post = (path, body) => api(path, { method: "POST", body: JSON.stringify(body || {}) });

// ---- sign in ---------------------------------------------------------------------------------

function askToken(message) {
  localStorage.removeItem("mc.token");
  state.token = null;
  $("login-error").textContent = message || "";
  if (!$("login").open) $("login").showModal();
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  state.token = $("token").value.trim();
  try {
    await api("/system/status");
    localStorage.setItem("mc.token", state.token);
    $("login").close();
    start();
  } catch (err) {
    $("login-error").textContent = `not accepted: ${err.message}`;
  }
});

$("logout").addEventListener("click", () => {
  if (state.ws) state.ws.close();
  askToken("");
});

// ---- rendering -------------------------------------------------------------------------------

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
  return td;
}

function upsertRow(tbody, id, cells, flash) {
  let tr = tbody.querySelector(`tr[data-id="${id}"]`);
  if (!tr) {
    tr = document.createElement("tr");
    tr.dataset.id = id;
    tbody.prepend(tr);
  }
  tr.replaceChildren(...cells);
  if (flash) {
    tr.classList.remove("flash");
    void tr.offsetWidth;
    tr.classList.add("flash");
  }
  return tr;
}

function removeRow(tbody, id) {
  const tr = tbody.querySelector(`tr[data-id="${id}"]`);
  if (tr) tr.remove();
}

function agentName(id) {
  const a = id && state.agents.get(id);
  return a ? a.name : id ? id.slice(0, 8) : "";
}

function renderMission(m, flash) {
  state.missions.set(m.id, m);
  upsertRow($("missions"), m.id, [
    cell(m.title), cell(m.status, m.status), cell(m.priority), cell(`${m.progress}%`), cell(agentName(m.agentId)),
  ], flash);
  $("mission-count").textContent = state.missions.size;
}

function renderAgent(a, flash) {
  state.agents.set(a.id, a);
  upsertRow($("agents"), a.id, [
    cell(a.name), cell(a.status, a.status), cell((a.capabilities || []).join(", ")),
  ], flash);
  $("agent-count").textContent = state.agents.size;
}

function button(label, action) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", async () => {
    b.disabled = true;
    try { await action(); } catch (e) { alert(`${label}: ${e.message}`); b.disabled = false; }
  });
  return b;
}

function renderAlarm(a, flash) {
  if (a.state === "CLEARED") {
    state.alarms.delete(a.id);
    removeRow($("alarms"), a.id);
  } else {
    state.alarms.set(a.id, a);
    const actions = document.createElement("td");
    if (!a.acknowledged) {
      actions.append(button("Acknowledge", () => post(`/alarms/${a.id}/acknowledge`, { operator: "dashboard", comment: "from the dashboard" })));
    }
    if (!a.shelved) {
      actions.append(" ", button("Shelve 1 h", () => post(`/alarms/${a.id}/shelve`, { operator: "dashboard", comment: "from the dashboard", durationSeconds: 3600 })));
    }
    const tr = upsertRow($("alarms"), a.id, [
      cell(a.spacecraftId), cell(a.parameter), cell(a.kind), cell(a.severity, a.severity),
      cell(a.shelved ? `${a.state} (shelved)` : a.state), cell(JSON.stringify(a.lastValue)), actions,
    ], flash);
    tr.dataset.state = a.state;
  }
  $("alarm-count").textContent = state.alarms.size;
}

function renderSystem(s) {
  const health = $("health");
  health.textContent = `health ${s.healthScore}`;
  health.className = `chip ${s.healthScore >= 80 ? "ok" : s.healthScore >= 50 ? "off" : "warn"}`;
  const rows = [
    ["agents", `${s.agentsTotal} (busy ${s.agentsActive}, idle ${s.agentsIdle}, offline ${s.agentsOffline}, error ${s.agentsError})`],
    ["task runs", `${s.tasksPending} pending, ${s.tasksCompleted} completed, ${s.tasksFailed} failed`],
    ["missions", `${s.missionsInProgress} in progress, ${s.missionsCompleted} completed, ${s.missionsFailed} failed`],
    ["success (60 min)", s.successRate == null ? "–" : `${Math.round(s.successRate * 100)} %`],
    ["active alarms", `${s.alarmsCritical} critical, ${s.alarmsWarning} warning`],
    ["events / min", s.eventsPerMinute],
  ];
  if (s.consumers) {
    rows.push(["projection lag", `${s.consumers.maxLagEvents ?? "?"} events` +
      (s.consumers.failed && s.consumers.failed.length ? `; failed: ${s.consumers.failed.join(", ")}` : "")]);
  }
  $("system").replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    return [dt, dd];
  }));
}

// ---- telemetry charts ------------------------------------------------------------------------

function addSample(snapshot) {
  const t = typeof snapshot.timestamp === "number" ? snapshot.timestamp : Date.parse(snapshot.timestamp);
  for (const [name, value] of Object.entries(snapshot.parameters || {})) {
    if (typeof value !== "number") continue;
    const s = state.series.get(name) || [];
    s.push([t, value]);
    if (s.length > POINTS) s.splice(0, s.length - POINTS);
    state.series.set(name, s);
  }
}

function chart(name) {
  let box = document.querySelector(`.chart[data-parameter="${CSS.escape(name)}"]`);
  if (!box) {
    box = document.createElement("div");
    box.className = "chart";
    box.dataset.parameter = name;
    const label = document.createElement("div");
    label.className = "label";
    box.append(label, document.createElement("canvas"));
    $("charts").append(box);
  }
  return box;
}

function draw() {
  for (const [name, points] of state.series) {
    const box = chart(name);
    const canvas = box.querySelector("canvas");
    const w = (canvas.width = canvas.clientWidth * devicePixelRatio);
    const h = (canvas.height = canvas.clientHeight * devicePixelRatio);
    const ctx = canvas.getContext("2d");
    const l = state.limits[name] || {};
    const bounds = [l.critLow, l.warnLow, l.warnHigh, l.critHigh].filter((v) => typeof v === "number");
    const values = points.map((p) => p[1]).concat(bounds);
    let lo = Math.min(...values), hi = Math.max(...values);
    if (lo === hi) { lo -= 1; hi += 1; }
    const pad = (hi - lo) * 0.1; lo -= pad; hi += pad;
    const y = (v) => h - ((v - lo) / (hi - lo)) * h;
    const band = (from, to, color) => {
      if (from == null && to == null) return;
      const top = y(to == null ? hi : to), bottom = y(from == null ? lo : from);
      ctx.fillStyle = color;
      ctx.fillRect(0, top, w, bottom - top);
    };
    band(l.critHigh, null, "rgba(255,80,80,.22)");
    band(null, l.critLow, "rgba(255,80,80,.22)");
    band(l.warnHigh, l.critHigh ?? null, "rgba(255,194,71,.18)");
    band(l.critLow ?? null, l.warnLow, "rgba(255,194,71,.18)");
    const t0 = points[0][0], t1 = Math.max(points[points.length - 1][0], t0 + 1);
    ctx.strokeStyle = "#6fc3ff";
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.beginPath();
    points.forEach(([t, v], i) => {
      const x = ((t - t0) / (t1 - t0)) * w;
      if (i) ctx.lineTo(x, y(v)); else ctx.moveTo(x, y(v));
    });
    ctx.stroke();
    const last = points[points.length - 1][1];
    box.querySelector(".label").textContent = "";
    const n = document.createElement("span"); n.textContent = name;
    const v = document.createElement("span"); v.textContent = last;
    box.querySelector(".label").append(n, v);
  }
}

async function chooseSpacecraft(id) {
  const old = state.spacecraft;
  state.spacecraft = id;
  localStorage.setItem("mc.spacecraft", id);
  state.series.clear();
  state.limits = {};
  $("charts").replaceChildren();
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    if (old) state.ws.send(JSON.stringify({ op: "unsubscribe", topics: [`telemetry:${old}`] }));
    if (id) state.ws.send(JSON.stringify({ op: "subscribe", topics: [`telemetry:${id}`], since: null }));
  }
  if (!id) return;
  try {
    const config = await api(`/spacecraft/${encodeURIComponent(id)}/config`);
    const inForce = config.inForce || {};
    state.limits = inForce.parameters || inForce;
  } catch (_) { /* no limits yet */ }
}

$("spacecraft").addEventListener("change", (e) => chooseSpacecraft(e.target.value));

// ---- task runs waiting for an operator -------------------------------------------------------

async function loadRuns() {
  const page = await api("/task-runs?state=awaiting_approval&limit=50");
  const runs = await Promise.all(page.items.map((r) => api(`/task-runs/${r.id}`)));
  $("run-count").textContent = runs.length;
  $("runs").replaceChildren(...runs.map((run) => {
    const box = document.createElement("div");
    box.className = "run";
    const title = document.createElement("div");
    title.innerHTML = "run <code></code> of task <code></code>";
    title.querySelectorAll("code")[0].textContent = run.id.slice(0, 8);
    title.querySelectorAll("code")[1].textContent = run.taskId.slice(0, 8);
    box.append(title);
    for (const call of run.toolCalls || []) {
      if (!String(call.status).startsWith("pending")) continue;
      const line = document.createElement("div");
      const what = document.createElement("code");
      what.textContent = `${call.tool} (${call.risk}) ${JSON.stringify(call.arguments)}`;
      line.append(what, " ",
        button("Approve", async () => { await post(`/task-runs/${run.id}/tool-calls/${call.callId}/approve`, { reason: "approved on the dashboard" }); loadRuns(); }),
        " ",
        button("Deny", async () => { await post(`/task-runs/${run.id}/tool-calls/${call.callId}/deny`, { reason: "denied on the dashboard" }); loadRuns(); }));
      box.append(line);
    }
    return box;
  }));
}

// ---- the live relay --------------------------------------------------------------------------

function setLink(text, cls) {
  $("link").textContent = text;
  $("link").className = `chip ${cls}`;
  $("link").dataset.state = cls === "ok" ? "live" : "reconnecting";
}

async function refetch(kind, id, position) {
  const path = { missions: "/missions/", agents: "/agents/", alarms: "/alarms/" }[kind];
  try {
    const row = await api(`${path}${id}?minPosition=${position}`);
    if (kind === "missions") renderMission(row, true);
    else if (kind === "agents") renderAgent(row, true);
    else renderAlarm(row, true);
  } catch (e) {
    if (e.status !== 404) return;
    if (kind === "missions") { state.missions.delete(id); removeRow($("missions"), id); }
    if (kind === "agents") { state.agents.delete(id); removeRow($("agents"), id); }
  }
}

async function loadLists(position) {
  const q = `limit=100&minPosition=${position}`;
  const [agents, missions, spacecraft] = await Promise.all([
    api(`/agents?${q}`), api(`/missions?${q}`), api(`/spacecraft?${q}`),
  ]);
  agents.items.forEach((a) => renderAgent(a, false));
  missions.items.slice().reverse().forEach((m) => renderMission(m, false));
  const select = $("spacecraft");
  const known = new Set([...select.options].map((o) => o.value));
  for (const s of spacecraft.items) {
    if (known.has(s.id)) continue;
    const o = document.createElement("option");
    o.value = s.id; o.textContent = s.name && s.name !== s.id ? `${s.id} (${s.name})` : s.id;
    select.append(o);
  }
  if (state.spacecraft && !select.value) { select.value = state.spacecraft; chooseSpacecraft(state.spacecraft); }
}

function handle(frame) {
  switch (frame.type) {
    case "subscribed":
      if (!state.since) {
        state.since = { ...frame.positions };
        loadLists(frame.positions.events).catch((e) => console.warn("lists", e));
      }
      break;
    case "snapshot":
      if (frame.topic === "alarms") (Array.isArray(frame.data) ? frame.data : frame.data.items || []).forEach((a) => renderAlarm(a, false));
      if (frame.topic === `telemetry:${state.spacecraft}`) {
        // {parameters: {name: {value, timestamp, position}}}: the latest value of each.
        for (const [name, v] of Object.entries((frame.data || {}).parameters || {})) {
          addSample({ timestamp: v.timestamp, parameters: { [name]: v.value } });
        }
        draw();
      }
      break;
    case "event":
      state.since.events = Math.max(state.since.events, frame.position);
      if (["missions", "agents", "alarms"].includes(frame.topic)) refetch(frame.topic, frame.data.aggregateId, frame.position);
      if (frame.topic === "system" && frame.data.aggregateType === "spacecraft") loadLists(frame.position).catch(() => {});
      break;
    case "telemetry":
      state.since.telemetry = Math.max(state.since.telemetry, frame.position);
      if (frame.topic === `telemetry:${state.spacecraft}`) {
        (Array.isArray(frame.data) ? frame.data : [frame.data]).forEach(addSample);
        draw();
      }
      break;
    case "lagged":
      $("lagged").hidden = false;
      $("lagged").textContent = `lagged: ${frame.dropped} telemetry frames coalesced`;
      setTimeout(() => { $("lagged").hidden = true; }, 5000);
      break;
    case "metrics":
      renderSystem(frame.data);
      break;
    case "error":
      console.warn("relay:", frame.message);
      if (/since/.test(frame.message || "")) { state.since = null; state.ws.close(); }
      break;
    default:
      break;
  }
}

function connect() {
  if (!state.token) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}${API}/ws?access_token=${encodeURIComponent(state.token)}`);
  state.ws = ws;
  ws.onopen = () => {
    state.retry = 0;
    setLink("live", "ok");
    const topics = ["missions", "agents", "alarms", "system"];
    if (state.spacecraft) topics.push(`telemetry:${state.spacecraft}`);
    ws.send(JSON.stringify({ op: "subscribe", topics, since: state.since }));
  };
  ws.onmessage = (m) => handle(JSON.parse(m.data));
  ws.onclose = (e) => {
    if (state.ws !== ws || !state.token) return;
    if (e.code === 4001) { askToken(e.reason || "the token was revoked"); return; }
    setLink("reconnecting…", "off");
    // A refused handshake closes with 1006 too: a 401 here asks for another token.
    api("/system/status").catch(() => {});
    const delay = Math.min(5000, 250 * 2 ** state.retry++);
    setTimeout(connect, delay);
  };
}

function start() {
  connect();
  if (state.started) return;
  state.started = true;
  const system = () => api("/system/status").then(renderSystem).catch(() => {});
  const runs = () => loadRuns().catch(() => {});
  system(); runs();
  setInterval(system, 5000);
  setInterval(runs, 5000);
  setInterval(() => state.ws && state.ws.readyState === WebSocket.OPEN && state.ws.send('{"op":"ping"}'), 20000);
}

if (state.token) start(); else askToken("");
