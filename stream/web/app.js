// dfstream page: send the webcam over WebRTC, draw the scores that come back on the data channel.
"use strict";
const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
const COLOURS = { real: "#5c5", fake: "#e44", uncertain: "#fb0" };
const HISTORY = 150;
let pc = null;
let tracks = new Map();  // track_id -> {last record, history of scores}
let latest = [];         // records of the newest frame
let latestFrame = -1;
let count = 0;
let stamps = [];

function withToken(url) { return token ? `${url}?token=${encodeURIComponent(token)}` : url; }

let watching = "";  // "" = this browser's camera, else a server-side feed (already annotated)

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
  tracks = new Map(); latest = []; count = 0;
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
  $("status").textContent = "stopped"; $("start").disabled = false; $("stop").disabled = true;
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
  $("latency").textContent = r.latency_ms.total.toFixed(0);
  const t = tracks.get(r.track_id) || { history: [] };
  t.last = r; t.history.push(r.score); if (t.history.length > HISTORY) t.history.shift();
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
  for (const [id, t] of [...tracks].slice(-8)) {
    const r = t.last;
    const row = document.createElement("tr");
    row.dataset.track = id;
    row.innerHTML = `<td>#${id}</td><td class="${r.label}">${r.label}</td><td class="score">${fmt(r.score)}</td>` +
      `<td>${fmt(r.score_frame)}</td><td>${fmt(r.score_clip)}</td><td class="imported">${imported(r)}</td>`;
    body.appendChild(row);
  }
}

function drawOverlay() {
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
    ctx.fillText(`#${r.track_id} ${r.label} ${r.score.toFixed(2)}`, x * sx, Math.max(14, y * sy - 6));
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

function drawChart() {
  const c = $("chart"), ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  ctx.strokeStyle = "#555"; ctx.beginPath(); ctx.moveTo(0, c.height / 2); ctx.lineTo(c.width, c.height / 2); ctx.stroke();
  let i = 0;
  for (const [, t] of tracks) {
    ctx.strokeStyle = ["#4af", "#f84", "#c6f", "#6d6"][i++ % 4];
    ctx.beginPath();
    t.history.forEach((s, k) => {
      const x = (k / (HISTORY - 1)) * c.width, y = c.height * (1 - s);
      k ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    });
    ctx.stroke();
  }
}

$("start").onclick = () => start().catch((e) => { $("status").textContent = `error: ${e.message}`; $("start").disabled = false; });
$("stop").onclick = stop;
loadFeeds();

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
    const a = document.createElement("a"); a.href = fileUrl(e.clip); a.textContent = "play"; a.target = "_blank";
    clip.appendChild(a);
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
