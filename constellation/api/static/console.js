// The Constellation console: reads the service's JSON endpoints with the token the reader
// gives (kept in this tab's sessionStorage, sent only as a bearer header) and draws them.
// Every value is written with textContent (never as HTML): journal reasons are free text.
// Fields are read by name and anything unknown is ignored, so added fields change nothing.
"use strict";

(() => {
  const KEY = "constellation.token";
  const FAST_MS = 2000; // the migration's state: a CLI change shows within a poll or two
  const SLOW_MS = 10000; // figures, charts, alerts, model versions
  // charts cover the current phase, at least 5 minutes and at most the last hour
  const MIN_RANGE_S = 300;
  const MAX_RANGE_S = 3600;
  const PHASES = [
    [1, "parallel write"],
    [2, "read migration"],
    [3, "full cutover"],
    [4, "cleanup"],
  ];
  const TITLES = {
    promote: "Promote to the next traffic step",
    pause: "Pause phase 2 at its step",
    resume: "Resume phase 2",
    abort: "Abort: quick rollback",
  };

  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem(KEY) || "";
  let loops = [];
  let pending = null; // the action the confirmation dialog is for
  let overlapBound = null; // the gate's mean-overlap bound, drawn on the overlap chart
  let lastGood = 0;
  let phaseStarted = null; // epoch seconds: the charts' range starts here (within bounds)
  const charts = {};
  const dark = window.matchMedia("(prefers-color-scheme: dark)");

  // calls -------------------------------------------------------------------------------
  class Refused extends Error {
    constructor(status, body) {
      super(detail(body) || `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  function detail(body) {
    if (!body || typeof body !== "object") return "";
    return body.detail || body.message || body.error || "";
  }

  async function api(path, options = {}) {
    const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method: options.method || "GET",
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
    });
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (response.status === 401) {
      signOut(`The service refused this token (${detail(body) || "unauthorized"}).`);
      throw new Refused(401, body);
    }
    if (!response.ok) throw new Refused(response.status, body);
    return body;
  }

  // small helpers -----------------------------------------------------------------------
  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function badge(outcome) {
    return el("span", outcome, `badge ${String(outcome).split(" ")[0]}`);
  }

  function fill(tbody, rows, columns, empty) {
    tbody.replaceChildren();
    if (!rows.length) {
      const td = el("td", empty, "empty");
      td.colSpan = columns;
      tbody.append(el("tr"));
      tbody.lastChild.append(td);
      return;
    }
    for (const row of rows) {
      const tr = el("tr");
      for (const cell of row) {
        if (cell instanceof Node) {
          const td = el("td");
          td.append(cell);
          tr.append(td);
        } else if (cell && typeof cell === "object") {
          tr.append(el("td", cell.text, cell.cls));
        } else {
          tr.append(el("td", cell ?? "–"));
        }
      }
      tbody.append(tr);
    }
  }

  function facts(dl, pairs) {
    dl.replaceChildren();
    for (const [label, value, cls] of pairs) {
      const div = el("div");
      div.append(el("dt", label), el("dd", value ?? "–", cls));
      dl.append(div);
    }
  }

  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const pct = (v) => (isNum(v) ? `${Math.round(v * 1000) / 10}%` : "–");
  const num = (v, digits = 1) =>
    isNum(v) ? v.toLocaleString(undefined, { maximumFractionDigits: digits }) : "–";
  const ms = (v) => (isNum(v) ? `${num(v, v < 10 ? 1 : 0)} ms` : "–");

  function seconds(when) {
    // points in time are ISO 8601; an older service may still send epoch seconds
    if (isNum(when)) return when;
    if (typeof when === "string" && when) {
      const t = Date.parse(when);
      return Number.isNaN(t) ? null : t / 1000;
    }
    return null;
  }

  function local(when) {
    const t = seconds(when);
    return t === null ? "–" : new Date(t * 1000).toLocaleString();
  }

  function duration(s) {
    if (!isNum(s)) return "–";
    s = Math.round(s);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const r = s % 60;
    return h ? `${h}h ${m}m` : m ? `${m}m ${r}s` : `${r}s`;
  }

  // the migration -----------------------------------------------------------------------
  function renderMigration(m) {
    const state = m.state || {};
    $("plan").textContent = m.plan ? `${m.plan} (${m.environment || "?"})` : "";
    renderPhases(state);
    $("summary").textContent = m.summary || "";
    renderSteps(state, m.timeline || {});
    const t = m.timeline || {};
    phaseStarted = seconds(t.phase_started_at);
    facts($("state"), [
      ["read traffic (new system)", pct(state.read_traffic), "big"],
      ["write mode", state.write_mode],
      ["consumer", state.consumer_enabled ? "enabled" : "disabled (workers paused)"],
      ["phase 2 held", state.paused ? "paused" : "no"],
      ["phase started", local(t.phase_started_at)],
      ["step started", local(t.step_started_at)],
      [
        "dwell left",
        isNum(t.dwell_left_seconds)
          ? `${duration(t.dwell_left_seconds)} of ${duration(t.dwell_seconds)}`
          : "–",
      ],
      ["model versions (write / read)", versions(state)],
      ["updated", local(state.updated_at)],
    ]);
    $("next-step").textContent = m.next_step || "";
    renderGate(m.gate);
    renderChecks(m.checks || []);
    renderJournal(m.journal || []);
  }

  function versions(state) {
    const w = (state.write_versions || []).join(",");
    const r = (state.read_versions || []).join(",");
    return `${w || "–"} / ${r || "–"}`;
  }

  function renderPhases(state) {
    const list = $("phases");
    list.replaceChildren();
    for (const [n, name] of PHASES) {
      const li = el("li", `${n} ${name}`);
      const finished = ["passed", "complete"].includes(state.status);
      if (state.status === "rolled_back" && n === state.phase) li.className = "rolled";
      else if (n < state.phase || (n === state.phase && finished)) li.className = "done";
      if (n === state.phase) {
        li.classList.add("current");
        li.setAttribute("aria-current", "step");
      }
      list.append(li);
    }
  }

  function renderSteps(state, timeline) {
    const box = $("traffic-steps");
    box.replaceChildren();
    const steps = [0, ...(timeline.steps || []), 1];
    const traffic = isNum(state.read_traffic) ? state.read_traffic : 0;
    const onStep = steps.some((s) => Math.abs(s - traffic) < 1e-9);
    const shown = onStep ? steps : [...steps, traffic].sort((a, b) => a - b);
    shown.forEach((s, i) => {
      if (i) box.append(el("span", "→", "arrow"));
      const chip = el("span", pct(s), "step");
      if (s <= traffic + 1e-9) chip.classList.add("reached");
      if (Math.abs(s - traffic) < 1e-9) {
        chip.classList.add("current");
        chip.setAttribute("aria-current", "step");
      }
      box.append(chip);
    });
  }

  function renderGate(gate) {
    const tbody = $("gate-table").tBodies[0];
    if (!gate) {
      $("gate-summary").textContent = "No gate stands before the next step now.";
      fill(tbody, [], 4, "no checks");
      return;
    }
    const checks = gate.checks || [];
    const comparisons = checks.find((c) => String(c.name).startsWith("comparisons"));
    const overlap = checks.find((c) => c.name === "mean overlap");
    const bound = overlap ? parseFloat(String(overlap.bound).replace(/[^0-9.]/g, "")) : NaN;
    overlapBound = Number.isFinite(bound) ? bound : null;
    const summary = $("gate-summary");
    summary.replaceChildren(el("span", `${gate.name}: `), badge(gate.outcome || "–"));
    if (comparisons) {
      summary.append(el("span", ` — stands on ${comparisons.value} comparisons (needs ${comparisons.bound})`));
    }
    fill(
      tbody,
      checks.map((c) => [
        c.name,
        { text: c.value, cls: "num" },
        { text: c.bound, cls: "bound" },
        badge(c.dry_run ? `${c.outcome} (dry run)` : c.outcome),
      ]),
      4,
      "no checks",
    );
  }

  function renderChecks(checks) {
    fill(
      $("checks-table").tBodies[0],
      checks.map((c) => [
        c.name,
        { text: c.value, cls: "num" },
        { text: c.bound, cls: "bound" },
        badge(c.outcome),
        local(c.at),
      ]),
      5,
      "nothing measured yet",
    );
  }

  function changesOf(entry) {
    const before = entry.before || {};
    const after = entry.after || {};
    return Object.keys(after)
      .filter((k) => k !== "notes" && k !== "updated_at")
      .filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]))
      .map((k) => `${k}: ${JSON.stringify(before[k])} → ${JSON.stringify(after[k])}`)
      .join(", ");
  }

  function renderJournal(journal) {
    const rows = [...journal].reverse().map((e) => [
      local(e.at),
      e.who || "–",
      e.command,
      e.reason,
      changesOf(e) || "–",
    ]);
    fill($("journal-table").tBodies[0], rows, 5, "no entries yet");
  }

  // charts ------------------------------------------------------------------------------
  function palette() {
    const style = getComputedStyle(document.documentElement);
    const v = (name) => style.getPropertyValue(name).trim();
    return {
      muted: v("--muted"),
      grid: v("--grid"),
      old: v("--old"),
      old2: v("--old-2"),
      new: v("--new"),
      new2: v("--new-2"),
      bound: v("--bound"),
      many: v("--palette").split(/\s+/).filter(Boolean),
    };
  }

  function chart(id, series, data, options = {}) {
    const box = $(id);
    if (!box || typeof uPlot === "undefined") return;
    const hasData = data.slice(1).some((ys) => ys.some((y) => isNum(y)));
    const signature = `${dark.matches}|${series.map((s) => s.label).join("|")}`;
    let entry = charts[id];
    if (!hasData) {
      if (entry) entry.plot.destroy();
      delete charts[id];
      box.replaceChildren(el("p", options.empty || "no data yet", "nodata"));
      return;
    }
    if (entry && entry.signature !== signature) {
      entry.plot.destroy();
      entry = null;
    }
    const width = Math.max(box.clientWidth || 0, 240);
    if (!entry) {
      // the x range is the range asked for, not the data's: one point must not span years
      entry = { signature, x: options.x };
      const c = palette();
      box.replaceChildren();
      const axis = {
        stroke: c.muted,
        grid: { stroke: c.grid, width: 1 },
        ticks: { stroke: c.grid, width: 1 },
      };
      const plot = new uPlot(
        {
          width,
          height: 200,
          scales: {
            x: { time: options.time !== false, range: options.x ? () => entry.x : undefined },
            y: options.y || {},
          },
          axes: [
            { ...axis, space: 70, values: options.xValues },
            { ...axis, size: 56, values: options.yValues },
          ],
          series: [
            { label: options.xLabel || "time" },
            ...series.map((s) => ({
              label: s.label,
              stroke: s.color(c),
              fill: s.bars ? s.color(c) : undefined,
              width: s.bars ? 1 : 2,
              dash: s.dash,
              spanGaps: true,
              points: { show: !s.bars && !s.dash, size: 5 },
              paths: s.bars ? uPlot.paths.bars({ size: [0.7, 60] }) : undefined,
            })),
          ],
          cursor: { drag: { x: false, y: false } },
        },
        data,
        box,
      );
      entry.plot = plot;
      charts[id] = entry;
    } else {
      entry.x = options.x;
      entry.plot.setData(data);
    }
    if (Math.abs(entry.plot.width - width) > 1) entry.plot.setSize({ width, height: 200 });
  }

  function resizeCharts() {
    for (const [id, entry] of Object.entries(charts)) {
      const width = Math.max($(id).clientWidth || 0, 240);
      if (Math.abs(entry.plot.width - width) > 1) entry.plot.setSize({ width, height: 200 });
    }
  }

  // old beside new ----------------------------------------------------------------------
  function chartRange() {
    const now = Date.now() / 1000;
    const since = phaseStarted === null ? now - MAX_RANGE_S : phaseStarted;
    return Math.round(Math.min(MAX_RANGE_S, Math.max(MIN_RANGE_S, now - since)));
  }

  function renderComparisons(c, checks) {
    const total = c.total || {};
    const x = [seconds(c.since), seconds(c.until)];
    $("compare-range").textContent = `(last ${duration(x[1] - x[0])})`;
    const measured = (checks || [])
      .filter((k) => /^(recall|quality|ndcg|mrr)/i.test(String(k.name)))
      .map((k) => [k.name, `${k.value} (${k.outcome})`]);
    facts($("compare-totals"), [
      ["comparisons", num(total.comparisons, 0)],
      ["mean overlap", isNum(total.mean_overlap) ? num(total.mean_overlap, 3) : "–"],
      ["old p50 / p95", `${ms(c.old_p50_ms)} / ${ms(total.old_p95_ms)}`],
      ["new p50 / p95", `${ms(c.new_p50_ms)} / ${ms(total.new_p95_ms)}`],
      ["old error rate", pct(total.old_error_rate)],
      ["new error rate", pct(total.new_error_rate)],
      ...measured,
    ]);
    const buckets = c.buckets || [];
    const xs = buckets.map((b) => seconds(b.start));
    const pick = (key) => buckets.map((b) => (isNum(b[key]) ? b[key] : null));
    const overlapSeries = [{ label: "mean overlap", color: (p) => p.new }];
    const overlapData = [xs, pick("mean_overlap")];
    if (overlapBound !== null) {
      overlapSeries.push({ label: `gate bound ${overlapBound}`, color: (p) => p.bound, dash: [6, 4] });
      overlapData.push(xs.map(() => overlapBound));
    }
    chart("chart-overlap", overlapSeries, overlapData, {
      x,
      y: { range: [0, 1] },
      empty: "no comparisons in this range yet",
    });
    chart(
      "chart-latency",
      [
        { label: "old p50", color: (p) => p.old2 },
        { label: "old p95", color: (p) => p.old, dash: [5, 3] },
        { label: "new p50", color: (p) => p.new2 },
        { label: "new p95", color: (p) => p.new, dash: [5, 3] },
      ],
      [xs, pick("old_p50_ms"), pick("old_p95_ms"), pick("new_p50_ms"), pick("new_p95_ms")],
      { x, empty: "no comparisons in this range yet" },
    );
    chart(
      "chart-errors",
      [
        { label: "comparisons", color: (p) => p.muted },
        { label: "old errors", color: (p) => p.old },
        { label: "new errors", color: (p) => p.bound },
      ],
      [xs, pick("comparisons"), pick("old_errors"), pick("new_errors")],
      { x, empty: "no comparisons in this range yet" },
    );
    const bins = c.overlap_histogram || [];
    chart(
      "chart-distribution",
      [{ label: "comparisons", color: (p) => p.new, bars: true }],
      [bins.map((_, i) => (i + 0.5) / bins.length), bins],
      {
        time: false,
        xLabel: "overlap",
        xValues: (_, ticks) => ticks.map((t) => t.toFixed(1)),
        empty: "no comparisons in this range yet",
      },
    );
  }

  // the service -------------------------------------------------------------------------
  function renderStats(s) {
    const w = s.window || {};
    const q = s.queue || {};
    const dl = s.dead_letter || {};
    const p = w.processing_ms || {};
    const b = w.batch_ms || {};
    const rate = isNum(w.jobs) && isNum(w.seconds) && w.seconds > 0 ? w.jobs / w.seconds : null;
    $("service-source").textContent = s.source ? `(metrics from ${s.source})` : "";
    const index = Object.entries(s.index_size || {}).map(([v, n]) => [`index records v${v}`, num(n, 0)]);
    facts($("service-facts"), [
      ["queue waiting", num(q.visible, 0), "big"],
      ["in flight", num(q.in_flight, 0)],
      ["dead letters", num(dl.total, 0)],
      [`jobs/s (last ${duration(w.seconds)})`, num(rate, 2)],
      ["error rate", pct(w.error_rate)],
      ["processing p50 / p95 (enqueue → stored)", `${ms(p.p50)} / ${ms(p.p95)}`],
      ["batch p50 / p95", `${ms(b.p50)} / ${ms(b.p95)}`],
      ["mean embedding batch", num(w.mean_embedding_batch_size, 1)],
      ["mean upsert batch", num(w.mean_upsert_batch_size, 1)],
      ["query p95", ms(w.query_p95_ms)],
      ...index,
    ]);
    const reasons = Object.entries((s.jobs || {}).dead_lettered_by_reason || {});
    fill(
      $("dead-letters").tBodies[0],
      reasons.map(([reason, n]) => [reason, { text: num(n, 0), cls: "num" }]),
      2,
      "none",
    );
  }

  function renderDashboard(d) {
    const holder = $("service-charts");
    const x = [seconds(d.start), seconds(d.end)];
    for (const panel of d.panels || []) {
      const id = `chart-panel-${panel.key}`;
      if (!$(id)) {
        const figure = el("figure");
        figure.append(el("figcaption", panel.title));
        const box = el("div", null, "chart");
        box.id = id;
        figure.append(box);
        holder.append(figure);
      }
      const legends = Object.keys(panel.series || {});
      const stamps = legends.flatMap((k) => panel.series[k].map((pt) => pt[0]));
      const values = legends.flatMap((k) => panel.series[k].map((pt) => pt[1])).filter(isNum);
      const top = values.length ? Math.max(...values) : 0;
      // an alert line far above the data would flatten it: named instead of drawn
      const threshold = isNum(panel.threshold) && stamps.length ? panel.threshold : null;
      const drawn = threshold !== null && threshold <= Math.max(2 * top, 1);
      const caption = $(id).previousElementSibling;
      caption.textContent =
        threshold !== null && !drawn ? `${panel.title} · alert above ${num(threshold, 2)}` : panel.title;
      if (drawn) stamps.push(d.start, d.end);
      const times = [...new Set(stamps)].sort((a, b) => seconds(a) - seconds(b));
      const data = [times.map(seconds)];
      for (const legend of legends) {
        const byTime = new Map(panel.series[legend].map((pt) => [pt[0], pt[1]]));
        data.push(times.map((t) => (isNum(byTime.get(t)) ? byTime.get(t) : null)));
      }
      const series = legends.map((label, i) => ({ label, color: (p) => p.many[i % p.many.length] }));
      if (drawn) {
        series.push({ label: `alert > ${num(threshold, 2)}`, color: (p) => p.bound, dash: [6, 4] });
        data.push(times.map(() => threshold));
      }
      chart(id, series, data, { x, empty: "nothing recorded in this range" });
    }
  }

  function renderAlerts(a) {
    fill(
      $("alerts-table").tBodies[0],
      (a.alerts || []).map((r) => [
        r.name,
        badge(r.state),
        { text: isNum(r.value) ? num(r.value, 3) : "no data", cls: "num" },
        `${r.metric} ${r.op} ${r.threshold}${r.for_seconds ? ` for ${duration(r.for_seconds)}` : ""}`,
        local(r.active_since),
      ]),
      5,
      "no alert rules",
    );
  }

  function renderModels(report) {
    const state = report.state || {};
    const counts = Object.entries(report.records_by_version || {});
    const top = Math.max(1, ...counts.map(([, n]) => n || 0));
    $("models-summary").textContent = report.message || "";
    fill(
      $("models-table").tBodies[0],
      counts.map(([v, n]) => {
        const bar = el("progress");
        bar.max = top;
        bar.value = n || 0;
        bar.setAttribute("aria-label", `v${v}: ${n} of ${top}`);
        return [
          `v${v}`,
          { text: num(n, 0), cls: "num" },
          (state.write_versions || []).includes(Number(v)) ? "yes" : "no",
          (state.read_versions || []).includes(Number(v)) ? "yes" : "no",
          bar,
        ];
      }),
      5,
      "no versions",
    );
  }

  // refreshing --------------------------------------------------------------------------
  let latestChecks = [];

  async function refreshFast() {
    const m = await api("/migration");
    latestChecks = m.checks || [];
    renderMigration(m);
  }

  async function refreshSlow() {
    const range = chartRange();
    const [stats, dashboard, alerts, models, comparisons] = await Promise.all([
      api("/stats"),
      api(`/dashboard?range=${range}&points=60`),
      api("/alerts"),
      api("/models"),
      api(`/migration/comparisons?range=${range}&buckets=30`),
    ]);
    renderStats(stats);
    renderDashboard(dashboard);
    renderAlerts(alerts);
    renderModels(models);
    renderComparisons(comparisons, latestChecks);
  }

  function live(ok, text) {
    const badgeEl = $("live");
    badgeEl.textContent = text;
    badgeEl.classList.toggle("stale", !ok);
  }

  function every(work, interval) {
    let stopped = false;
    const loop = async () => {
      if (stopped) return;
      try {
        await work();
        lastGood = Date.now();
        live(true, `live · updated ${new Date(lastGood).toLocaleTimeString()}`);
      } catch (error) {
        if (stopped) return;
        const why = error instanceof Refused ? error.message : "the service cannot be reached";
        live(false, `not updating: ${why}`);
      }
      if (!stopped) setTimeout(loop, interval);
    };
    loop();
    return () => {
      stopped = true;
    };
  }

  function start() {
    $("signin").hidden = true;
    $("console").hidden = false;
    $("signout").hidden = false;
    // the figures' range follows the phase's start: read the migration first
    const first = refreshFast().catch(() => {});
    loops = [
      every(refreshFast, FAST_MS),
      every(async () => {
        await first;
        await refreshSlow();
      }, SLOW_MS),
    ];
  }

  function signOut(message) {
    loops.forEach((stop) => stop());
    loops = [];
    token = "";
    sessionStorage.removeItem(KEY);
    for (const entry of Object.values(charts)) entry.plot.destroy();
    for (const id of Object.keys(charts)) delete charts[id];
    $("console").hidden = true;
    $("signout").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = message || "";
    live(false, "signed out");
  }

  // actions -----------------------------------------------------------------------------
  function result(text, kind) {
    const box = $("action-result");
    box.textContent = text;
    box.className = `result ${kind || ""}`;
  }

  async function propose(action) {
    result(`${TITLES[action]}: asking the service what would change…`, "");
    let preview;
    try {
      preview = await api(`/migration/${action}`, {
        method: "POST",
        body: { reason: "", dryRun: true },
      });
    } catch (error) {
      result(`Refused: ${error.message}`, "refused");
      return;
    }
    pending = action;
    $("confirm-title").textContent = TITLES[action];
    $("confirm-command").textContent = `The same as: ${preview.command}`;
    const list = $("confirm-changes");
    list.replaceChildren(
      ...(preview.changes && preview.changes.length ? preview.changes : ["nothing (it is done already)"]).map(
        (c) => el("li", c),
      ),
    );
    $("confirm-message").textContent = preview.message || "";
    $("confirm-reason").value = "";
    $("confirm-go").textContent = `Confirm: ${action}`;
    result("", "");
    $("confirm").showModal();
    $("confirm-reason").focus();
  }

  async function confirmAction(event) {
    event.preventDefault();
    const reason = $("confirm-reason").value.trim();
    if (!reason || !pending) return;
    const action = pending;
    pending = null;
    $("confirm").close();
    result(`${TITLES[action]}…`, "");
    try {
      const done = await api(`/migration/${action}`, { method: "POST", body: { reason } });
      result(done.message || `${action}: done`, "done");
    } catch (error) {
      result(`Refused: ${error.message}`, "refused");
    }
    try {
      await refreshFast();
    } catch (_) {
      // the next poll says what is wrong
    }
  }

  // wiring ------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = $("token");
      const given = input.value.trim();
      input.value = "";
      if (!given) return;
      token = given;
      $("signin-error").textContent = "";
      try {
        await api("/migration");
      } catch (error) {
        if (error instanceof Refused && error.status === 401) return; // signOut said why
        if (!(error instanceof Refused)) {
          $("signin-error").textContent = "The service cannot be reached.";
          return;
        }
      }
      sessionStorage.setItem(KEY, token);
      start();
    });
    $("signout").addEventListener("click", () => signOut(""));
    for (const button of document.querySelectorAll("[data-action]")) {
      button.addEventListener("click", () => propose(button.dataset.action));
    }
    $("confirm-form").addEventListener("submit", confirmAction);
    $("confirm-cancel").addEventListener("click", () => {
      pending = null;
      $("confirm").close();
      result("Cancelled: nothing changed.", "");
    });
    let resizing = 0;
    window.addEventListener("resize", () => {
      clearTimeout(resizing);
      resizing = setTimeout(resizeCharts, 150);
    });
    dark.addEventListener("change", () => {
      refreshSlow().catch(() => {});
    });
    if (token) start();
  });
})();
