// rtcolor edit: the page's panels around the picture: view modes, the suggested colors, the
// video's shot marks and the colorize job.
// Loaded before editor.js, whose state (st) and helpers ($, api, say) these use when called.
"use strict";

function drawShotMarks() {
  if (st.kind !== "video") return;
  const marks = $("shots");
  marks.replaceChildren();
  const span = Math.max(1, st.frames - 1);
  st.cuts.forEach((c, i) => {
    if (i > 0) {
      const d = document.createElement("div");
      d.className = "cut";
      d.style.left = `${(100 * c) / span}%`;
      d.title = `shot ${i + 1} starts at frame ${c}`;
      marks.append(d);
    }
    const end = i + 1 < st.cuts.length ? st.cuts[i + 1] : st.frames;
    if (st.hints.some((h) => hintFrame(h) !== null && hintFrame(h) >= c && hintFrame(h) < end)) {
      const bar = document.createElement("div");
      bar.className = "has-hints";
      bar.style.left = `${(100 * c) / span}%`;
      bar.style.width = `${(100 * (end - c)) / span}%`;
      marks.append(bar);
    }
  });
}

function runJob(overwrite) {
  const output = $("output").value;
  api("/api/colorize", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ output, overwrite }) })
    .then(({ status, body }) => {
      if (status === 409) {
        if (confirm(`${body.output} exists. Replace it?`)) runJob(true);
        return;
      }
      showJob(body);
      pollJob();
    })
    .catch((e) => { $("job-message").textContent = e.message; say(e.message, true); });
}

function pollJob() {
  clearTimeout(st.jobTimer);
  api("/api/job").then(({ body }) => {
    showJob(body);
    if (body.state === "running") st.jobTimer = setTimeout(pollJob, 400);
  }).catch((e) => say(e.message, true));
}

function showJob(job) {
  const bar = $("progress");
  $("job").dataset.state = job.state;
  if (job.command) $("command").textContent = job.command;
  if (job.state === "idle") return;
  bar.hidden = false;
  bar.max = Math.max(1, job.total || 1);
  bar.value = job.state === "done" ? bar.max : job.done || 0;
  $("run").disabled = job.state === "running";
  $("job-message").textContent = job.state === "running"
    ? `colorizing: ${job.done || 0} of ${job.total || "?"} frames` : job.message || job.state;
  if (job.state === "failed") say(job.message, true);
}

function setMode(mode) {
  const view = $("view");
  view.className = mode;
  document.querySelectorAll("#modes button").forEach((b) => b.classList.toggle("on", b.dataset.mode === mode));
  $("compare-row").hidden = mode !== "slider";
  applySplit();
  drawDots();
}

function applySplit() {
  const v = $("split").value;
  $("color").style.clipPath = $("view").className === "slider" ? `inset(0 0 0 ${v}%)` : "";
}

function loadSuggestions(x, y) {
  $("chooser-label").textContent = "Loading suggestions...";
  $("swatches").replaceChildren();
  return api(`/api/suggest?frame=${st.frame}&x=${x}&y=${y}`).then(({ body }) => {
    const wrap = $("swatches");
    wrap.replaceChildren();
    $("chooser-label").textContent = body.from === "model"
      ? "The network's likeliest colors here:" : "Colors to try (the model offers no distribution):";
    body.colors.forEach((c) => {
      const b = document.createElement("button");
      b.className = "swatch";
      b.style.background = c.color;
      b.dataset.color = c.color;
      b.title = c.p === null ? c.color : `${c.color}: ${(100 * c.p).toFixed(0)}%`;
      if (c.p !== null) {
        const pct = document.createElement("small");
        pct.textContent = String(Math.round(100 * c.p));
        b.append(pct);
      }
      b.onclick = () => setColor(c.color);
      wrap.append(b);
    });
    return body.colors;
  }).catch((e) => say(e.message, true));
}
