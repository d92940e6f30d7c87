// rtcolor edit: the page. The server holds the input and writes the hints file; this page holds
// the hint list with its undo/redo history and sends the whole list on every change.
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

const st = {
  kind: "picture", frames: 1, cuts: [0], hints: [], frame: 0, selected: -1,
  undo: [], redo: [], rev: 0, shown: -1, loading: false, again: false, changedAt: 0,
  times: [], live: false, jobTimer: null,
  placed: new Map(), placedKey: "", // where the server has each hint on this frame (followed, gated)
};

function api(path, options = {}) {
  const headers = Object.assign({ "X-Rtcolor-Token": TOKEN }, options.headers || {});
  return fetch(path, Object.assign({}, options, { headers, cache: "no-store" })).then(async (r) => {
    const type = r.headers.get("Content-Type") || "";
    const body = type.startsWith("application/json") ? await r.json() : await r.text();
    if (!r.ok && r.status !== 409) {
      throw new Error((body && body.error) || body || `HTTP ${r.status}`);
    }
    return { status: r.status, body };
  });
}

function say(text, error = false) {
  const m = $("message");
  m.textContent = text;
  m.className = error ? "error" : "";
}

function imageUrl(view, frame) {
  return `/api/frame.jpg?view=${view}&frame=${frame}&rev=${st.rev}&t=${Date.now()}&token=${encodeURIComponent(TOKEN)}`;
}

// Shots: st.cuts are the frames that start a shot (0 first).
function shotOf(frame) {
  let s = 0;
  for (let i = 0; i < st.cuts.length; i++) if (st.cuts[i] <= frame) s = i;
  return s;
}

function hintFrame(h) {
  if (h.frame !== undefined && h.frame !== null) return h.frame;
  if (h.time !== undefined && h.time !== null) return Math.round(h.time * (st.fps || 25));
  return null;
}

// Which hints hold on the current frame, and how: "own" (placed here), "carried" (same shot) or "fixed" (frame-less).
function holding(h) {
  if (st.kind !== "video") return "own";
  const f = hintFrame(h);
  if (f === null) return "fixed";
  if (f === st.frame) return "own";
  return shotOf(f) === shotOf(st.frame) ? "carried" : null;
}

function snapshot() {
  return JSON.stringify(st.hints);
}

function change(mutator) {
  st.undo.push(snapshot());
  st.redo = [];
  mutator();
  save();
}

function fetchPlaced() {
  return api(`/api/placed?frame=${st.frame}`).then(({ body }) => {
    if (body.frame !== st.frame || body.rev !== st.rev) return;
    st.placed = new Map(body.placed.map((p) => [p.i, p]));
    st.placedKey = `${body.rev}:${body.frame}`;
    drawDots();
  }).catch((e) => say(e.message, true));
}

function save() {
  st.changedAt = performance.now();
  st.placedKey = ""; // until the server says where the changed hints are
  drawDots();
  const doc = JSON.stringify({ hints: st.hints });
  return api("/api/hints", { method: "PUT", headers: { "Content-Type": "application/json" }, body: doc })
    .then(({ body }) => {
      st.rev = body.rev;
      say(`saved: ${body.hints} hint${body.hints === 1 ? "" : "s"}`);
      refreshColor();
      if (st.kind !== "picture") fetchPlaced();
    })
    .catch((e) => say(e.message, true));
}

function refreshColor() {
  if (st.loading) {
    st.again = true; // the newest hints are shown once the picture in flight has arrived
    return;
  }
  st.loading = true;
  const img = $("color");
  const rev = st.rev;
  img.onload = () => {
    st.loading = false;
    img.dataset.rev = String(rev);
    img.dataset.frame = String(st.frame);
    if (st.changedAt) {
      $("latency").textContent = `updated in ${Math.round(performance.now() - st.changedAt)} ms`;
      st.changedAt = 0;
    }
    if (st.again) {
      st.again = false;
      refreshColor();
    } else if (st.live) {
      setTimeout(refreshColor, 40);
    }
  };
  img.onerror = () => {
    st.loading = false;
    api(`/api/frame.jpg?view=color&frame=${st.frame}`).catch((e) => say(e.message, true));
    if (st.live) setTimeout(refreshColor, 1000);
  };
  img.src = imageUrl("color", st.frame);
}

function showFrame(frame) {
  st.frame = Math.max(0, Math.min(st.frames - 1, frame));
  $("scrub").value = String(st.frame);
  const shot = shotOf(st.frame) + 1;
  const t = st.fps ? ` (${(st.frame / st.fps).toFixed(2)} s)` : "";
  $("frame-label").textContent = `frame ${st.frame}${t}, shot ${shot} of ${st.cuts.length}`;
  $("gray").src = imageUrl("gray", st.frame);
  st.selected = -1;
  st.placedKey = "";
  drawDots();
  refreshColor();
  if (st.kind !== "picture") fetchPlaced();
}

function drawDots() {
  const svg = $("dots");
  const box = svg.getBoundingClientRect();
  svg.setAttribute("viewBox", `0 0 ${box.width || 1} ${box.height || 1}`);
  svg.replaceChildren();
  const list = $("hint-list");
  list.replaceChildren();
  const known = st.placedKey === `${st.rev}:${st.frame}`;
  svg.dataset.placed = known ? st.placedKey : "";
  st.hints.forEach((h, i) => {
    const p = known ? st.placed.get(i) : null;
    let how = holding(h);
    if (known) how = p ? (p.carried ? "carried" : how || "own") : null; // lost by the tracker: not on this frame
    const at = p || h;
    const li = document.createElement("li");
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.style.background = h.color; // set through the CSSOM: the page's policy refuses inline style attributes
    li.append(chip, `${h.color} at ${(h.x * 100).toFixed(1)}%, ${(h.y * 100).toFixed(1)}%` +
      (hintFrame(h) !== null ? `, frame ${hintFrame(h)}` : ""));
    li.className = i === st.selected ? "selected" : "";
    li.onclick = () => {
      if (st.kind === "video" && hintFrame(h) !== null && how === null) showFrame(hintFrame(h));
      select(i);
    };
    list.append(li);
    if (!how) return;
    const r = 4 + Math.min(12, (h.size || 3) / 2);
    const c = document.createElementNS(SVG, "circle");
    c.setAttribute("cx", at.x * box.width);
    c.setAttribute("cy", at.y * box.height);
    c.setAttribute("r", r);
    c.setAttribute("fill", h.color);
    const off = p && !p.held;
    c.setAttribute("class", `hint ${how === "carried" ? "carried" : ""} ${off ? "held-off" : ""} ${i === st.selected ? "selected" : ""}`);
    const tip = document.createElementNS(SVG, "title");
    tip.textContent = off ? `${h.color}: held off here (the scene under it changed)` : how === "carried"
      ? `${h.color}: carried from frame ${hintFrame(h)}` : h.color;
    c.append(tip);
    c.dataset.index = String(i);
    c.dataset.color = h.color;
    svg.append(c);
    const ring = document.createElementNS(SVG, "circle");
    ring.setAttribute("cx", at.x * box.width);
    ring.setAttribute("cy", at.y * box.height);
    ring.setAttribute("r", r + 2);
    ring.setAttribute("class", "ring");
    svg.append(ring);
  });
  const n = svg.querySelectorAll(".hint").length;
  $("count").textContent = st.kind === "video" ? `${st.hints.length} hints, ${n} on this frame` : `${st.hints.length} hints`;
  $("undo").disabled = !st.undo.length;
  $("redo").disabled = !st.redo.length;
  $("delete").disabled = st.selected < 0;
  drawShotMarks();
}

function select(i) {
  st.selected = i;
  drawDots();
  if (i >= 0) {
    const h = st.hints[i];
    $("picker").value = h.color;
    $("size").value = String(h.size || 3);
    loadSuggestions(h.x, h.y);
  }
}

function setColor(color) {
  if (st.selected < 0) return;
  change(() => { st.hints[st.selected] = Object.assign({}, st.hints[st.selected], { color }); });
  document.querySelectorAll(".swatch").forEach((s) => s.classList.toggle("current", s.dataset.color === color));
}

function pointAt(ev) {
  const box = $("dots").getBoundingClientRect();
  const clamp = (v) => Math.max(0, Math.min(1, v));
  return { x: clamp((ev.clientX - box.left) / box.width), y: clamp((ev.clientY - box.top) / box.height) };
}

function round6(v) {
  return Math.round(v * 1e6) / 1e6;
}

// The color the page shows at (x, y): a new hint starts with it, so the click costs one network
// run (the picture with the hint); the suggested colors load beside it for the chooser.
function shownColor(p) {
  const img = $("color");
  if (!img.naturalWidth) return null;
  const c = document.createElement("canvas");
  c.width = 1;
  c.height = 1;
  const g = c.getContext("2d");
  const sx = Math.min(img.naturalWidth - 1, Math.floor(p.x * img.naturalWidth));
  const sy = Math.min(img.naturalHeight - 1, Math.floor(p.y * img.naturalHeight));
  g.drawImage(img, sx, sy, 1, 1, 0, 0, 1, 1);
  const d = g.getImageData(0, 0, 1, 1).data;
  return "#" + [d[0], d[1], d[2]].map((v) => v.toString(16).padStart(2, "0")).join("");
}

function addHint(p) {
  const hint = { x: round6(p.x), y: round6(p.y), color: shownColor(p) || "#808080" };
  const size = Number($("size").value);
  if (size !== 3) hint.size = size;
  if (st.kind === "video") hint.frame = st.frame;
  change(() => st.hints.push(hint));
  select(st.hints.length - 1);
}

function wireDots() {
  const svg = $("dots");
  let drag = null;
  svg.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0) return;
    const t = ev.target.closest(".hint");
    if (t) {
      const i = Number(t.dataset.index);
      drag = { i, before: snapshot(), moved: false };
      svg.setPointerCapture(ev.pointerId);
      select(i);
    } else {
      addHint(pointAt(ev));
    }
    ev.preventDefault();
  });
  svg.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    const p = pointAt(ev);
    const h = st.hints[drag.i];
    Object.assign(h, { x: round6(p.x), y: round6(p.y) });
    if (st.kind === "video" && hintFrame(h) !== null && hintFrame(h) !== st.frame) {
      delete h.time; // a carried hint moved here is put on this frame, where the user sees it
      h.frame = st.frame;
    }
    st.placedKey = "";
    drag.moved = true;
    drawDots();
  });
  svg.addEventListener("pointerup", () => {
    if (drag && drag.moved) {
      st.undo.push(drag.before);
      st.redo = [];
      save();
      loadSuggestions(st.hints[drag.i].x, st.hints[drag.i].y);
    }
    drag = null;
  });
  svg.addEventListener("contextmenu", (ev) => {
    ev.preventDefault();
    const t = ev.target.closest(".hint");
    if (t) remove(Number(t.dataset.index));
  });
  new ResizeObserver(drawDots).observe(svg);
}

function remove(i) {
  if (i < 0 || i >= st.hints.length) return;
  change(() => st.hints.splice(i, 1));
  st.selected = -1;
  drawDots();
}

function step(from, to) {
  if (!from.length) return;
  to.push(snapshot());
  st.hints = JSON.parse(from.pop());
  st.selected = -1;
  save();
}

function wireControls() {
  document.querySelectorAll("#modes button").forEach((b) => { b.onclick = () => setMode(b.dataset.mode); });
  $("split").oninput = applySplit;
  $("undo").onclick = () => step(st.undo, st.redo);
  $("redo").onclick = () => step(st.redo, st.undo);
  $("delete").onclick = () => remove(st.selected);
  $("picker").onchange = (ev) => setColor(ev.target.value);
  $("size").onchange = (ev) => {
    if (st.selected < 0) return;
    const size = Number(ev.target.value);
    change(() => {
      const h = Object.assign({}, st.hints[st.selected]);
      if (size === 3) delete h.size; else h.size = size;
      st.hints[st.selected] = h;
    });
  };
  $("scrub").oninput = (ev) => showFrame(Number(ev.target.value));
  $("prev-frame").onclick = () => showFrame(st.frame - 1);
  $("next-frame").onclick = () => showFrame(st.frame + 1);
  $("prev-shot").onclick = () => {
    const s = shotOf(st.frame);
    showFrame(st.cuts[st.frame === st.cuts[s] ? Math.max(0, s - 1) : s]);
  };
  $("next-shot").onclick = () => {
    const s = shotOf(st.frame);
    if (s + 1 < st.cuts.length) showFrame(st.cuts[s + 1]);
  };
  $("run").onclick = () => runJob(false);
  document.addEventListener("keydown", (ev) => {
    if (ev.target.tagName === "INPUT" && ev.target.type === "text") return;
    const ctrl = ev.ctrlKey || ev.metaKey;
    if (ctrl && ev.key.toLowerCase() === "z" && !ev.shiftKey) step(st.undo, st.redo);
    else if (ctrl && (ev.key.toLowerCase() === "y" || (ev.key.toLowerCase() === "z" && ev.shiftKey))) step(st.redo, st.undo);
    else if (ev.key === "Delete" || ev.key === "Backspace") remove(st.selected);
    else if (st.kind === "video" && ev.key === ",") showFrame(st.frame - 1);
    else if (st.kind === "video" && ev.key === ".") showFrame(st.frame + 1);
    else if (st.kind === "video" && ev.key === "PageUp") $("prev-shot").click();
    else if (st.kind === "video" && ev.key === "PageDown") $("next-shot").click();
    else return;
    ev.preventDefault();
  });
}

function start() {
  wireDots();
  wireControls();
  api("/api/state").then(({ body }) => {
    Object.assign(st, { kind: body.kind, frames: body.frames, cuts: body.cuts, hints: body.hints,
      rev: body.rev, fps: body.fps, live: body.kind === "live" });
    $("name").textContent = `${body.name} (${body.kind}, ${body.width}x${body.height}${body.kind === "video" ? `, ${body.frames} frames, ${body.cuts.length} shots` : ""})`;
    $("output").value = body.default_output || "";
    $("command").textContent = body.command || "";
    if (body.kind === "video") {
      $("timeline").hidden = false;
      $("scrub").max = String(body.frames - 1);
    }
    if (body.kind === "live") {
      $("live-row").hidden = false;
      $("run").hidden = true;
      $("output").parentElement.hidden = true;
      setInterval(() => {
        api("/api/state").then(({ body: s }) => { $("live-state").textContent = s.live_state; });
        fetchPlaced(); // the gate follows what is in front of the camera
      }, 1000);
    }
    $("model-note").hidden = body.hints_used;
    setMode("color");
    showJob(body.job);
    showFrame(0);
  }).catch((e) => say(`cannot load the editor: ${e.message}`, true));
}

start();
