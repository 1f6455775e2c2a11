// shardlens page: plain JS and SVG, nothing fetched from outside this server.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const pct = (x) => `${(100 * x).toFixed(1)}%`;
const fixed = (x, n = 2) => (x === null || x === undefined ? "n/a" : Number(x).toFixed(n));

// Readable names of the convergence figures training records (training/convergence.py).
const FIGURE_NAMES = {
  loglik_rhat: "log-likelihood split R-hat",
  pair_rhat_median: "median pair-logit split R-hat",
  pair_rhat_max: "maximum pair-logit split R-hat",
  loglik_ess_bulk: "log-likelihood bulk ESS",
};
// ESS must reach its threshold; R-hat must stay at or under it.
const atLeast = (name) => /ess/i.test(name);

const PLOT_CAPTIONS = {
  "plots/trace.png": "Trace of the log-likelihood per chain over the draws: chains that overlap and wander around one level mixed well; drifting or separated chains did not converge.",
  "evaluation/reliability.png": "Reliability on held-out pairs: predicted watch probability (x) against the observed rate (y). Points on the diagonal mean the probabilities are calibrated; below it, over-confident.",
  "evaluation/entropy_vs_history.png": "Pick entropy against how many movies a user watched (log scale): the posterior should be less sure (higher entropy) for users with short histories.",
  "evaluation/rankers.png": "Held-out ranking metrics (e.g. Recall@K) of the posterior's picks next to simple baselines: higher is better.",
};

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function getJSON(url, init = {}) {
  const response = await fetch(url, { ...init, headers: { Accept: "application/json", ...(init.headers || {}) } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail ?? body);
    throw new HttpError(response.status, `${response.status}: ${detail}`);
  }
  return body;
}

// The 90% interval of an item: `interval {low, high}` (API 0.3) or `probability_low/high`.
const lowOf = (r) => (r.interval ? r.interval.low : r.probability_low);
const highOf = (r) => (r.interval ? r.interval.high : r.probability_high);

function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function htmlEl(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// A text label cut to `width` px with an ellipsis; the full text is its tooltip.
function fitText(svg, attrs, text, width) {
  const node = svgEl("text", attrs, text);
  node.appendChild(svgEl("title", {}, text));
  svg.appendChild(node);
  const label = node.firstChild;
  if (node.getComputedTextLength() <= width) return node;
  let lo = 0, hi = text.length;
  while (lo < hi) {  // the longest prefix that fits with the ellipsis
    const mid = Math.ceil((lo + hi) / 2);
    label.textContent = `${text.slice(0, mid)}…`;
    if (node.getComputedTextLength() <= width) lo = mid; else hi = mid - 1;
  }
  label.textContent = `${text.slice(0, lo)}…`;
  return node;
}

// The top-k chart: per movie, a pick-count bar and a forest-plot row (posterior-mean watch
// probability, dot, with its 90% interval, line), in one SVG. Wide: label | bars | forest;
// narrow: the label above its row.
function picksChart(svg, recs, numSamples) {
  svg.replaceChildren();
  const width = Math.max(280, svg.clientWidth || svg.parentNode.clientWidth || 600);
  const narrow = width < 620;
  const labelW = narrow ? 0 : Math.min(320, Math.round(width * 0.3));
  const gap = 16;
  const head = 34;
  const rowH = narrow ? 46 : 28;
  const plotsW = width - labelW - gap * 2 - 8;
  const barsW = Math.round(plotsW * 0.45);
  const barX = labelW + gap;
  const probX0 = barX + barsW + gap + 6;
  const probX1 = width - 14;
  const height = head + rowH * Math.max(1, recs.length) + 26;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("height", height);
  svg.dataset.probX0 = probX0;
  svg.dataset.probX1 = probX1;
  const maxCount = Math.max(1, ...recs.map((r) => r.count));
  const px = (p) => probX0 + p * (probX1 - probX0);
  svg.appendChild(svgEl("text", { x: barX, y: 14, class: "axis-title" }, "samples picking it"));
  svg.appendChild(svgEl("text", { x: probX0, y: 14, class: "axis-title" }, "P(watch), 90% interval"));
  const bottom = head + rowH * recs.length;
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    svg.appendChild(svgEl("line", { x1: px(t), x2: px(t), y1: head - 6, y2: bottom, class: "grid-line" }));
    svg.appendChild(svgEl("text", { x: px(t), y: bottom + 16, "text-anchor": "middle", class: "tick" }, String(t)));
  }
  svg.appendChild(svgEl("text", { x: barX, y: bottom + 16, class: "tick" }, "0"));
  svg.appendChild(svgEl("text", { x: barX + barsW, y: bottom + 16, "text-anchor": "end", class: "tick" }, String(maxCount)));
  recs.forEach((r, i) => {
    const top = head + i * rowH;
    const midY = narrow ? top + 32 : top + rowH / 2;
    const label = `${i + 1}. ${r.title}`;
    if (narrow) fitText(svg, { x: 0, y: top + 14, class: "label" }, label, width - 4);
    else fitText(svg, { x: labelW, y: midY + 4, "text-anchor": "end", class: "label" }, label, labelW - 4);
    const w = (barsW * r.count) / maxCount;
    const bar = svgEl("rect", {
      class: "bar pick", x: barX, y: midY - 8, width: w, height: 16,
      "data-label": r.title, "data-count": r.count,
    });
    bar.appendChild(svgEl("title", {}, `${r.title}: ${r.count} of ${numSamples} samples (${pct(r.share)})`));
    svg.appendChild(bar);
    const inside = w > 46;
    svg.appendChild(svgEl("text", {
      x: inside ? barX + w - 4 : barX + w + 4, y: midY + 4, "text-anchor": inside ? "end" : "start",
      class: inside ? "value inside" : "value",
    }, String(r.count)));
    const ci = svgEl("g", {
      class: "interval", "data-label": r.title, "data-mean": r.probability,
      "data-low": lowOf(r), "data-high": highOf(r),
    });
    ci.appendChild(svgEl("title", {}, `${r.title}: P(watch) ${fixed(r.probability, 3)}, 90% interval ${fixed(lowOf(r), 3)} to ${fixed(highOf(r), 3)}`));
    ci.appendChild(svgEl("line", { class: "ci", x1: px(lowOf(r)), x2: px(highOf(r)), y1: midY, y2: midY }));
    ci.appendChild(svgEl("circle", { class: "mean", cx: px(r.probability), cy: midY, r: 4.5 }));
    svg.appendChild(ci);
  });
  const desc = svg.getAttribute("aria-labelledby");
  if (desc) {
    $(desc).textContent = recs.length
      ? `Top ${recs.length} movies. ` + recs.map((r, i) => `${i + 1}. ${r.title}: picked by ${r.count} of ${numSamples} samples; watch probability ${fixed(r.probability, 2)} (90% interval ${fixed(lowOf(r), 2)} to ${fixed(highOf(r), 2)})`).join("; ")
      : "No movie was picked.";
  }
}

// Watched vs recommended genre shares (first listed genre), two bars per genre.
function genreChart(svg, watched, recommended) {
  svg.replaceChildren();
  const shares = new Map();
  for (const g of watched) shares.set(g.genre, { watched: g.share, recommended: 0 });
  for (const g of recommended) {
    const entry = shares.get(g.genre) || { watched: 0, recommended: 0 };
    entry.recommended = g.share;
    shares.set(g.genre, entry);
  }
  const rows = [...shares.entries()].sort((a, b) => Math.max(b[1].watched, b[1].recommended) - Math.max(a[1].watched, a[1].recommended) || a[0].localeCompare(b[0]));
  const width = Math.max(260, svg.clientWidth || svg.parentNode.clientWidth || 400);
  const labelW = Math.min(130, Math.round(width * 0.32));
  const rowH = 30;
  const height = rowH * Math.max(1, rows.length) + 8;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("height", height);
  const max = Math.max(0.01, ...rows.map(([, s]) => Math.max(s.watched, s.recommended)));
  const plotW = width - labelW - 60;
  rows.forEach(([genre, s], i) => {
    const top = 4 + i * rowH;
    fitText(svg, { x: labelW - 6, y: top + 17, "text-anchor": "end", class: "label" }, genre, labelW - 8);
    [["watched", s.watched, top + 2], ["recommended", s.recommended, top + 14]].forEach(([kind, share, y]) => {
      const w = (plotW * share) / max;
      const bar = svgEl("rect", { class: `bar ${kind}`, x: labelW, y, width: w, height: 11, "data-genre": genre, "data-share": share });
      bar.appendChild(svgEl("title", {}, `${genre}: ${pct(share)} of ${kind === "watched" ? "watched movies" : "picks"}`));
      svg.appendChild(bar);
      svg.appendChild(svgEl("text", { x: labelW + w + 4, y: y + 10, class: share ? "value small" : "value small zero" }, share ? pct(share) : "0%"));
    });
  });
  $(svg.getAttribute("aria-labelledby")).textContent = rows.map(([g, s]) => `${g}: ${pct(s.watched)} of watched movies, ${pct(s.recommended)} of picks`).join("; ");
}

// Entropy against its scale: 0 (every sample picks one movie) to log2(min(samples, candidates)).
function showUncertainty(box, u, scale) {
  box.replaceChildren();
  const entropy = u.entropy_bits;
  const max = scale.max_bits;
  const line = htmlEl("p", { class: "entropy-line" });
  line.textContent = entropy === null || entropy === undefined
    ? `Entropy of the picks: none (${u.note || "no sample had a candidate movie"}).`
    : `Entropy of the picks: ${fixed(entropy)} bits of at most ${fixed(max)} bits (log2 of min(${scale.num_samples} samples, ${scale.candidates} unwatched movies)).`;
  box.appendChild(line);
  if (entropy !== null && entropy !== undefined) {
    const svg = svgEl("svg", { id: "entropy-scale", class: "scale", role: "img", viewBox: "0 0 300 44", "aria-label": `entropy ${fixed(entropy)} bits on a scale from 0 to ${fixed(max)} bits` });
    const x = (v) => 10 + (280 * v) / Math.max(max, 1e-9);
    svg.appendChild(svgEl("rect", { x: 10, y: 12, width: 280, height: 10, class: "track" }));
    svg.appendChild(svgEl("rect", { x: 10, y: 12, width: Math.max(0, x(Math.min(entropy, max)) - 10), height: 10, class: "fill" }));
    svg.appendChild(svgEl("text", { x: 10, y: 38, class: "tick" }, "0: one movie"));
    svg.appendChild(svgEl("text", { x: 290, y: 38, "text-anchor": "end", class: "tick" }, `${fixed(max)}: all different`));
    box.appendChild(svg);
  }
  const rank = htmlEl("p", { id: "entropy-percentile" });
  rank.textContent = `Percentile among users: ${fixed(scale.percentile, 0)} (the picks of ${fixed(scale.percentile, 0)}% of users are at most this spread).`;
  box.appendChild(rank);
  box.appendChild(htmlEl("p", { class: "muted" }, "Low entropy: the posterior samples agree on what to recommend; high: they disagree, so treat the ranking as a guess."));
  const facts = htmlEl("dl", { class: "stats" });
  for (const [name, value] of [["distinct movies picked", String(u.distinct_movies)], ["most common pick's share", pct(u.top_share)]]) {
    facts.append(htmlEl("dt", {}, name), htmlEl("dd", {}, value));
  }
  box.appendChild(facts);
}

function picksTable(body, recs) {
  body.replaceChildren();
  for (const m of recs) {
    const row = document.createElement("tr");
    const interval = `${fixed(m.probability, 3)} [${fixed(lowOf(m), 3)}, ${fixed(highOf(m), 3)}]`;
    for (const cell of [m.title, m.genres.join(", "), m.count, pct(m.share), interval]) row.appendChild(htmlEl("td", {}, String(cell)));
    body.appendChild(row);
  }
}

// The convergence banner: the served version's warning, with its figures and thresholds.
const banner = { report: null };
function showConvergence(note) {
  const box = $("convergence-warning");
  const warning = note && note.warning;
  const text = $("convergence-text");
  text.replaceChildren();
  if (warning) text.append(htmlEl("strong", {}, "Warning:"), ` ${warning}`);
  const list = $("convergence-figures");
  list.replaceChildren();
  const report = banner.report;
  if (warning && report && report.status === note.status) {
    for (const [name, value] of Object.entries(report.figures || {})) {
      const threshold = report.thresholds[name];
      const rule = threshold === undefined ? "" : ` (threshold ${atLeast(name) ? "≥" : "≤"} ${threshold})`;
      list.appendChild(htmlEl("li", {}, `${FIGURE_NAMES[name] || name}: ${fixed(value, atLeast(name) ? 0 : 3)}${rule}`));
    }
  }
  box.hidden = !warning;
  box.dataset.status = (note && note.status) || "";
}

const state = { last: null, visitor: null };

function setURL(userId) {
  const url = new URL(window.location.href);
  if (userId) url.searchParams.set("user", userId); else url.searchParams.delete("user");
  window.history.replaceState(null, "", url);
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
let userRequest = 0;  // answers to an older request than the newest are dropped

// The order the API answered in, said plainly: a server without `rank` ranks by pick count.
function rankNote(rank, r) {
  const recs = r.recommendations;
  if (r.rank) return r.rank === "probability" ? "ranked by watch probability" : "ranked by pick count";
  if (rank !== "probability") return "ranked by pick count";
  const sorted = recs.every((r, i) => i === 0 || recs[i - 1].probability >= r.probability);
  return sorted ? "ranked by watch probability" : "ranked by pick count (this server does not rank by probability yet)";
}

async function showUser(userId) {
  const k = $("k").value || 10;
  const rank = $("rank").value;
  const request = ++userRequest;
  $("error").hidden = true;
  $("user-id").value = userId;
  try {
    const id = encodeURIComponent(userId);
    const [r, profile] = await Promise.all([
      getJSON(`/recommend/${id}?k=${encodeURIComponent(k)}&rank=${encodeURIComponent(rank)}`),
      getJSON(`/explore/users/${id}?limit=20`),
    ]);
    if (request !== userRequest) return;
    setURL(userId);
    state.last = { r, profile };
    showConvergence(r.convergence);
    $("result").hidden = false;
    $("result-title").textContent = `User ${r.user_id}`;
    $("result-line").textContent = `Watched ${plural(r.watched_count, "movie")}; ${r.num_samples} posterior samples; model ${r.model_version}; ${rankNote(rank, r)}.`;
    renderUser();
  } catch (error) {
    if (request !== userRequest) return;
    $("result").hidden = true;
    $("error").textContent = error.message;
    $("error").hidden = false;
  }
}

function renderUser() {
  if (!state.last) return;
  const { r, profile } = state.last;
  picksChart($("picks-chart"), r.recommendations, r.num_samples);
  picksTable($("picks-table").querySelector("tbody"), r.recommendations);
  genreChart($("genres-chart"), profile.genre_shares, r.genres);
  showUncertainty($("uncertainty"), r.uncertainty, profile.entropy);
  $("history-line").textContent = profile.history.length < profile.watched_count
    ? `${plural(profile.watched_count, "movie")} watched; the ${profile.history.length} most watched by everyone:`
    : `${plural(profile.watched_count, "movie")} watched, the most watched by everyone first:`;
  const list = $("history");
  list.replaceChildren();
  for (const m of profile.history) {
    const li = htmlEl("li", {}, m.title);
    li.appendChild(htmlEl("span", { class: "genres" }, m.genres.join(", ")));
    list.appendChild(li);
  }
}

// User search by id prefix: a list of buttons under the input.
let searchTimer = null;
async function searchUsers(prefix) {
  const list = $("user-matches");
  if (!prefix) { list.replaceChildren(); return; }
  try {
    const found = await getJSON(`/explore/users?prefix=${encodeURIComponent(prefix)}&limit=8`);
    if ($("user-id").value.trim() !== prefix) return;  // a newer keystroke won
    list.replaceChildren();
    $("user-matches-note").textContent = `${found.total} user${found.total === 1 ? "" : "s"} with an id starting "${prefix}"${found.total > found.users.length ? `; the first ${found.users.length}:` : ":"}`;
    for (const u of found.users) {
      const b = htmlEl("button", { type: "button", "data-user-id": u.user_id }, `user ${u.user_id} (${u.watched_count} watched)`);
      b.addEventListener("click", () => { list.replaceChildren(); showUser(u.user_id); });
      const li = htmlEl("li");
      li.appendChild(b);
      list.appendChild(li);
    }
  } catch (error) {
    $("user-matches-note").textContent = error.message;
  }
}

async function pickUser(url, pick) {
  try {
    showUser(pick(await getJSON(url)));
  } catch (error) {
    $("error").textContent = error.message;
    $("error").hidden = false;
  }
}

// New visitor: title search, a chosen list, fold-in recommendations through POST /recommend.
const chosen = new Map();
function renderChosen() {
  const list = $("chosen");
  list.replaceChildren();
  for (const [id, title] of chosen) {
    const li = htmlEl("li", {}, title);
    const remove = htmlEl("button", { type: "button", "aria-label": `remove ${title}` }, "Remove");
    remove.addEventListener("click", () => { chosen.delete(id); renderChosen(); });
    li.appendChild(remove);
    list.appendChild(li);
  }
  if (!chosen.size) list.appendChild(htmlEl("li", { class: "muted" }, "none yet: search and add a few"));
  $("visitor-go").disabled = chosen.size === 0;
}

async function searchMovies(query) {
  const list = $("movie-matches");
  list.replaceChildren();
  try {
    const found = await getJSON(`/explore/movies?query=${encodeURIComponent(query)}&limit=8`);
    if (!found.movies.length) list.appendChild(htmlEl("li", { class: "muted" }, `no title contains "${query}"`));
    for (const m of found.movies) {
      const b = htmlEl("button", { type: "button", "data-movie-id": m.movie_id }, `Add ${m.title}`);
      b.addEventListener("click", () => { chosen.set(m.movie_id, m.title); renderChosen(); });
      const li = htmlEl("li");
      li.appendChild(b);
      li.appendChild(htmlEl("span", { class: "genres" }, m.genres.join(", ")));
      list.appendChild(li);
    }
  } catch (error) {
    list.appendChild(htmlEl("li", { class: "error" }, error.message));
  }
}

async function visitorRecommend() {
  const box = $("visitor-error");
  box.hidden = true;
  try {
    const r = await getJSON("/recommend", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ watched: [...chosen.keys()], k: Number($("k").value || 10), rank: $("rank").value }),
    });
    state.visitor = r;
    $("visitor-result").hidden = false;
    const method = r.fold_in && r.fold_in.method ? ` by ${r.fold_in.method}` : "";
    $("visitor-line").textContent = `Folded in${method} from ${chosen.size} movies; ${r.num_samples} posterior samples; model ${r.model_version}.`;
    picksChart($("visitor-chart"), r.recommendations, r.num_samples);
  } catch (error) {
    $("visitor-result").hidden = true;
    box.textContent = error.status === 404 || error.status === 405
      ? `Recommendations for new visitors are not available on this server (POST /recommend answered ${error.status}); pick an existing user above.`
      : error.message;
    box.hidden = false;
  }
}

function showModel(m) {
  $("model-line").textContent = `Serving model ${m.model_version}: ${m.num_users} users, ${m.num_movies} movies, ${m.num_samples} posterior samples.`;
  banner.report = m.convergence;
  showConvergence(m.convergence);
  const source = (m.manifest && m.manifest.data && m.manifest.data.source) || "unknown";
  $("data-source").textContent = `Data source: ${source}`;
  const synthetic = String(source).startsWith("synthetic");
  $("data-note").hidden = !synthetic;
  $("data-note").textContent = synthetic
    ? "Synthetic data: the default the service trains on when no real data is given. The users and movies are generated, so the recommendations only show how the method behaves."
    : "";
  const samples = $("samples");
  samples.replaceChildren();
  for (const [name, value] of [["draws × chains", `${m.num_draws} × ${m.num_chains} = ${m.num_samples} samples`], ["users", m.num_users], ["movies", m.num_movies], ["latent dimensions", m.latent_dim], ["loaded", `${String(m.loaded_at).slice(0, 16).replace("T", " ")} UTC`]]) {
    samples.append(htmlEl("dt", {}, name), htmlEl("dd", {}, String(value)));
  }
  const body = $("diagnostics-table").querySelector("tbody");
  body.replaceChildren();
  const c = m.convergence || { figures: {}, thresholds: {} };
  for (const [name, value] of Object.entries(c.figures || {})) {
    const threshold = c.thresholds[name];
    const passes = value === null || threshold === undefined ? "n/a" : (atLeast(name) ? value >= threshold : value <= threshold) ? "yes" : "no";
    const row = document.createElement("tr");
    row.dataset.passes = passes;
    for (const cell of [FIGURE_NAMES[name] || name, fixed(value, atLeast(name) ? 0 : 3), threshold === undefined ? "none" : `${atLeast(name) ? "≥" : "≤"} ${threshold}`, passes]) row.appendChild(htmlEl("td", {}, cell));
    body.appendChild(row);
  }
  if (!Object.keys(c.figures || {}).length) {
    const row = document.createElement("tr");
    row.appendChild(htmlEl("td", { colspan: 4 }, "convergence not recorded for this version"));
    body.appendChild(row);
  }
  const rows = Object.entries(m.diagnostics || {}).filter(([, v]) => v === null || typeof v !== "object").map(([key, v]) => [key, typeof v === "number" ? Number(v.toPrecision(4)).toString() : String(v)]);
  if (m.convergence) rows.unshift(["convergence", m.convergence.status.replace("_", " ")]);
  const dl = $("diagnostics");
  dl.replaceChildren();
  for (const [name, value] of rows) dl.append(htmlEl("dt", {}, name), htmlEl("dd", {}, value));
  const plots = $("plots");
  plots.replaceChildren();
  for (const name of m.plots || []) {
    const figure = htmlEl("figure");
    const caption = PLOT_CAPTIONS[name] || `Stored with the version: ${name}.`;
    const img = htmlEl("img", { src: `/model/files/${name}`, alt: `${name}: ${caption}`, loading: "lazy" });
    img.dataset.name = name;
    figure.append(img, htmlEl("figcaption", {}, caption));
    plots.appendChild(figure);
  }
  if (!(m.plots || []).length) plots.appendChild(htmlEl("p", { class: "muted" }, "No plots were stored with this version."));
}

async function start() {
  $("user-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(searchTimer);  // a pending prefix search would list matches again
    $("user-matches").replaceChildren();
    showUser($("user-id").value.trim());
  });
  $("user-id").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => searchUsers($("user-id").value.trim()), 150);
  });
  $("heaviest").addEventListener("click", () => pickUser("/users?sort=most_watched&limit=1", (b) => b.users[0].user_id));
  $("lightest").addEventListener("click", () => pickUser("/users?sort=least_watched&limit=1", (b) => b.users[0].user_id));
  $("random").addEventListener("click", () => pickUser("/explore/random-user", (b) => b.user_id));
  $("movie-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const query = $("movie-query").value.trim();
    if (query) searchMovies(query);
  });
  $("visitor-go").addEventListener("click", visitorRecommend);
  for (const id of ["k", "rank"]) {
    $(id).addEventListener("change", () => { if (state.last) showUser(state.last.r.user_id); });
  }
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      renderUser();
      if (state.visitor) picksChart($("visitor-chart"), state.visitor.recommendations, state.visitor.num_samples);
    }, 100);
  });
  renderChosen();
  try {
    const m = await getJSON("/model");
    if (!m.model_version) throw new Error(m.last_load_error ? m.last_load_error.message : `the store ${m.store_dir} has no servable version`);
    showModel(m);
  } catch (error) {
    $("model-line").textContent = `No model is being served yet (${error.message}).`;
    document.body.dataset.ready = "true";
    return;
  }
  const user = new URL(window.location.href).searchParams.get("user");
  if (user) await showUser(user);
  document.body.dataset.ready = "true";
}

start();
