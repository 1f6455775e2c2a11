// shardlens page: plain JS and SVG, nothing fetched from outside this server.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail ?? body);
    throw new Error(`${response.status}: ${detail}`);
  }
  return body;
}

function el(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// A vertical bar chart: one bar per item, labels rotated under the axis.
function barChart(svg, items, { cssClass, label }) {
  svg.replaceChildren();
  const width = svg.clientWidth || 520;
  const height = svg.clientHeight || 340;
  const margin = { top: 16, right: 8, bottom: 120, left: 40 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const max = Math.max(1, ...items.map((d) => d.count));
  const step = plotW / Math.max(1, items.length);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.appendChild(el("line", { x1: margin.left, y1: margin.top + plotH, x2: width - margin.right, y2: margin.top + plotH, stroke: "#999" }));
  for (let t = 0; t <= 4; t++) {
    const value = Math.round((max * t) / 4);
    const y = margin.top + plotH - (plotH * value) / max;
    svg.appendChild(el("text", { x: margin.left - 6, y: y + 4, "text-anchor": "end" }, String(value)));
  }
  items.forEach((d, i) => {
    const h = (plotH * d.count) / max;
    const x = margin.left + i * step + step * 0.1;
    const bar = el("rect", {
      class: `bar ${cssClass}`,
      x, y: margin.top + plotH - h, width: step * 0.8, height: h,
      "data-label": label(d), "data-count": d.count,
    });
    bar.appendChild(el("title", {}, `${label(d)}: ${d.count}`));
    svg.appendChild(bar);
    const tx = x + step * 0.4;
    const ty = margin.top + plotH + 8;
    const text = label(d);
    svg.appendChild(el("text", { x: tx, y: ty, transform: `rotate(60 ${tx} ${ty})` }, text.length > 22 ? `${text.slice(0, 21)}…` : text));
  });
}

function stats(dl, rows) {
  dl.replaceChildren();
  for (const [name, value] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    dl.append(dt, dd);
  }
}

const pct = (x) => `${(100 * x).toFixed(1)}%`;

// Every answer says whether its posterior converged; an unconverged or unchecked one warns.
function showConvergence(convergence) {
  const box = $("convergence-warning");
  const warning = convergence && convergence.warning;
  box.textContent = warning ? `Warning: ${warning}` : "";
  box.hidden = !warning;
  box.dataset.status = (convergence && convergence.status) || "";
}

async function recommend(userId) {
  const k = $("k").value || 10;
  $("error").hidden = true;
  try {
    const r = await getJSON(`/recommend/${encodeURIComponent(userId)}?k=${encodeURIComponent(k)}`);
    showConvergence(r.convergence);
    $("result").hidden = false;
    $("result-title").textContent = `User ${r.user_id}: watched ${r.watched_count} movies, ${r.num_samples} posterior samples (model ${r.model_version})`;
    barChart($("picks-chart"), r.recommendations, { cssClass: "pick", label: (d) => d.title });
    barChart($("genres-chart"), r.genres, { cssClass: "genre", label: (d) => d.genre });
    const u = r.uncertainty;
    stats($("uncertainty"), [
      ["entropy of picks", u.entropy_bits === null ? (u.note || "no picks") : `${u.entropy_bits.toFixed(2)} bits`],
      ["distinct movies picked", String(u.distinct_movies)],
      ["most common pick's share", pct(u.top_share)],
    ]);
    const body = $("picks-table").querySelector("tbody");
    body.replaceChildren();
    for (const m of r.recommendations) {
      const row = document.createElement("tr");
      const interval = `${m.probability.toFixed(3)} [${m.interval.low.toFixed(3)}, ${m.interval.high.toFixed(3)}]`;
      for (const cell of [m.title, m.genres.join(", "), m.count, pct(m.share), interval]) {
        const td = document.createElement("td");
        td.textContent = String(cell);
        row.appendChild(td);
      }
      body.appendChild(row);
    }
  } catch (error) {
    $("result").hidden = true;
    $("error").textContent = error.message;
    $("error").hidden = false;
  }
}

async function loadModel() {
  try {
    const m = await getJSON("/model");
    $("model-line").textContent = `Serving model ${m.model_version}: ${m.num_users} users, ${m.num_movies} movies, ${m.num_samples} samples.`;
    showConvergence(m.convergence);
    const d = m.diagnostics || {};
    const rows = Object.entries(d).filter(([, v]) => typeof v !== "object").map(([key, v]) => [key, typeof v === "number" ? Number(v.toPrecision(4)).toString() : String(v)]);
    if (m.convergence) rows.unshift(["convergence", m.convergence.status.replace("_", " ")]);
    stats($("diagnostics"), rows);
    const plots = $("plots");
    plots.replaceChildren();
    for (const name of m.plots || []) {
      const img = document.createElement("img");
      img.src = `/model/files/${name}`;
      img.alt = name;
      plots.appendChild(img);
    }
    const featured = await getJSON("/users?sort=most_watched&limit=3");
    const light = await getJSON("/users?sort=least_watched&limit=3");
    const box = $("featured");
    box.replaceChildren("Try: ");
    for (const u of [...featured.users, ...light.users]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = `user ${u.user_id} (${u.watched_count} watched)`;
      b.dataset.userId = u.user_id;
      b.addEventListener("click", () => { $("user-id").value = u.user_id; recommend(u.user_id); });
      box.appendChild(b);
    }
  } catch (error) {
    $("model-line").textContent = `No model is being served yet (${error.message}).`;
  }
}

$("user-form").addEventListener("submit", (event) => {
  event.preventDefault();
  recommend($("user-id").value.trim());
});
loadModel();
