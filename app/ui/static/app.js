// Condense dashboard: views drawn from the /v1 API with the logged-in key (localStorage); no other server state.
"use strict";

const KEY = "condense-api-key";
const view = document.getElementById("view");

function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${localStorage.getItem(KEY) || ""}`, ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) { localStorage.removeItem(KEY); location.hash = "#/login"; throw new Error("log in"); }
  if (!response.ok) {
    let problem = {};
    try { problem = await response.json(); } catch (e) { /* not JSON */ }
    const fields = (problem.errors || []).map((e) => `${e.field}: ${e.message}`).join("; ");
    throw new Error(fields || problem.detail || problem.title || response.statusText);
  }
  return response;
}
const json = async (path, options) => (await api(path, options)).json();
const pct = (x) => (x == null ? "" : `${(100 * x).toFixed(2)}%`);
const showError = (where, error) => { where.innerHTML = `<p class="error">${esc(error.message)}</p>`; };

// ---- views ---------------------------------------------------------------------------------------------

function login() {
  view.innerHTML = `<section><h1>Log in</h1>
    <form id="login-form"><label>API key <input id="api-key" type="password" size="60" required></label>
    <button type="submit">Log in</button></form>
    <p class="muted">The embedded server writes its local key to .condense/api-key; <code>condense admin create-key</code> makes others.</p>
    <p id="login-error" class="error"></p></section>`;
  document.getElementById("login-form").onsubmit = async (event) => {
    event.preventDefault();
    const key = document.getElementById("api-key").value.trim();
    const answer = await fetch("/v1/datasets?limit=1", { headers: { Authorization: `Bearer ${key}` } });
    if (!answer.ok) { document.getElementById("login-error").textContent = "that key was refused"; return; }
    localStorage.setItem(KEY, key);
    location.hash = "#/jobs";
    route();  // the same hash as before a log-out draws no hashchange
  };
}

async function datasets() {
  const page = await json("/v1/datasets?limit=200");
  view.innerHTML = `<h1>Datasets</h1>
    <section><h2>Upload</h2><form id="upload-form">
      <label>File <input id="upload-file" type="file" required></label>
      <label>Name <input id="upload-name" placeholder="the file's stem"></label>
      <button type="submit">Upload</button> <span id="upload-status" class="muted"></span></form></section>
    <section><table id="datasets"><tr><th>name</th><th>format</th><th>images</th><th>classes</th><th>shape</th><th>created</th></tr>
    ${page.data.map((d) => `<tr><td><a href="#/datasets/${d.id}">${esc(d.name)}</a></td><td>${esc(d.format)}</td>
      <td>${d.num_samples}</td><td>${d.num_classes}</td><td>${d.image_shape.join("×")}</td>
      <td>${esc(d.created_at.slice(0, 19))}</td></tr>`).join("")}</table></section>`;
  document.getElementById("upload-form").onsubmit = async (event) => {
    event.preventDefault();
    const status = document.getElementById("upload-status");
    const body = new FormData();
    body.append("file", document.getElementById("upload-file").files[0]);
    const name = document.getElementById("upload-name").value.trim();
    if (name) body.append("name", name);
    status.textContent = "uploading…";
    try { const d = await json("/v1/datasets", { method: "POST", body }); location.hash = `#/datasets/${d.id}`; }
    catch (e) { status.innerHTML = `<span class="error">${esc(e.message)}</span>`; }
  };
}

async function dataset(id) {
  const d = await json(`/v1/datasets/${id}`);
  const methods = await json("/v1/methods");
  view.innerHTML = `<h1>${esc(d.name)}</h1>
    <section><p>${esc(d.format)}, ${d.splits.train} training and ${d.splits.test} test images, ${d.num_classes} classes of
      ${d.image_shape.join("×")}; sha256 <code>${esc(d.content_hash.slice(0, 16))}…</code></p>
      ${barChart(d.classes.map((c) => [c.name, c.train]), "training images per class", "class-counts")}
      <div id="dataset-samples" class="muted">loading samples…</div></section>
    <section><h2>New job</h2><form id="submit-form">
      <label>Kind <select id="job-kind"><option value="prune">prune</option><option value="distill">distill</option></select></label>
      <label>Method <select id="job-method"></select></label>
      <label id="keep-field">Keep <input id="job-keep" value="0.1" size="6"></label>
      <label id="ipc-field" hidden>Images per class <input id="job-ipc" value="10" size="4"></label>
      <button type="submit">Submit</button> <span id="submit-status"></span></form></section>`;
  json(`/v1/datasets/${id}/samples?per_class=6`).then((samples) => {
    document.getElementById("dataset-samples").outerHTML = sampleGrid(samples.data, "dataset", "the first training images of each class");
  }).catch((e) => showError(document.getElementById("dataset-samples"), e));
  const kind = document.getElementById("job-kind");
  const method = document.getElementById("job-method");
  const choices = () => {
    const names = kind.value === "prune" ? methods.prune_methods : methods.distillation_methods.map((m) => m.name);
    method.innerHTML = names.map((n) => `<option>${esc(n)}</option>`).join("");
    document.getElementById("keep-field").hidden = kind.value !== "prune";
    document.getElementById("ipc-field").hidden = kind.value === "prune";
  };
  kind.onchange = choices;
  choices();
  document.getElementById("submit-form").onsubmit = async (event) => {
    event.preventDefault();
    const spec = { kind: kind.value, dataset_id: id, method: method.value };
    if (kind.value === "prune") {
      const keep = Number(document.getElementById("job-keep").value);
      spec[keep > 1 ? "keep_count" : "keep_fraction"] = keep;
    } else spec.ipc = Number(document.getElementById("job-ipc").value);
    try {
      const job = await json("/v1/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(spec) });
      location.hash = `#/jobs/${job.id}`;
    } catch (e) { document.getElementById("submit-status").innerHTML = `<span class="error">${esc(e.message)}</span>`; }
  };
}

async function jobs() {
  const page = await json("/v1/jobs?limit=200");
  view.innerHTML = `<h1>Jobs</h1><section><table id="jobs"><tr><th>job</th><th>kind</th><th>status</th><th>progress</th><th>stage</th><th>created</th></tr>
    ${page.data.map((j) => `<tr><td><a href="#/jobs/${j.id}">${esc(j.id)}</a></td><td>${esc(j.kind)}</td>
      <td class="status-${j.status}">${j.status}</td><td>${progressBar(j.progress)}</td><td>${esc(j.stage)}</td>
      <td>${esc(j.created_at.slice(0, 19))}</td></tr>`).join("")}</table>
    <p class="muted">New jobs start from a dataset's page.</p></section>`;
}

const progressBar = (p) => `<span class="bar"><span style="width:${Math.round(100 * (p || 0))}%"></span></span> ${Math.round(100 * (p || 0))}%`;

async function job(id) {
  let data = await json(`/v1/jobs/${id}`);
  view.innerHTML = `<h1>${esc(data.kind)} job <code>${esc(id)}</code></h1>
    <section id="job-status"></section><section id="job-result"></section>
    <section><h2>Spec</h2><pre>${esc(JSON.stringify(data.spec, null, 2))}</pre></section>`;
  const status = document.getElementById("job-status");
  const drawStatus = () => {
    status.innerHTML = `<p>Status: <strong id="status" class="status-${data.status}">${data.status}</strong>
      ${esc(data.stage || "")} ${progressBar(data.progress)}</p>
      ${data.error ? `<p class="error">${esc(data.error.message)}</p>` : ""}
      ${["queued", "running"].includes(data.status) ? '<button id="cancel">Cancel</button>' : ""}`;
    const cancel = document.getElementById("cancel");
    if (cancel) cancel.onclick = async () => { data = await json(`/v1/jobs/${id}/cancel`, { method: "POST" }); drawStatus(); };
  };
  drawStatus();
  if (!["succeeded", "failed", "canceled"].includes(data.status)) {
    await follow(id, (event) => {
      if (event.progress != null) data.progress = event.progress;
      if (event.stage) data.stage = event.stage;
      if (event.type === "status") data.status = event.data.status;
      drawStatus();
    });
    data = await json(`/v1/jobs/${id}`);
    drawStatus();
  }
  if (data.status === "succeeded") await result(data);
}

// Server-sent events over fetch (EventSource cannot send the Authorization header).
async function follow(id, onEvent) {
  const response = await api(`/v1/jobs/${id}/events`, { headers: { Accept: "text/event-stream" } });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    const blocks = buffer.split(/\r?\n\r?\n/);
    buffer = blocks.pop();
    for (const block of blocks) {
      const line = block.split(/\r?\n/).find((l) => l.startsWith("data:"));
      if (line) onEvent(JSON.parse(line.slice(5)));
    }
  }
}

async function result(data) {
  const box = document.getElementById("job-result");
  const m = data.metrics || {};
  const files = Object.fromEntries(data.artifacts.map((a) => [a.name, a]));
  const rows = ["subset", "synthetic", "coreset", "random", "full"].filter((k) => m[`${k}_accuracy`]?.mean != null)
    .map((k) => [{ subset: "pruned subset", synthetic: "synthetic set", coreset: "pruned coreset", random: "random subset", full: "full data" }[k], m[`${k}_accuracy`]]);
  const gain = m.gain_over_random || m.dd_ranking?.improvement_over_random;
  box.innerHTML = `<h2>Result</h2>
    ${m.reason ? `<p class="muted">${esc(m.reason)}</p>` : ""}
    ${rows.length ? accuracyChart(rows) : ""}
    ${gain ? `<p class="verdict" id="verdict">Over random: ${(100 * gain.mean).toFixed(2)} ± ${(100 * (gain.std || 0)).toFixed(2)} points, ${esc(gain.verdict.verdict)}</p>` : ""}
    ${m.recommendation ? `<p class="verdict">${esc(m.recommendation)}</p>` : ""}
    <div id="charts"></div>
    <div class="grid" id="preview"></div>
    <h2>Files</h2><p id="downloads">${data.artifacts.map((a) => `<button class="link" data-name="${esc(a.name)}" title="${esc(a.description)}">${esc(a.name)}</button> <span class="muted">(${(a.size_bytes / 1024).toFixed(1)} kB)</span>`).join(" · ")}</p>
    <p><button class="link" data-name="artifacts.zip" id="download-all">all files in one zip</button></p>`;
  for (const button of box.querySelectorAll("#downloads button")) button.onclick = () => download(`/v1/jobs/${data.id}/artifacts/${button.dataset.name}`, button.dataset.name);
  document.getElementById("download-all").onclick = () => download(`/v1/jobs/${data.id}/artifacts.zip`, `${data.id}.zip`);
  const charts = document.getElementById("charts");
  if (files["samples.json"]) {
    const samples = await json(`/v1/jobs/${data.id}/artifacts/samples.json`);
    document.getElementById("preview").insertAdjacentHTML("beforeend",
      sampleGrid(samples.kept, "kept", "kept samples of each class, most important first") +
      sampleGrid(samples.pruned, "pruned", "pruned samples of each class, most important first"));
  } else if (files["preview.png"]) await image(data.id, "preview.png", document.getElementById("preview"), "the synthetic images, one row per class");
  if (files["curve.png"]) await image(data.id, "curve.png", document.getElementById("preview"), "accuracy against the kept fraction");
  if (files["report.json"]) {
    const report = await json(`/v1/jobs/${data.id}/artifacts/report.json`);
    const sel = report.selection || {};
    if (sel.full_class_counts && sel.per_class_counts) {
      const names = report.dataset?.classes || sel.full_class_counts.map((_, i) => String(i));
      charts.insertAdjacentHTML("beforeend", barChart(names.map((n, i) => [n, sel.full_class_counts[i], sel.per_class_counts[i]]),
        "images per class: all (grey) and kept (blue)", "per-class"));
    }
  }
  if (files["scores.csv"]) {
    const text = await (await api(`/v1/jobs/${data.id}/artifacts/scores.csv`)).text();
    charts.insertAdjacentHTML("beforeend", histogram(parseCsv(text)));
  }
  if (files["loss_curve.json"]) {
    const curve = await json(`/v1/jobs/${data.id}/artifacts/loss_curve.json`);
    charts.insertAdjacentHTML("beforeend", lineChart(curve.loss, "distillation loss by iteration"));
  }
}

function sampleGrid(samples, id, caption) {
  const about = (s) => esc(s.class_name) + (s.score == null ? "" : `, score ${Number(s.score).toPrecision(3)}, rank ${s.rank}`);
  return `<figure><div id="${id}-grid" class="samples">${samples.map((s) => `<div class="sample" title="${about(s)}">
    <img alt="${esc(s.source)}" src="${s.image}"><span>${esc(s.source)}</span></div>`).join("")}</div>
    <figcaption class="muted">${esc(caption)}</figcaption></figure>`;
}

async function image(id, name, where, caption) {
  const blob = await (await api(`/v1/jobs/${id}/artifacts/${name}`)).blob();
  where.insertAdjacentHTML("beforeend", `<figure><img alt="${esc(caption)}" src="${URL.createObjectURL(blob)}"><figcaption class="muted">${esc(caption)}</figcaption></figure>`);
}

async function download(url, name) {
  const blob = await (await api(url)).blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
}

function parseCsv(text) {
  const [header, ...lines] = text.trim().split(/\r?\n/);
  const names = header.split(",");
  // scores.csv quotes no field but source, which may hold commas: split the fixed columns from both ends.
  return lines.map((line) => {
    const parts = line.split(",");
    const row = {};
    const tail = names.length - 2;
    names.slice(0, 1).forEach((n, i) => { row[n] = parts[i]; });
    names.slice(2).forEach((n, i) => { row[n] = parts[parts.length - tail + i]; });
    return row;
  });
}

// ---- charts (inline SVG, no library) --------------------------------------------------------------------

function accuracyChart(rows) {
  const width = 560, barH = 26, left = 130, height = rows.length * barH + 24;
  const lo = Math.max(0, Math.min(...rows.map(([, s]) => s.mean - (s.std || 0))) - 0.05);
  const x = (v) => left + ((v - lo) / (1 - lo)) * (width - left - 70);
  return `<svg id="accuracy" width="${width}" height="${height}" role="img" aria-label="test accuracy">
    ${rows.map(([label, s], i) => {
      const y = i * barH + 4, std = s.std || 0;
      return `<text x="0" y="${y + 15}">${esc(label)}</text>
        <rect class="acc-bar" x="${left}" y="${y}" width="${x(s.mean) - left}" height="${barH - 8}" fill="#2f6fde"></rect>
        <line x1="${x(s.mean - std)}" x2="${x(s.mean + std)}" y1="${y + 9}" y2="${y + 9}" stroke="#1d2430" stroke-width="2"></line>
        <text x="${x(s.mean + std) + 6}" y="${y + 15}">${pct(s.mean)} ± ${pct(std)}</text>`;
    }).join("")}
    <text x="${left}" y="${height - 2}" class="muted">test accuracy, mean ± std over seeds (axis from ${pct(lo)})</text></svg>`;
}

function barChart(rows, title, id) {
  const width = 560, rowH = 18, left = 110, height = rows.length * rowH + 22;
  const max = Math.max(...rows.map((r) => r[1]), 1);
  return `<figure><svg id="${id}" width="${width}" height="${height}" role="img" aria-label="${esc(title)}">
    ${rows.map(([label, all, kept], i) => {
      const y = i * rowH;
      const w = (v) => ((width - left - 60) * v) / max;
      return `<text x="0" y="${y + 12}">${esc(label)}</text>
        <rect x="${left}" y="${y + 2}" width="${w(all)}" height="${rowH - 5}" fill="${kept == null ? "#2f6fde" : "#c9ced6"}"></rect>
        ${kept == null ? "" : `<rect x="${left}" y="${y + 2}" width="${w(kept)}" height="${rowH - 5}" fill="#2f6fde"></rect>`}
        <text x="${left + w(all) + 4}" y="${y + 12}">${kept == null ? all : `${kept} / ${all}`}</text>`;
    }).join("")}</svg><figcaption class="muted">${esc(title)}</figcaption></figure>`;
}

function histogram(rows) {
  const scores = rows.map((r) => Number(r.score)).filter(Number.isFinite);
  if (!scores.length) return "";
  const lo = Math.min(...scores), hi = Math.max(...scores), bins = 30, span = hi - lo || 1;
  const all = new Array(bins).fill(0), kept = new Array(bins).fill(0);
  rows.forEach((r) => {
    const s = Number(r.score);
    if (!Number.isFinite(s)) return;
    const b = Math.min(bins - 1, Math.floor(((s - lo) / span) * bins));
    all[b] += 1;
    if (r.selected === "1") kept[b] += 1;
  });
  const width = 560, height = 140, max = Math.max(...all), bw = (width - 20) / bins;
  return `<figure><svg id="score-histogram" width="${width}" height="${height + 16}" role="img" aria-label="score histogram">
    ${all.map((n, i) => `<rect x="${10 + i * bw}" y="${height - (height * n) / max}" width="${bw - 1}" height="${(height * n) / max}" fill="#c9ced6"></rect>
      <rect x="${10 + i * bw}" y="${height - (height * kept[i]) / max}" width="${bw - 1}" height="${(height * kept[i]) / max}" fill="#2f6fde"></rect>`).join("")}
    <text x="10" y="${height + 13}">${lo.toPrecision(3)}</text><text x="${width - 50}" y="${height + 13}">${hi.toPrecision(3)}</text></svg>
    <figcaption class="muted">score of every training sample (grey) and of the kept ones (blue)</figcaption></figure>`;
}

function lineChart(values, title) {
  if (!values.length) return "";
  const width = 560, height = 140, lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
  const points = values.map((v, i) => `${10 + (i * (width - 20)) / Math.max(1, values.length - 1)},${10 + (height - 20) * (1 - (v - lo) / span)}`);
  return `<figure><svg id="loss-curve" width="${width}" height="${height}" role="img" aria-label="${esc(title)}">
    <polyline fill="none" stroke="#2f6fde" stroke-width="2" points="${points.join(" ")}"></polyline></svg>
    <figcaption class="muted">${esc(title)}</figcaption></figure>`;
}

// ---- routing ---------------------------------------------------------------------------------------------

async function route() {
  const [, page, id] = location.hash.split("/");
  if (page === "logout") { localStorage.removeItem(KEY); location.hash = "#/login"; return; }
  if (!localStorage.getItem(KEY) || page === "login") { login(); return; }
  try {
    if (page === "datasets" && id) await dataset(id);
    else if (page === "datasets") await datasets();
    else if (page === "jobs" && id) await job(id);
    else await jobs();
  } catch (e) { if (e.message !== "log in") showError(view, e); }
}
window.addEventListener("hashchange", route);
route();
