// The web console of `runway local`. Each page polls its JSON under /console/api/ every
// second and redraws in place; nothing is loaded from anywhere else.
"use strict";

(function () {
  const POLL_MS = 1000;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const app = document.getElementById("app");
  const live = document.getElementById("live");

  // el("td", {class: "x", text: "…"}, child, …): an element with attributes and children.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    return fill(node, attrs, children);
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    return fill(node, attrs, children);
  }

  function fill(node, attrs, children) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "onclick") node.addEventListener("click", value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child !== undefined && child !== null) node.append(child);
    }
    return node;
  }

  function time(text) {
    if (!text) return "";
    const date = new Date(text);
    return date.toLocaleTimeString([], { hour12: false }) + "." +
      String(date.getMilliseconds()).padStart(3, "0");
  }

  function duration(start, stop) {
    const ms = (stop ? new Date(stop) : new Date()) - new Date(start);
    return ms < 60000 ? (ms / 1000).toFixed(1) + " s" : Math.round(ms / 1000) + " s";
  }

  function number(value) {
    if (value === null || value === undefined) return "–";
    return Number.isInteger(value) ? String(value) : value.toFixed(3).replace(/\.?0+$/, "");
  }

  function pretty(text) {
    if (text === null || text === undefined) return "";
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch (_) {
      return String(text);
    }
  }

  function status(text) {
    return el("span", { class: "status " + String(text).toLowerCase(), text: text });
  }

  // Fetches `url()` now and every second after, handing the JSON to `render`.
  function poll(url, render) {
    let timer = null;
    async function tick() {
      clearTimeout(timer);
      timer = null;
      let body;
      try {
        const response = await fetch(url(), { cache: "no-store" });
        body = await response.json();
        if (!response.ok) throw new Error(body.error || response.statusText);
      } catch (error) {
        // runway local stopped or refused: say so, and keep trying.
        live.textContent = "not updating: " + error.message;
        live.className = "down";
        timer = setTimeout(tick, POLL_MS);
        return;
      }
      // Scheduled first: a bug in a page's drawing is reported (uncaught) but does not
      // stop the updates.
      timer = setTimeout(tick, POLL_MS);
      live.textContent = "live · " + time(new Date().toISOString());
      live.className = "ok";
      render(body);
    }
    tick();
    return tick;
  }

  function section(title, ...children) {
    return el("section", {}, el("h2", { text: title }), ...children);
  }

  // A table of `headers` over `body` (a tbody the caller fills).
  function table(headers, body) {
    return el("table", {}, el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { text: h })))), body);
  }

  // ---- Executions ----------------------------------------------------------------------

  function executionsPage() {
    const fields = ["status", "pool", "repository"];
    const query = new URLSearchParams(location.search);
    const selects = {};
    const filters = el("form", { class: "filters" });
    for (const field of fields) {
      const select = el("select", { name: field, id: "filter-" + field });
      select.append(el("option", { value: "", text: "any " + field }));
      if (query.get(field)) select.append(el("option", { value: query.get(field), text: query.get(field) }));
      select.value = query.get(field) || "";
      selects[field] = select;
      filters.append(el("label", {}, field + " ", select));
    }
    const count = el("p", { class: "count", id: "count" });
    const body = el("tbody", { id: "executions" });
    app.append(filters, count, table(["Name", "Status", "Pool", "Repository", "Job", "Started", "Duration"], body));

    function url() {
      const params = new URLSearchParams();
      for (const field of fields) if (selects[field].value) params.set(field, selects[field].value);
      return "/console/api/executions?" + params.toString();
    }

    function options(select, values) {
      const chosen = select.value;
      const wanted = ["", ...values];
      if (chosen && !wanted.includes(chosen)) wanted.push(chosen);
      const have = Array.from(select.options).map((o) => o.value);
      if (have.join("\n") === wanted.join("\n")) return;
      const first = select.options[0].text;
      select.replaceChildren(...wanted.map((v) => el("option", { value: v, text: v || first })));
      select.value = chosen;
    }

    const refresh = poll(url, (data) => {
      options(selects.status, data.statuses);
      options(selects.pool, data.pools);
      options(selects.repository, data.repositories);
      count.textContent = data.matched + " of " + data.total + " executions" +
        (data.matched > data.executions.length ? " (newest " + data.executions.length + " shown)" : "");
      body.replaceChildren(...data.executions.map((e) => el("tr", { "data-execution": e.name },
        el("td", {}, el("a", { href: "/executions/" + encodeURIComponent(e.name), text: e.name })),
        el("td", {}, status(e.status)),
        el("td", { text: e.pool || "" }),
        el("td", { text: e.repository || "" }),
        el("td", { text: e.job || "" }),
        el("td", { text: time(e.start) }),
        el("td", { text: duration(e.start, e.stop) }))));
    });

    filters.addEventListener("change", () => {
      const params = new URLSearchParams();
      for (const field of fields) if (selects[field].value) params.set(field, selects[field].value);
      const search = params.toString();
      history.replaceState(null, "", search ? "?" + search : location.pathname);
      refresh();
    });
  }

  // ---- One execution -------------------------------------------------------------------

  function drawGraph(graph, onSelect) {
    const root = svg("svg", {
      id: "graph", class: "graph", width: graph.width, height: graph.height,
      viewBox: "0 0 " + graph.width + " " + graph.height,
    });
    root.append(svg("defs", {}, svg("marker", {
      id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
    }, svg("path", { d: "M 0 0 L 10 5 L 0 10 z" }))));
    const node = (n) => {
      const group = svg("g", {
        class: "node type-" + n.type.toLowerCase(), "data-state": n.name, onclick: () => onSelect(n.name),
      });
      group.append(svg("title", { text: n.type + " state " + n.name }));
      const parallel = n.type === "Parallel";
      group.append(svg("rect", { x: n.x, y: n.y, width: n.width, height: n.height, rx: parallel ? 6 : 16 }));
      group.append(svg("text", {
        x: n.x + n.width / 2, y: parallel ? n.y + 19 : n.y + n.height / 2 + 4.5, "text-anchor": "middle", text: n.name,
      }));
      return group;
    };
    // Parallel boxes under the edges, the edges under the states.
    graph.nodes.filter((n) => n.type === "Parallel").forEach((n) => root.append(node(n)));
    for (const edge of graph.edges) {
      const d = edge.points.map((p, i) => (i ? "L " : "M ") + p[0] + " " + p[1]).join(" ");
      root.append(svg("path", {
        d: d, class: "edge kind-" + edge.kind + (edge.back ? " back" : ""),
        "data-from": edge.from, "data-to": edge.to, "marker-end": "url(#arrow)",
      }));
    }
    graph.nodes.filter((n) => n.type !== "Parallel").forEach((n) => root.append(node(n)));
    return root;
  }

  function executionPage() {
    const name = app.dataset.execution;
    const facts = el("dl", { class: "facts", id: "facts" });
    const current = el("span", { id: "current-states" });
    const holder = el("div", { class: "graph-holder fit" });
    // The whole graph scaled to the page, or at its own size (scrolling).
    const zoom = el("button", {
      type: "button", text: "Actual size",
      onclick: () => { zoom.textContent = holder.classList.toggle("fit") ? "Actual size" : "Fit to page"; },
    });
    const where = el("p", { class: "where" }, "Current state: ", current, zoom);
    const panel = el("aside", { class: "state-panel", id: "state-panel" },
      el("p", { class: "hint", text: "Click a state to see its input and output." }));
    const events = el("tbody", { id: "events" });
    app.append(facts, where, el("div", { class: "graph-row" }, holder, panel),
      section("Events", table(["#", "Time", "Type", "State", "Details"], events)));

    let latest = null;
    let selected = null;
    let shownEvents = 0;

    function select(state) {
      selected = state;
      holder.querySelectorAll(".node.selected").forEach((n) => n.classList.remove("selected"));
      const group = holder.querySelector('.node[data-state="' + CSS.escape(state) + '"]');
      if (group) group.classList.add("selected");
      showState();
    }

    function showState() {
      if (!selected || !latest) return;
      const state = latest.path.states[selected];
      const visits = state ? state.visits : [];
      panel.replaceChildren(el("h2", { text: selected }),
        visits.length === 0 ? el("p", { class: "hint", text: "Not entered by this execution." }) : null,
        ...visits.map((v, i) => el("div", { class: "visit" },
          el("h3", { text: "Visit " + (i + 1) + " · entered " + time(v.entered_at) +
            (v.exited_at ? " · left " + time(v.exited_at) : " · not left") }),
          el("h4", { text: "Input" }), el("pre", { class: "input", text: pretty(v.input) }),
          el("h4", { text: "Output" }), el("pre", { class: "output", text: v.exited_at ? pretty(v.output) : "–" }))));
    }

    function mark(detail) {
      holder.querySelectorAll(".node").forEach((group) => {
        const state = detail.path.states[group.dataset.state];
        group.classList.remove("visited", "current", "stopped");
        if (state) group.classList.add(state.mark);
      });
      const taken = new Set(detail.path.taken.map((t) => t[0] + "\n" + t[1]));
      holder.querySelectorAll(".edge").forEach((edge) => {
        edge.classList.toggle("taken", taken.has(edge.dataset.from + "\n" + edge.dataset.to));
      });
    }

    function render(detail) {
      latest = detail;
      const e = detail.execution;
      const rows = [["Status", status(e.status)], ["Pool", e.pool || "–"], ["Repository", e.repository || "–"],
        ["Job", (e.job || "") + (e.labels.length ? " [" + e.labels.join(", ") + "]" : "")],
        ["Started", time(e.start)], ["Duration", duration(e.start, e.stop)]];
      if (e.error) rows.push(["Error", e.error + (e.cause ? ": " + e.cause : "")]);
      facts.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
      current.textContent = detail.path.current.length ? detail.path.current.join(", ") :
        e.status === "RUNNING" ? "starting" : "none (" + e.status.toLowerCase() + ")";
      // Every current state this page has shown, oldest first: the moves seen live.
      const seen = current.dataset.seen ? current.dataset.seen.split(" | ") : [];
      if (seen[seen.length - 1] !== current.textContent) {
        current.dataset.seen = seen.concat([current.textContent]).join(" | ");
      }
      if (holder.firstChild) mark(detail);
      // History only grows: add the new events, keep the ones opened.
      for (const event of detail.events.slice(shownEvents)) {
        const details = Object.keys(event.details || {}).length
          ? el("details", {}, el("summary", { text: Object.keys(event.details).join(", ") }),
            ...Object.entries(event.details).map(([k, v]) => el("div", {},
              el("h4", { text: k }), el("pre", { text: typeof v === "string" ? pretty(v) : JSON.stringify(v, null, 2) }))))
          : null;
        events.append(el("tr", { "data-event": event.id },
          el("td", { text: event.id }), el("td", { text: time(event.at) }), el("td", { text: event.type }),
          el("td", { text: event.state || "" }), el("td", {}, details)));
      }
      shownEvents = detail.events.length;
      showState();
    }

    fetch("/console/api/graph", { cache: "no-store" })
      .then((response) => response.json())
      .then((graph) => {
        holder.append(drawGraph(graph, select));
        if (latest) mark(latest);
      })
      .catch((error) => holder.append(el("p", { class: "down", text: "no graph: " + error.message })));
    // After the first answer the server holds each request until the history grows (or
    // a while passes), so a move shows at once.
    poll(() => "/console/api/executions/" + encodeURIComponent(name) +
      (latest && latest.execution.status === "RUNNING" ? "?after=" + latest.events.length : ""), render);
  }

  // ---- Pools ---------------------------------------------------------------------------

  function poolsPage() {
    const pools = el("tbody", { id: "pools" });
    const runners = el("tbody", { id: "runners" });
    const states = ["booting", "idle", "busy", "gone"];
    app.append(
      table(["Pool", "Provider", "Labels", "Slots in use", "Queue", "Oldest wait",
        ...states.map((s) => "Runners " + s)], pools),
      section("Runners", table(["Runner", "Pool", "State", "Execution", "Provider", "Launched"], runners)));
    poll(() => "/console/api/pools", (data) => {
      pools.replaceChildren(...data.pools.map((p) => el("tr", { "data-pool": p.name },
        el("td", { text: p.name }), el("td", { text: p.provider }), el("td", { text: p.labels.join(", ") }),
        el("td", { class: "slots", text: p.slots_in_use + " / " + p.max_running }),
        el("td", { class: "queue", text: p.queue_depth, title: p.queue.join("\n") }),
        el("td", { text: p.oldest_wait_seconds === null ? "–" : p.oldest_wait_seconds + " s" }),
        ...states.map((s) => el("td", { class: "runners-" + s, text: p.runners_by_state[s] || 0 })))));
      runners.replaceChildren(...data.pools.flatMap((p) => p.runners.map((r) => el("tr", { "data-runner": r.name },
        el("td", { text: r.name }), el("td", { text: p.name }), el("td", { text: r.state }),
        el("td", {}, el("a", { href: "/executions/" + encodeURIComponent(r.execution), text: r.execution })),
        el("td", { text: r.provider }), el("td", { text: time(r.launched_at) })))));
    });
  }

  // ---- Metrics -------------------------------------------------------------------------

  function metricsPage() {
    const note = el("p", { class: "count", id: "samples" });
    const panels = el("div", { id: "panels" });
    app.append(note, panels);
    const columns = ["Metric", "Series", "Samples", "Latest", "Sum", "Max", "p50", "p90", "p99"];
    const row = (metric, series, stats) => el("tr", { "data-metric": metric.name },
      el("td", { text: metric.name + " (" + metric.unit + ")" }), el("td", { text: series }),
      ...["count", "latest", "sum", "max", "p50", "p90", "p99"].map((k) => el("td", { text: number(stats[k]) })));
    poll(() => "/console/api/metrics", (data) => {
      note.textContent = data.samples + " samples recorded; the figures of the stack's CloudWatch dashboard.";
      panels.replaceChildren(...data.panels.map((panel) => section(panel.title, table(columns,
        el("tbody", {}, ...panel.metrics.flatMap((m) => [row(m, "all", m.all),
          ...m.series.map(([dimension, value, stats]) => row(m, dimension + " " + value, stats))]))))));
    });
  }

  const pages = { executions: executionsPage, execution: executionPage, pools: poolsPage, metrics: metricsPage };
  if (pages[app.dataset.page]) {
    pages[app.dataset.page]();
  } else {
    app.append(el("p", { text: "Nothing here. " }, el("a", { href: "/", text: "See the executions." })));
    live.textContent = "";
  }
})();
