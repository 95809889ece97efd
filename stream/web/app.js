// dfstream page: send the webcam over WebRTC, draw the scores that come back on the data channel.
"use strict";
const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
const COLOURS = { real: "#5c5", fake: "#e44", uncertain: "#fb0" };
const WINDOW_MS = 10000;  // the chart's time span
const STALE_MS = 1000;    // a face not scored for this long has left: it fades, then goes
const FADE_MS = 300;
const TRACK_COLOURS = ["#44aaff", "#ff8844", "#cc66ff", "#66dd66"];  // six digits: a band adds alpha "33"
let pc = null;
let settings = { threshold: 0.5, models: {} };  // from /settings: where each score turns
let feedThresholds = {};  // from /grid: a camera of the cameras file may have its own
// Where the label turns for what is watched: the feed's own threshold, else the server's.
function threshold() { return watching && feedThresholds[watching] !== undefined ? feedThresholds[watching] : settings.threshold; }
let tracks = new Map();  // track_id -> {last record, seen (ms), history of {t, s, label}}
let lastRecordAt = 0;
let latest = [];         // records of the newest frame
let latestFrame = -1;
let count = 0;
let stamps = [];

function withToken(url) { return token ? `${url}?token=${encodeURIComponent(token)}` : url; }

let watching = "";  // "" = this browser's camera, else a server-side feed (already annotated)

async function loadSettings() {
  const res = await fetch(withToken("/settings"));
  if (!res.ok) return;
  settings = await res.json();
  $("threshold").textContent = threshold().toFixed(2);
  const beside = (id, name, key) => {
    const t = settings.models[key];
    $(id).textContent = t === undefined ? name : `${name} (fake ≥ ${t.toFixed(3)})`;
  };
  beside("th-frame", "model A", "frame_model");
  beside("th-clip", "model B", "clip_model");
  const imported = Object.entries(settings.models).filter(([k]) => k !== "frame_model" && k !== "clip_model");
  if (imported.length) $("th-imported").textContent = "imported (" + imported.map(([k, t]) => `${k} ≥ ${t.toFixed(3)}`).join(", ") + ")";
  drawChart();
}

async function loadFeeds() {
  const res = await fetch(withToken("/feeds"));
  if (!res.ok) return;
  for (const name of (await res.json()).feeds) {
    const opt = document.createElement("option"); opt.value = opt.textContent = name; $("feed").appendChild(opt);
  }
}

async function start() {
  $("start").disabled = true;
  watching = $("feed").value;
  clearView(); count = 0;
  $("threshold").textContent = threshold().toFixed(2);
  pc = new RTCPeerConnection({ iceServers: [] });
  if (watching) {
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.ontrack = (e) => { $("video").srcObject = new MediaStream([e.track]); };
  } else {
    $("status").textContent = "asking for the camera";
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    $("video").srcObject = stream;
    stream.getTracks().forEach((t) => pc.addTrack(t, stream));
  }
  const channel = pc.createDataChannel("scores");
  channel.onmessage = (e) => onRecord(JSON.parse(e.data));
  pc.onconnectionstatechange = () => { $("status").textContent = pc.connectionState; };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
  });
  const res = await fetch(withToken("/offer"), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(Object.assign({ sdp: pc.localDescription.sdp, type: pc.localDescription.type },
                                       watching ? { feed: watching } : {})),
  });
  const answer = await res.json();
  if (!res.ok) { $("status").textContent = `refused: ${answer.error}`; $("start").disabled = false; return; }
  await pc.setRemoteDescription(answer);
  $("stop").disabled = false;
}

function stop() {
  if (pc) { pc.getSenders().forEach((s) => s.track && s.track.stop()); pc.close(); pc = null; }
  $("video").srcObject = null;
  clearView();
  $("status").textContent = "stopped"; $("start").disabled = false; $("stop").disabled = true;
}

// Nothing of a stopped session stays on screen: no boxes, no rows, no frozen fps or latency.
function clearView() {
  tracks = new Map(); latest = []; latestFrame = -1; stamps = []; lastRecordAt = 0;
  $("fps").textContent = "–"; $("latency").textContent = "–";
  renderTable(); drawOverlay(); drawChart();
}

// Faces that are no longer scored fade and go; fps and latency say so when no score arrives.
function expire() {
  const now = performance.now();
  let changed = false;
  for (const [id, t] of tracks) if (now - t.seen > STALE_MS) { tracks.delete(id); changed = true; }
  if (lastRecordAt && now - lastRecordAt > STALE_MS) {
    if (latest.length) { latest = []; changed = true; }
    $("fps").textContent = "no scores"; $("latency").textContent = "–";
  }
  if (changed) { renderTable(); drawOverlay(); }
  drawChart();
}

function onRecord(r) {
  if (r.type !== "score") return;
  count += 1;
  $("count").textContent = count;
  if (r.frame_id !== latestFrame) {
    latestFrame = r.frame_id; latest = [];
    const now = performance.now(); stamps.push(now); stamps = stamps.filter((t) => now - t < 2000);
    $("fps").textContent = (stamps.length / 2).toFixed(1);
  }
  latest.push(r);
  const now = performance.now();
  lastRecordAt = now;
  $("latency").textContent = r.latency_ms.total.toFixed(0);
  const t = tracks.get(r.track_id) || { history: [] };
  t.last = r; t.seen = now; t.history.push({ t: now, s: r.score, label: r.label });
  while (t.history.length && now - t.history[0].t > WINDOW_MS) t.history.shift();
  tracks.set(r.track_id, t);
  renderTable(); drawOverlay(); drawChart();
}

function fmt(x) { return x === null || x === undefined ? "–" : x.toFixed(3); }

// Imported detectors ('dfstream import'): each one's latest P(fake) and how old it is.
function imported(r) {
  if (!r.models) return "–";
  return Object.entries(r.models).map(([name, p]) => {
    const age = r.models_age_ms[name];
    return `${name} ${fmt(p)}` + (age === null ? "" : ` <small>(${(age / 1000).toFixed(1)} s)</small>`);
  }).join("<br>");
}

function renderTable() {
  const body = $("faces").querySelector("tbody");
  body.innerHTML = "";
  const now = performance.now();
  for (const [id, t] of [...tracks].slice(-8)) {
    const r = t.last;
    const row = document.createElement("tr");
    row.dataset.track = id;
    if (now - t.seen > FADE_MS) row.className = "fading";
    row.innerHTML = `<td>#${id}</td><td class="${r.label}">${r.label}</td><td class="score">${fmt(r.score)}</td>` +
      `<td>${fmt(r.score_frame)}</td><td>${fmt(r.score_clip)}</td><td class="imported">${imported(r)}</td>`;
    body.appendChild(row);
  }
}

// The stage's badge: the most alarming face of the newest frame, large enough to read from across a room.
const RANK = { real: 0, uncertain: 1, fake: 2 };
function drawBadge() {
  const badge = $("badge");
  const worst = latest.reduce((w, r) => (w && RANK[w.label] >= RANK[r.label] ? w : r), null);
  badge.hidden = !pc;
  badge.className = `badge ${worst ? worst.label : "none"}`;
  badge.textContent = worst ? worst.label.toUpperCase() : (lastRecordAt ? "no face" : "waiting");
}

function drawOverlay() {
  drawBadge();
  const video = $("video"), canvas = $("overlay");
  canvas.width = video.clientWidth; canvas.height = video.clientHeight;
  const sx = canvas.width / (video.videoWidth || canvas.width), sy = canvas.height / (video.videoHeight || canvas.height);
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (watching) return;  // the server already drew the boxes into the feed's video
  ctx.font = "14px system-ui"; ctx.lineWidth = 2;
  for (const r of latest) if (r.attention) drawAttention(ctx, r.attention, sx, sy);
  for (const r of latest) {
    const [x, y, w, h] = r.bbox;
    ctx.strokeStyle = ctx.fillStyle = COLOURS[r.label];
    ctx.strokeRect(x * sx, y * sy, w * sx, h * sy);
    const text = `#${r.track_id} ${r.label} ${r.score.toFixed(2)}`, ty = Math.max(18, y * sy - 6);
    ctx.fillStyle = "rgba(0, 0, 0, 0.65)";  // readable on a bright face
    ctx.fillRect(x * sx - 1, ty - 15, ctx.measureText(text).width + 8, 19);
    ctx.fillStyle = COLOURS[r.label];
    ctx.fillText(text, x * sx + 3, ty);
    ctx.fillRect(x * sx, (y + h) * sy + 4, w * sx * r.score, 5);
  }
}

// --explain: model A's attention grid over its crop square, JET colours relative to the face's peak,
// smoothed the way the server draws it into videos.
function jet(v) {
  const c = (d) => Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * v - d))));
  return [c(3), c(2), c(1)];
}

function drawAttention(ctx, att, sx, sy) {
  const n = att.grid.length, peak = Math.max(...att.grid.flat());
  if (!(peak > 0)) return;
  const small = document.createElement("canvas");
  small.width = small.height = n;
  const sctx = small.getContext("2d"), img = sctx.createImageData(n, n);
  att.grid.flat().forEach((value, k) => {
    const v = value / peak, [r, g, b] = jet(v);
    img.data.set([r, g, b, Math.round(255 * 0.55 * Math.sqrt(v))], 4 * k);
  });
  sctx.putImageData(img, 0, 0);
  const [x, y, side] = att.box;
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(small, x * sx, y * sy, side * sx, side * sy);
}

// Each face's score over the last 10 s: time on x, score on y, the fake zone above the threshold
// shaded, the stretches a face was labelled fake shaded in its colour, a legend of faces.
function drawChart() {
  const c = $("chart"), ctx = c.getContext("2d");
  const left = 34, right = c.width - 8, top = 8, bottom = c.height - 22, now = performance.now();
  const X = (t) => left + (1 - (now - t) / WINDOW_MS) * (right - left);
  const Y = (s) => bottom - s * (bottom - top);
  ctx.clearRect(0, 0, c.width, c.height);
  ctx.font = "11px system-ui"; ctx.fillStyle = "rgba(238, 68, 68, 0.12)";
  ctx.fillRect(left, top, right - left, Y(threshold()) - top);
  ctx.strokeStyle = "#555"; ctx.fillStyle = "#999"; ctx.lineWidth = 1;
  for (const [v, name] of [[0, "0"], [threshold(), threshold().toFixed(2)], [1, "1"]]) {
    ctx.beginPath(); ctx.moveTo(left, Y(v)); ctx.lineTo(right, Y(v)); ctx.stroke();
    ctx.fillText(name, 4, Y(v) + 4);
  }
  for (const sec of [10, 5, 0]) {
    const x = X(now - sec * 1000);
    ctx.fillText(sec ? `−${sec} s` : "now", Math.min(x - 10, right - 24), c.height - 6);
  }
  let i = 0, legend = left + 4;
  for (const [id, t] of tracks) {
    const colour = TRACK_COLOURS[i++ % TRACK_COLOURS.length];
    ctx.fillStyle = colour + "33";
    let from = null;  // one band per stretch labelled fake
    t.history.forEach((p, k) => {
      if (p.label === "fake" && from === null) from = p.t;
      const end = k === t.history.length - 1;
      if (from !== null && (p.label !== "fake" || end)) {
        ctx.fillRect(X(from), top, X(p.t) - X(from), bottom - top);
        from = null;
      }
    });
    ctx.strokeStyle = colour; ctx.lineWidth = 2; ctx.beginPath();
    t.history.forEach((p, k) => (k ? ctx.lineTo(X(p.t), Y(p.s)) : ctx.moveTo(X(p.t), Y(p.s))));
    ctx.stroke();
    ctx.fillStyle = colour; ctx.fillText(`#${id}`, legend, top + 12); legend += 34;
  }
}

$("start").onclick = () => start().catch((e) => { $("status").textContent = `error: ${e.message}`; $("start").disabled = false; });
$("stop").onclick = stop;
loadSettings();
loadFeeds();
setInterval(expire, 250);

// Events: the server's list (its events folder when it has one), refreshed every few seconds.
function fileUrl(name) { return withToken(`/events/${encodeURIComponent(name)}`); }

function eventRow(e) {
  const row = document.createElement("tr");
  const started = new Date(e.start_ts * 1000).toLocaleString();
  const duration = e.end_ts ? `${(e.end_ts - e.start_ts).toFixed(1)} s` : "ongoing";
  const cells = [started, e.source.split("/").pop(), `#${e.track_id}`, e.peak_score.toFixed(2),
                 e.mean_score.toFixed(2), duration];
  for (const text of cells) { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); }
  const shot = document.createElement("td");
  if (e.snapshot) { const img = document.createElement("img"); img.src = fileUrl(e.snapshot); img.alt = e.id; shot.appendChild(img); }
  const clip = document.createElement("td");
  if (e.clip && e.clip_status === "done") {
    const video = document.createElement("video");
    video.src = fileUrl(e.clip); video.controls = true; video.preload = "none"; video.muted = true;
    clip.appendChild(video);
  } else { clip.textContent = e.clip_status === "none" ? "–" : e.clip_status; }
  row.append(shot, clip);
  return row;
}

async function loadEvents() {
  const res = await fetch(withToken("/events"));
  if (!res.ok) return;
  const body = await res.json();
  const tbody = $("events").querySelector("tbody");
  tbody.replaceChildren(...body.events.map(eventRow));
  $("events-note").textContent = body.events.length ? (body.stored ? "" : "Not stored: start the server with --events-dir to keep snapshots and clips.")
    : "No deepfake events yet.";
}

loadEvents();
setInterval(loadEvents, 5000);

// The camera grid: each server-side feed's newest picture and its most alarming label, twice a second.
// A tile asks for its next picture only once the last one has arrived, so a slow link never piles up.
const GRID_MS = 500;
const NO_FRAMES_S = 2;
function gridTile(name, i) {
  const tile = document.createElement("figure");
  tile.className = "tile"; tile.id = `tile-${i}`; tile.dataset.feed = name; tile.title = `watch ${name} live`;
  const img = document.createElement("img"); img.alt = name;
  img.onload = img.onerror = () => { delete img.dataset.busy; };
  const caption = document.createElement("figcaption");
  const badge = document.createElement("span"); badge.className = "badge none"; badge.textContent = "…";
  const title = document.createElement("span"); title.className = "name"; title.textContent = name;
  const score = document.createElement("span"); score.className = "score";
  caption.append(badge, title, score); tile.append(img, caption);
  tile.onclick = () => watchFeed(name).catch((e) => { $("status").textContent = `error: ${e.message}`; });
  $("grid").appendChild(tile);
  return tile;
}

async function refreshGrid() {
  const res = await fetch(withToken("/grid"));
  if (!res.ok) return;
  const feeds = (await res.json()).feeds;
  $("cameras").hidden = feeds.length === 0;
  feeds.forEach((f, i) => {
    feedThresholds[f.feed] = f.threshold;
    const tile = $(`tile-${i}`) || gridTile(f.feed, i);
    const stale = f.age_s === null || f.age_s > NO_FRAMES_S;
    const badge = tile.querySelector(".badge");
    badge.className = `badge ${stale ? "none" : f.label}`;
    badge.textContent = stale ? "no frames" : (f.label === "none" ? "no face" : f.label.toUpperCase());
    tile.querySelector(".score").textContent = stale || f.score === null ? `fake ≥ ${f.threshold.toFixed(2)}`
      : `${f.score.toFixed(2)} · fake ≥ ${f.threshold.toFixed(2)}`;
    tile.classList.toggle("watching", pc !== null && watching === f.feed);
    const img = tile.querySelector("img");
    if (!stale && !img.dataset.busy) {
      img.dataset.busy = "1";
      img.src = withToken(`/grid/${i}.jpg`) + (token ? "&" : "?") + `n=${Date.now()}`;
    }
  });
}

async function watchFeed(name) {
  if (pc) stop();
  $("feed").value = name;
  await start();
}

refreshGrid();
setInterval(refreshGrid, GRID_MS);
