// voxgate dashboard: hash-routed pages over the REST API (cookie-authenticated fetches).
// Pages: #/overview, #/live, #/calls?filters, #/call/<id>, #/campaigns, #/campaign/<id>.
// All times are shown in UTC.
"use strict";

(function () {
  const C = window.VoxCharts;
  const view = document.getElementById("view");
  let timer = null;

  const STAGES = [
    { key: "network", name: "Network / jitter buffer", color: "#8c96a3" },
    { key: "endpointing", name: "Endpointing", color: "#4e79a7" },
    { key: "stt", name: "STT", color: "#59a14f" },
    { key: "llm_ttft", name: "LLM first token", color: "#e15759" },
    { key: "llm_first_clause", name: "LLM first clause", color: "#ff9d9a" },
    { key: "tts_first_chunk", name: "TTS first audio", color: "#b07aa1" },
    { key: "overhead", name: "Pipeline overhead", color: "#edc948" },
    { key: "playback", name: "Playback", color: "#76b7b2" },
  ];
  const NORMAL = new Set(["completed", "caller_hangup", "agent_hangup", "hangup", "remote_hangup", "transferred"]);

  // --- small DOM helpers (textContent only) ---------------------------------------------
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "onclick" || k === "onsubmit" || k === "onchange") node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return node;
  }
  const card = (...children) => h("div", { class: "card" }, ...children);
  const tile = (label, value, sub, id) =>
    h("div", { class: "tile", "data-tile": id }, h("div", { class: "label" }, label), h("div", { class: "value" }, value), sub ? h("div", { class: "sub" }, sub) : null);

  function utc(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return d.toISOString().replace("T", " ").slice(0, 19);
  }
  const ms = (v) => (v === null || v === undefined ? "—" : `${Math.round(v)} ms`);
  const secs = (v) => (v === null || v === undefined ? "—" : v < 60 ? `${v.toFixed(1)} s` : `${Math.floor(v / 60)}m ${String(Math.floor(v % 60)).padStart(2, "0")}s`);
  const clock = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
  const money = (v) => (v === null || v === undefined ? "—" : `$${v.toFixed(v < 1 ? 4 : 2)}`);
  const reasonBadge = (r, live) =>
    live ? h("span", { class: "badge live" }, "live") :
    !r ? h("span", { class: "badge live" }, "active") :
    h("span", { class: "badge " + (NORMAL.has(r) ? "good" : "bad") }, r);

  async function api(path) {
    const res = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (res.status === 401) { window.location.href = "/dashboard"; throw new Error("signed out"); }
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return res.json();
  }

  function showError(err) {
    view.textContent = "";
    view.appendChild(card(h("p", { class: "error" }, String(err.message || err))));
  }

  // --- overview -------------------------------------------------------------------------
  async function overview(params) {
    const range = params.get("range") || "24h";
    const hours = { "1h": 1, "24h": 24, "7d": 168, "30d": 720 }[range] || 24;
    const until = new Date();
    const since = new Date(until.getTime() - hours * 3600e3);
    const data = await api(`/v1/stats/overview?since=${since.toISOString()}&until=${until.toISOString()}`);
    const pct = data.turn_completion_rate === null ? "—" : `${(data.turn_completion_rate * 100).toFixed(1)}%`;
    const picker = h("form", { class: "filters", onchange: (e) => { location.hash = `#/overview?range=${e.target.value}`; } },
      h("label", {}, "Window", h("select", { name: "range" },
        ["1h", "24h", "7d", "30d"].map((r) => h("option", { value: r, selected: r === range }, `last ${r}`)))));
    const latency = h("div", { id: "latency-chart" });
    const reasons = h("div", { id: "reasons-chart" });
    view.textContent = "";
    view.append(
      h("h1", {}, "Overview"), card(picker),
      h("div", { class: "tiles" },
        tile("Calls", String(data.calls), `${data.active_calls} live now`, "calls"),
        tile("Failed calls", String(data.failed_calls), data.calls ? `${((100 * data.failed_calls) / data.calls).toFixed(1)}% of calls` : "", "failed"),
        tile("p50 voice-to-voice", ms(data.p50_ms), `p95 ${ms(data.p95_ms)}`, "p50"),
        tile("Turn completion", pct, `${data.turns_completed} of ${data.turns} turns`, "completion"),
        tile("Cost per minute", money(data.cost_per_minute), `${money(data.cost_usd)} over ${data.call_minutes.toFixed(1)} min`, "cpm")),
      h("div", { class: "grid2" }, card(latency), card(reasons)));
    const t0 = new Date(data.since).getTime() / 1000, t1 = new Date(data.until).getTime() / 1000;
    const span = t1 - t0;
    const fmtT = (t) => { const iso = new Date(t * 1000).toISOString(); return span > 2 * 86400 ? iso.slice(5, 10) : iso.slice(11, 16); };
    const mid = (b) => new Date(b.start).getTime() / 1000 + data.bucket_s / 2;
    C.lineChart(latency, {
      title: `Voice-to-voice latency (per ${data.bucket_s >= 3600 ? data.bucket_s / 3600 + " h" : data.bucket_s / 60 + " min"} bucket)`,
      series: [
        { name: "p50", color: "#2f6fb2", points: data.latency.map((b) => [mid(b), b.p50_ms]) },
        { name: "p95", color: "#e15759", dash: "6 3", points: data.latency.map((b) => [mid(b), b.p95_ms]) },
      ],
      xMin: t0, xMax: t1, xFormat: fmtT, yLabel: "ms", xLabel: span > 2 * 86400 ? "date (UTC)" : "time (UTC)",
      xTicks: (a, b) => {
        // Whole hours or days (UTC), at most ~8 labels.
        const hoursPer = [1, 2, 3, 4, 6, 12, 24, 48, 72, 168].find((n) => (b - a) / (n * 3600) <= 8) || 168;
        const step = hoursPer * 3600, out = [];
        for (let v = Math.ceil(a / step) * step; v <= b; v += step) out.push(v);
        return out;
      },
    });
    C.barChart(reasons, {
      title: "How calls ended",
      items: data.end_reasons.map((r) => ({ label: r.reason === "active" ? "still active" : r.reason, value: r.count, color: r.failure ? "#c0392b" : r.reason === "active" ? "#b7791f" : "#2e8b57" })),
      xLabel: "calls (red: failure)",
    });
  }

  // --- live calls -----------------------------------------------------------------------
  async function live() {
    const render = async () => {
      const data = await api("/v1/calls?active=true&limit=200");
      const rows = data.live.map((c) => h("tr", { class: "clickable", onclick: () => { location.hash = `#/call/${encodeURIComponent(c.id)}`; } },
        h("td", {}, c.id), h("td", {}, c.edge), h("td", {}, c.caller), h("td", {}, c.callee), h("td", {}, c.route),
        h("td", { class: "num" }, String(c.dropped_frames)), h("td", {}, c.recording ? "yes" : "no")));
      view.textContent = "";
      view.append(h("h1", {}, "Live calls"), card(
        h("p", { class: "muted" }, `${data.live.length} call(s) on this node · refreshes every 2 s`),
        rows.length ? h("table", { id: "live-table" }, h("thead", {}, h("tr", {}, ["Call", "Edge", "From", "To", "Route"].map((t) => h("th", {}, t)), h("th", { class: "num" }, "Dropped frames"), h("th", {}, "Recording"))), h("tbody", {}, rows))
          : h("p", { class: "empty" }, "No live calls.")));
    };
    await render();
    timer = setInterval(() => render().catch(showError), 2000);
  }

  // --- call list ------------------------------------------------------------------------
  async function calls(params) {
    const q = new URLSearchParams();
    for (const k of ["edge", "route", "end_reason", "min_latency_ms"]) if (params.get(k)) q.set(k, params.get(k));
    if (params.get("from")) q.set("since", params.get("from") + "T00:00:00Z");
    if (params.get("to")) q.set("until", new Date(Date.parse(params.get("to") + "T00:00:00Z") + 86400e3).toISOString());
    q.set("limit", "200");
    const data = await api("/v1/calls?" + q.toString());
    const field = (label, name, attrs) => h("label", {}, label, h("input", Object.assign({ name: name, value: params.get(name) || "" }, attrs || {})));
    const form = h("form", { class: "filters", id: "call-filters", onsubmit: (e) => {
      e.preventDefault();
      const f = new URLSearchParams();
      for (const [k, v] of new FormData(e.target).entries()) if (v) f.set(k, String(v));
      location.hash = "#/calls?" + f.toString();
    } },
      h("label", {}, "Edge", h("select", { name: "edge" }, ["", "sip", "webrtc", "websocket", "local"].map((v) => h("option", { value: v, selected: params.get("edge") === v }, v || "any")))),
      field("Route", "route", { placeholder: "any", size: 14 }),
      field("End reason", "end_reason", { placeholder: "any", size: 14, list: "reasons" }),
      h("datalist", { id: "reasons" }, ["completed", "caller_hangup", "agent_hangup", "app_error", "no_route", "media_timeout", "interrupted", "shutdown"].map((r) => h("option", { value: r }))),
      field("From (UTC)", "from", { type: "date" }),
      field("To (UTC)", "to", { type: "date" }),
      field("Latency over (ms)", "min_latency_ms", { type: "number", min: 0, step: 50 }),
      h("button", { type: "submit" }, "Filter"),
      h("button", { type: "button", class: "secondary", onclick: () => { location.hash = "#/calls"; } }, "Reset"));
    const head = ["Started (UTC)", "Edge", "From", "To", "Route"].map((t) => h("th", {}, t)).concat(
      ["Duration", "Turns", "p50 latency", "Max latency"].map((t) => h("th", { class: "num" }, t)), [h("th", {}, "End"), h("th", { class: "num" }, "Cost")]);
    const rows = data.calls.map((c) => h("tr", { class: "clickable", "data-call": c.id, onclick: () => { location.hash = `#/call/${encodeURIComponent(c.id)}`; } },
      h("td", {}, utc(c.started_at)), h("td", {}, c.edge), h("td", {}, c.caller), h("td", {}, c.callee), h("td", {}, c.route),
      h("td", { class: "num" }, secs(c.duration_s)), h("td", { class: "num" }, String(c.turn_count)),
      h("td", { class: "num" }, ms(c.latency_p50_ms)), h("td", { class: "num" }, ms(c.latency_max_ms)),
      h("td", {}, reasonBadge(c.end_reason, c.live)), h("td", { class: "num" }, money(c.cost_usd))));
    view.textContent = "";
    view.append(h("h1", {}, "Calls"), card(form), card(
      h("p", { class: "muted", id: "call-count" }, `${data.calls.length} call(s)`),
      rows.length ? h("table", { id: "calls-table" }, h("thead", {}, h("tr", {}, head)), h("tbody", {}, rows)) : h("p", { class: "empty" }, "No calls match.")));
  }

  // --- one call -------------------------------------------------------------------------
  function turnRows(call) {
    const net = call.network;
    const started = call.started_at ? new Date(call.started_at).getTime() / 1000 : null;
    const jbAt = (turn) => {
      if (!net.length) return null;
      const at = started === null ? null : new Date(turn.created_at).getTime() / 1000 - started;
      let pick = null;
      for (const n of net) if (at === null || n.offset_s <= at + 1e-6) pick = n;
      return (pick || net[0]).jb_delay_ms;
    };
    return call.turns.map((t) => {
      const s = (t.timeline && t.timeline.stages_ms) || {};
      const tl = t.timeline || {};
      const playback = tl.first_audio_played != null && tl.first_audio_out != null ? (tl.first_audio_played - tl.first_audio_out) * 1000 : null;
      const values = Object.assign({}, s, { network: jbAt(t), playback: playback });
      const sum = STAGES.reduce((a, st) => a + (values[st.key] || 0), 0);
      const notes = [];
      if (t.voice_to_voice_ms != null) notes.push(`(pipeline ${Math.round(t.voice_to_voice_ms)} ms)`);
      if (t.interrupted) notes.push("· interrupted");
      return { label: `Turn ${t.index + 1}`, title: tl.user_text || "", values: values, total: sum, note: notes.join(" ") };
    });
  }

  function confidence(v) {
    if (v === null || v === undefined) return h("span", { class: "muted" }, "—");
    const cls = v < 0.6 ? "low" : v < 0.8 ? "mid" : "";
    const fill = h("i", {});
    fill.style.width = `${Math.round(v * 100)}%`; // CSSOM, allowed by the page's CSP
    const bar = h("span", { class: "bar" }, fill);
    return h("span", { class: "conf " + cls, title: `ASR confidence ${v.toFixed(2)}` }, bar, `${Math.round(v * 100)}%`);
  }

  async function callPage(id) {
    const c = await api(`/v1/calls/${encodeURIComponent(id)}`);
    const meta = (label, value) => h("div", {}, h("span", {}, label), value);
    const waterfall = h("div", { id: "waterfall" });
    const netMs = h("div", { id: "network-chart" });
    const netLoss = h("div", { id: "loss-chart" });
    const showPartials = h("input", { type: "checkbox", id: "partials" });
    const transcriptBody = h("tbody", {});
    const renderTranscript = () => {
      transcriptBody.textContent = "";
      for (const e of c.transcript) {
        if (!e.is_final && !showPartials.checked) continue;
        transcriptBody.appendChild(h("tr", { class: e.is_final ? "" : "partial" },
          h("td", { class: "num" }, clock(e.offset_s)), h("td", {}, h("span", { class: "badge " + e.speaker }, e.speaker)),
          h("td", {}, e.text + (e.is_final ? "" : " (partial)")), h("td", {}, e.speaker === "caller" ? confidence(e.confidence) : h("span", { class: "muted" }, "—"))));
      }
    };
    showPartials.addEventListener("change", renderTranscript);
    const players = ["caller", "agent"].map((track) => h("div", {}, h("h2", {}, track === "caller" ? "Caller track" : "Agent track"),
      c.recordings[track] ? h("audio", { controls: true, preload: "metadata", src: c.recordings[track], "data-track": track }) : h("p", { class: "empty" }, "Not recorded.")));
    view.textContent = "";
    view.append(
      h("p", {}, h("a", { href: "#/calls" }, "← all calls")),
      h("h1", {}, `Call ${c.id} `, reasonBadge(c.end_reason, c.live)),
      card(h("div", { class: "meta" },
        meta("Edge", c.edge), meta("From", c.caller || "—"), meta("To", c.callee || "—"), meta("Route", c.route || "—"),
        meta("Started (UTC)", utc(c.started_at)), meta("Duration", secs(c.duration_s)), meta("Codec", c.codec || "—"),
        meta("Turns", String(c.turn_count)), meta("p50 / max latency", `${ms(c.latency_p50_ms)} / ${ms(c.latency_max_ms)}`),
        meta("Cost", money(c.cost_usd)))),
      card(waterfall, h("p", { class: "muted caption" },
        "Stages run left to right from the moment the caller stopped speaking. The bar's total is what the caller waited; " +
        "\"pipeline\" is the agent's own voice-to-voice measure (without network and playback). Network = jitter-buffer delay " +
        "in that part of the call; playback = first agent audio sent → the edge reported it played. Hover a bar for details.")),
      h("div", { class: "grid2" }, card(netMs), card(netLoss)),
      card(h("h2", {}, "Recording"), h("div", { class: "players" }, players)),
      card(h("h2", {}, "Transcript"), h("label", { class: "muted" }, showPartials, " show partial results"),
        c.transcript.length ? h("table", { id: "transcript" }, h("thead", {}, h("tr", {}, h("th", { class: "num" }, "At"), h("th", {}, "Speaker"), h("th", {}, "Text"), h("th", {}, "Confidence"))), transcriptBody) : h("p", { class: "empty" }, "No transcript.")),
      card(h("h2", {}, "Events"), c.events.length ? h("table", { id: "events" }, h("thead", {}, h("tr", {}, h("th", { class: "num" }, "At"), h("th", {}, "Kind"), h("th", {}, "Details"))),
        h("tbody", {}, c.events.map((e) => h("tr", {}, h("td", { class: "num" }, clock(e.offset_s)), h("td", {}, e.kind), h("td", {}, h("code", {}, JSON.stringify(e.data))))))) : h("p", { class: "empty" }, "No events.")));
    renderTranscript();
    C.waterfall(waterfall, {
      title: "Where each turn's latency went (caller end of speech → agent audio heard)",
      stages: STAGES, rows: turnRows(c), xLabel: "milliseconds after the caller stopped speaking",
    });
    const pts = (key) => c.network.map((n) => [n.offset_s, n[key]]);
    C.lineChart(netMs, {
      title: "Jitter and jitter-buffer delay", yLabel: "ms", xLabel: "call time (m:ss)", xFormat: clock, xMin: 0, height: 260,
      series: [{ name: "Jitter", color: "#4e79a7", points: pts("jitter_ms") }, { name: "Jitter-buffer delay", color: "#f28e2b", points: pts("jb_delay_ms") }],
    });
    C.lineChart(netLoss, {
      title: "Packet loss", yLabel: "% of packets", xLabel: "call time (m:ss)", xFormat: clock, xMin: 0, height: 260,
      series: [{ name: "Loss %", color: "#c0392b", points: pts("loss_pct") }],
    });
  }


  // --- campaigns ------------------------------------------------------------------------
  const OUTCOMES = [
    { key: "completed", name: "Completed", color: "#2e8b57" },
    { key: "answered", name: "Answered", color: "#59a14f" },
    { key: "voicemail", name: "Voicemail", color: "#4e79a7" },
    { key: "busy", name: "Busy", color: "#f28e2b" },
    { key: "no_answer", name: "No answer", color: "#b7791f" },
    { key: "failed", name: "Failed", color: "#c0392b" },
    { key: "dnc", name: "Do not call", color: "#8c96a3" },
  ];
  const GOOD_OUTCOMES = new Set(["completed", "answered", "voicemail"]);
  const outcomeBadge = (o) => !o ? h("span", { class: "muted" }, "—") :
    h("span", { class: "badge " + (GOOD_OUTCOMES.has(o) ? "good" : o === "dnc" ? "" : "bad"), "data-outcome": o }, o);
  const statusBadge = (s) => h("span", { class: "badge " + (s === "running" ? "live" : s === "completed" ? "good" : ""), "data-status": s }, s);

  function progressBar(p, total) {
    // One stacked bar: final outcomes in their colours, then in flight, then pending.
    const bar = h("div", { class: "progress", title: `${p.done} of ${total} contacts done` });
    const seg = (n, color, label) => {
      if (!n || !total) return;
      const s = h("i", { title: `${label}: ${n}` });
      s.style.width = `${(100 * n) / total}%`;
      s.style.background = color;
      bar.appendChild(s);
    };
    for (const o of OUTCOMES) seg(p[o.key], o.color, o.name);
    seg(p.dialing, "#edc948", "In flight");
    return bar;
  }

  async function campaignsPage() {
    let data;
    const render = async () => {
      try {
        data = await api("/v1/campaigns");
      } catch (err) {
        if (String(err.message).includes("HTTP 503")) {
          view.textContent = "";
          view.append(h("h1", {}, "Campaigns"), card(h("p", { class: "empty" }, "Campaigns are not enabled on this node (they need a records database).")));
          return;
        }
        throw err;
      }
      const head = [h("th", {}, "Campaign"), h("th", {}, "App"), h("th", {}, "Status"), h("th", {}, "Created (UTC)"), h("th", {}, "Progress")]
        .concat(["Contacts", "Done", "In flight", "Pending", "Attempts"].map((t) => h("th", { class: "num" }, t)), [h("th", {}, "Outcomes")]);
      const rows = data.map((c) => {
        const p = c.progress;
        const chips = OUTCOMES.filter((o) => p[o.key]).map((o) => h("span", { class: "chip", title: o.name },
          h("i", { class: "swatch", "data-color": o.color }), `${o.name} `, h("b", { "data-count": o.key }, String(p[o.key]))));
        return h("tr", { class: "clickable", "data-campaign": c.id, onclick: () => { location.hash = `#/campaign/${encodeURIComponent(c.id)}`; } },
          h("td", {}, h("div", {}, c.name || c.id), c.name ? h("div", { class: "muted small" }, c.id) : null),
          h("td", {}, c.app), h("td", {}, statusBadge(c.status)), h("td", { class: "nowrap" }, utc(c.created_at)),
          h("td", {}, progressBar(p, c.total), h("div", { class: "muted small" }, `${c.total ? Math.round((100 * p.done) / c.total) : 0}% done`)),
          h("td", { class: "num", "data-count": "total" }, String(c.total)),
          h("td", { class: "num", "data-count": "done" }, String(p.done)),
          h("td", { class: "num", "data-count": "dialing" }, String(p.dialing)),
          h("td", { class: "num", "data-count": "pending" }, String(p.pending)),
          h("td", { class: "num", "data-count": "attempts" }, String(p.attempts)),
          h("td", { class: "chips" }, chips.length ? chips : h("span", { class: "muted" }, "none yet")));
      });
      view.textContent = "";
      view.append(h("h1", {}, "Campaigns"), card(
        h("p", { class: "muted" }, `${data.length} campaign(s) · refreshes every 3 s · create them with POST /v1/campaigns`),
        rows.length ? h("div", { class: "scroll" }, h("table", { id: "campaigns-table" }, h("thead", {}, h("tr", {}, head)), h("tbody", {}, rows)))
          : h("p", { class: "empty" }, "No campaigns yet.")));
      for (const sw of view.querySelectorAll("i.swatch")) sw.style.background = sw.dataset.color; // CSSOM (CSP)
    };
    await render();
    timer = setInterval(() => render().catch(showError), 3000);
  }

  async function campaignPage(id) {
    const render = async () => {
      const c = await api(`/v1/campaigns/${encodeURIComponent(id)}`);
      const p = c.progress;
      const spec = c.spec || {};
      const chart = h("div", { id: "outcome-chart" });
      const retried = c.contacts.filter((x) => x.attempts > 1).length;
      const rows = c.contacts.map((x) => h("tr", { "data-contact": x.id },
        h("td", {}, x.phone), h("td", {}, x.name || "—"), h("td", {}, x.state),
        h("td", {}, outcomeBadge(x.state === "done" ? x.outcome : null),
          x.state !== "done" && x.outcome ? h("span", { class: "muted small" }, ` last: ${x.outcome}`) : null),
        h("td", { class: "num", "data-attempts": x.attempts }, String(x.attempts)),
        h("td", { class: "num" }, String(Math.max(0, x.attempts - 1))),
        h("td", {}, x.state === "pending" && x.next_at ? utc(x.next_at) : "—"),
        h("td", {}, x.last_call_id ? h("a", { href: `#/call/${encodeURIComponent(x.last_call_id)}` }, x.last_call_id) : "—"),
        h("td", {}, Object.keys(x.result || {}).length ? h("code", {}, JSON.stringify(x.result)) : "—")));
      view.textContent = "";
      view.append(
        h("p", {}, h("a", { href: "#/campaigns" }, "← all campaigns")),
        h("h1", {}, `Campaign ${c.name || c.id} `, statusBadge(c.status)),
        card(h("div", { class: "meta" }, [
          ["ID", c.id], ["App", c.app], ["Created (UTC)", utc(c.created_at)], ["Finished (UTC)", utc(c.finished_at)],
          ["Window", `${spec.window || "—"} (${spec.timezone || "UTC"})`], ["Max concurrent", String(spec.max_concurrent ?? "—")],
          ["Calls per second", String(spec.cps ?? "—")], ["Max attempts", String(spec.max_attempts ?? "—")],
          ["Answering-machine detection", spec.amd ? "on" : "off"],
        ].map(([label, value]) => h("div", {}, h("span", {}, label), value)))),
        h("div", { class: "tiles" },
          tile("Contacts", String(c.total), `${p.dnc} on the do-not-call list`, "total"),
          tile("Done", String(p.done), `${c.total ? Math.round((100 * p.done) / c.total) : 0}%`, "done"),
          tile("In flight", String(p.dialing), "calls being dialled now", "dialing"),
          tile("Pending", String(p.pending), "waiting for a dial or a retry", "pending"),
          tile("Attempts", String(p.attempts), `${retried} contact(s) retried`, "attempts")),
        h("div", { class: "grid2" }, card(chart), card(h("h2", {}, "Progress"), progressBar(p, c.total),
          h("ul", { class: "legend" }, OUTCOMES.concat([{ key: "dialing", name: "In flight", color: "#edc948" }, { key: "pending", name: "Pending", color: "#e7ecf2" }])
            .map((o) => h("li", {}, h("i", { class: "swatch", "data-color": o.color }), `${o.name}: `, h("b", { "data-legend": o.key }, String(p[o.key] || 0))))))),
        card(h("h2", {}, "Contacts"), h("div", { class: "scroll" }, h("table", { id: "contacts-table" },
          h("thead", {}, h("tr", {}, ["Phone", "Name", "State", "Outcome"].map((t) => h("th", {}, t)),
            ["Attempts", "Retries"].map((t) => h("th", { class: "num" }, t)), ["Next attempt (UTC)", "Last call", "Result"].map((t) => h("th", {}, t)))),
          h("tbody", {}, rows)))));
      for (const s of view.querySelectorAll("i.swatch")) s.style.background = s.dataset.color; // CSSOM (CSP)
      C.barChart(chart, {
        title: "Final outcome per contact",
        items: OUTCOMES.map((o) => ({ label: o.name, value: p[o.key] || 0, color: o.color })),
        xLabel: "contacts",
      });
    };
    await render();
    timer = setInterval(() => render().catch(showError), 3000);
  }

  // --- router ---------------------------------------------------------------------------
  async function route() {
    if (timer) { clearInterval(timer); timer = null; }
    const hash = location.hash.replace(/^#\/?/, "") || "overview";
    const [path, query] = hash.split("?");
    const params = new URLSearchParams(query || "");
    const [page, arg] = path.split("/");
    const nav = page === "call" ? "calls" : page === "campaign" ? "campaigns" : page;
    for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === nav);
    try {
      if (page === "live") await live();
      else if (page === "calls") await calls(params);
      else if (page === "call" && arg) await callPage(decodeURIComponent(arg));
      else if (page === "campaigns") await campaignsPage();
      else if (page === "campaign" && arg) await campaignPage(decodeURIComponent(arg));
      else await overview(params);
      view.dataset.page = page;
    } catch (err) {
      showError(err);
    }
  }
  window.addEventListener("hashchange", route);
  route();
})();
