// archc view: the analysed graph, grouped by module path, laid out by dagre (vendored), drawn as SVG.
// Everything comes from the JSON embedded in the page; nothing is fetched.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("archc-data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const MAX_FIRST_VIEW = 80; // boxes in the first view, when no depth was asked for

  // -- the model: nodes, groups (module path prefixes), which groups are open ---------------------------------
  const nodes = new Map(D.nodes.map((n) => [n.name, n]));
  const groups = new Map(); // path -> {path, parent, depth, nodes: [names], kids: [boxes ids], open}
  const parentOf = (path) => { const i = path.lastIndexOf("."); return i < 0 ? null : path.slice(0, i); };
  const depthOf = (path) => path.split(".").length;
  for (const n of D.nodes) {
    for (let child = n.name, p = parentOf(n.name); p !== null; child = p, p = parentOf(p)) {
      if (!groups.has(p)) groups.set(p, { path: p, parent: parentOf(p), depth: depthOf(p), nodes: [], kids: [], open: true });
      const g = groups.get(p);
      g.nodes.push(n.name);
      if (!g.kids.includes(child)) g.kids.push(child);
    }
  }
  const isOutput = new Set(D.outputs.map((o) => o.node));
  const readers = new Map(D.nodes.map((n) => [n.name, []]));
  for (const n of D.nodes) for (const i of n.inputs) readers.get(i).push(n.name);
  const inGroup = (name, path) => name.startsWith(path + ".");
  for (const g of groups.values()) {
    const members = g.nodes.map((m) => nodes.get(m));
    g.params = members.reduce((s, n) => s + n.params, 0);
    g.macs = members.reduce((s, n) => s + n.macs, 0);
    g.activations = members.reduce((s, n) => s + n.activations, 0);
    g.aux = members.every((n) => n.aux);
    // The values that leave the group: read outside it, or outputs of the network.
    g.outs = g.nodes.filter((m) => isOutput.has(m) || readers.get(m).some((r) => !inGroup(r, g.path)));
    g.loc = nodes.get(g.nodes[0]).loc;
  }
  const ancestors = (name) => { const a = []; for (let p = parentOf(name); p !== null; p = parentOf(p)) a.unshift(p); return a; };
  // The box that stands for a node: the outermost closed group holding it, else the node itself.
  function boxOf(name) {
    for (const p of ancestors(name)) if (!groups.get(p).open) return "g:" + p;
    return "n:" + name;
  }
  const maxLevel = Math.max(0, ...[...groups.values()].map((g) => g.depth));
  function openTo(level) { for (const g of groups.values()) g.open = g.depth < level; }
  function countBoxes() { return new Set(D.nodes.map((n) => boxOf(n.name))).size; }
  // The first view: `--depth` levels when asked; else level by level, the groups that hold groups (a stage of blocks,
  // an Inception module's branches) open while the view stays small; groups of plain ops (a block) stay closed.
  function firstView() {
    if (D.depth !== null && D.depth !== undefined) return openTo(D.depth);
    openTo(1);
    for (let level = 1; level <= maxLevel; level++) {
      const these = [...groups.values()].filter((g) => g.depth === level && g.kids.some((k) => groups.has(k)) &&
        !ancestors(g.path).some((p) => !groups.get(p).open));
      for (const g of these) g.open = true;
      for (const g of groups.values()) if (g.depth === level + 1) g.open = false;
      if (countBoxes() > MAX_FIRST_VIEW) { for (const g of these) g.open = false; break; }
    }
    if (countBoxes() >= 20) return;
    let best = 1; // few groups of groups (VGG's features, classifier): the deepest plain level that stays small
    for (let level = 1; level <= maxLevel + 1; level++) { openTo(level); if (countBoxes() <= MAX_FIRST_VIEW) best = level; }
    openTo(best);
  }

  // -- formatting ---------------------------------------------------------------------------------------------
  function human(x, unit) {
    unit = unit || "";
    for (const [s, suffix] of [[1e9, " G"], [1e6, " M"], [1e3, " K"]]) if (Math.abs(x) >= s) return (x / s).toFixed(2) + suffix + unit;
    return String(x) + (unit ? " " + unit : "");
  }
  const shape = (s) => s.join("\u00d7");
  const comma = (x) => x.toLocaleString("en-US");
  const rfText = (rf) => rf.size[0] === rf.size[1] ? String(rf.size[0]) : rf.size.join("\u00d7");

  // -- SVG helpers --------------------------------------------------------------------------------------------
  function el(tag, attrs, parent) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs || {}) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function text(parent, x, y, cls, content) { const t = el("text", { x: x, y: y, class: cls }, parent); t.textContent = content; return t; }
  const measure = (() => {
    const ctx = document.createElement("canvas").getContext("2d");
    return (s, font) => { ctx.font = font; return ctx.measureText(s).width; };
  })();
  const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Liberation Sans', sans-serif";
  const BOLD = "600 12px " + FONT, SMALL = "11px " + FONT, TINY = "10px " + FONT;

  // What each box shows: three lines.
  function boxLines(id) {
    if (id.startsWith("n:")) {
      const n = nodes.get(id.slice(2));
      const parent = parentOf(n.name);
      const name = parent === null ? n.name : n.name.slice(parent.length + 1);
      return [name, n.op + (n.args ? " " + n.args : ""), shape(n.shape) + (n.params ? "  \u00b7  " + human(n.params) + " params" : "")];
    }
    const g = groups.get(id.slice(2));
    const name = g.parent === null ? g.path : g.path.slice(g.parent.length + 1);
    const figures = [g.nodes.length + " ops"];
    if (g.params) figures.push(human(g.params) + " params");
    if (g.macs) figures.push(human(g.macs) + "MACs");
    return [name, figures.join("  \u00b7  "), "\u2192 " + g.outs.map((m) => shape(nodes.get(m).shape)).join(", ")];
  }

  // -- layout and drawing -------------------------------------------------------------------------------------
  const svg = document.getElementById("graph");
  const defs = el("defs", {}, svg);
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
  el("path", { d: "M0,0 L10,5 L0,10 z", fill: "#7d8596" }, marker);
  const viewport = el("g", { id: "viewport" }, svg);
  const view = { x: 0, y: 0, k: 1 };
  let layout = null; // {boxes: Map id -> {x, y, width, height}, clusters, edges, width, height}
  let selected = null; // a node name or a group path
  const state = { layouts: 0, lastLayoutMs: 0 };

  const TITLE = 20, PAD = 7; // an open group's frame: its title row, and the padding around its contents

  function computeLayout() {
    const t0 = performance.now();
    const boxes = new Map(); // box id -> {lines, width, height, margin, x, y}: (x, y) the centre of what is drawn
    for (const n of D.nodes) {
      const id = boxOf(n.name);
      if (boxes.has(id)) continue;
      const lines = boxLines(id);
      const width = Math.max(measure(lines[0], BOLD), measure(lines[1], SMALL), measure(lines[2], SMALL)) + (id.startsWith("g:") ? 40 : 18);
      boxes.set(id, { lines: lines, width: Math.ceil(width), height: id.startsWith("g:") ? 56 : 50, margin: 0 });
    }
    const clusters = [...groups.values()].filter((gr) => gr.open && !ancestors(gr.path).some((p) => !grp(p).open)).map((gr) => gr.path);
    const edges = new Map(); // "from\0to" -> {from, to, shapes, label, points, lx, ly}
    for (const n of D.nodes) {
      const to = boxOf(n.name);
      for (const i of n.inputs) {
        const from = boxOf(i);
        if (from === to) continue;
        const key = from + "\u0000" + to;
        if (!edges.has(key)) edges.set(key, { from: from, to: to, shapes: new Set() });
        edges.get(key).shapes.add(shape(nodes.get(i).shape));
      }
    }
    // Room for the titles of the open groups a box starts (reads nothing from inside): a margin above it.
    const entered = new Set();
    for (const e of edges.values()) {
      const common = commonGroup(e.from, e.to);
      for (const q of ancestors(e.to.slice(2))) if (common !== null && (q === common || inGroup(q, common))) entered.add(e.to + "\u0000" + q);
    }
    for (const [id, b] of boxes) for (const q of ancestors(id.slice(2))) if (!entered.has(id + "\u0000" + q)) b.margin += TITLE + PAD;

    const g = new dagre.graphlib.Graph({ compound: true });
    g.setGraph({ rankdir: "TB", nodesep: 28, ranksep: 26, edgesep: 12, marginx: 24, marginy: 24 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const [id, b] of boxes) g.setNode(id, { width: b.width, height: b.height + b.margin });
    for (const p of clusters) g.setNode("c:" + p, {});
    for (const p of clusters) if (grp(p).parent !== null) g.setParent("c:" + p, "c:" + grp(p).parent);
    for (const id of boxes.keys()) { const parent = parentOf(id.slice(2)); if (parent !== null) g.setParent(id, "c:" + parent); }
    for (const e of [...edges.values()].reverse()) { // edges inserted last first: dagre then orders branches as written
      e.label = [...e.shapes].join(", ");
      g.setEdge(e.from, e.to, { label: e.label, width: Math.ceil(measure(e.label, TINY)) + 6, height: 14, labelpos: "c" });
    }
    dagre.layout(g);
    for (const [id, b] of boxes) Object.assign(b, { x: g.node(id).x, y: g.node(id).y + b.margin / 2 });
    for (const e of edges.values()) {
      const d = g.edge(e.from, e.to), top = boxes.get(e.to).y - boxes.get(e.to).height / 2;
      e.points = d.points.map((p) => ({ x: p.x, y: p.y }));
      const last = e.points[e.points.length - 1];
      if (last.y < top) last.y = top; // into the box, past its title margin
      e.lx = d.x; e.ly = d.y;
    }
    // Frames, innermost first: around their boxes and inner frames, with the title row on top.
    const frames = new Map();
    for (const p of clusters.slice().sort((a, b) => depthOf(b) - depthOf(a))) {
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      const take = (x, y, w, h) => { x0 = Math.min(x0, x - w / 2); x1 = Math.max(x1, x + w / 2); y0 = Math.min(y0, y - h / 2); y1 = Math.max(y1, y + h / 2); };
      for (const [id, b] of boxes) if (parentOf(id.slice(2)) === p) take(b.x, b.y, b.width, b.height);
      for (const [q, f] of frames) if (grp(q).parent === p) take(f.x, f.y, f.width, f.height);
      x0 -= PAD; x1 += PAD; y0 -= TITLE + PAD; y1 += PAD;
      frames.set(p, { path: p, x: (x0 + x1) / 2, y: (y0 + y1) / 2, width: x1 - x0, height: y1 - y0 });
    }
    const size = g.graph();
    state.layouts += 1;
    state.lastLayoutMs = performance.now() - t0;
    return { boxes: boxes, clusters: [...frames.values()], edges: [...edges.values()], width: size.width || 0, height: size.height || 0 };
  }
  const grp = (p) => groups.get(p);
  // The innermost group holding both boxes (null: none).
  function commonGroup(a, b) {
    const pa = ancestors(a.slice(2)), pb = ancestors(b.slice(2));
    let common = null;
    for (let i = 0; i < Math.min(pa.length, pb.length) && pa[i] === pb[i]; i++) common = pa[i];
    return common;
  }

  function curve(points) {
    if (points.length < 3) return "M" + points.map((p) => p.x + "," + p.y).join(" L");
    let d = "M" + points[0].x + "," + points[0].y;
    for (let i = 1; i < points.length - 1; i++) {
      const a = points[i], b = points[i + 1];
      const mx = i === points.length - 2 ? b.x : (a.x + b.x) / 2, my = i === points.length - 2 ? b.y : (a.y + b.y) / 2;
      d += " Q" + a.x + "," + a.y + " " + mx + "," + my;
    }
    return d;
  }

  function draw() {
    viewport.textContent = "";
    const frames = el("g", { class: "clusters" }, viewport);
    const sorted = layout.clusters.slice().sort((a, b) => depthOf(a.path) - depthOf(b.path));
    for (const c of sorted) {
      const g = grp(c.path);
      const cg = el("g", { class: "cluster" + (g.aux ? " aux" : "") + (selected === c.path ? " selected" : ""), "data-cluster": c.path }, frames);
      el("rect", { class: "frame", x: c.x - c.width / 2, y: c.y - c.height / 2, width: c.width, height: c.height, rx: 8 }, cg);
      const tx = c.x - c.width / 2 + 6, ty = c.y - c.height / 2 + 4;
      toggle(cg, tx, ty, c.path, true);
      const label = text(cg, tx + 22, ty + 12, "label", c.path);
      label.addEventListener("click", (ev) => { ev.stopPropagation(); select(c.path); });
    }
    const lines = el("g", { class: "edges" }, viewport);
    for (const e of layout.edges) {
      const eg = el("g", { class: "edge", "data-from": e.from, "data-to": e.to }, lines);
      el("path", { d: curve(e.points), "marker-end": "url(#arrow)" }, eg);
      if (e.label && e.lx !== undefined) {
        const w = measure(e.label, TINY) + 4;
        el("rect", { x: e.lx - w / 2, y: e.ly - 7, width: w, height: 13, rx: 2 }, eg);
        text(eg, e.lx - w / 2 + 2, e.ly + 3.5, "", e.label);
      }
    }
    const boxes = el("g", { class: "boxes" }, viewport);
    for (const [id, b] of layout.boxes) {
      const isGroup = id.startsWith("g:");
      const key = id.slice(2);
      const aux = isGroup ? grp(key).aux : nodes.get(key).aux;
      const x = b.x - b.width / 2, y = b.y - b.height / 2;
      const bg = el("g", { class: (isGroup ? "group" : "node") + (aux ? " aux" : "") + (selected === key ? " selected" : ""), "data-id": id }, boxes);
      bg.setAttribute(isGroup ? "data-group" : "data-node", key);
      if (isGroup) el("rect", { class: "stack", x: x + 4, y: y + 4, width: b.width, height: b.height, rx: 5 }, bg);
      el("rect", { class: "box " + (isGroup ? "" : "cat-" + nodes.get(key).cat), x: x, y: y, width: b.width, height: b.height, rx: 5 }, bg);
      const left = x + (isGroup ? 30 : 9);
      text(bg, left, y + 16, "name", b.lines[0]);
      text(bg, left, y + 31, "op", b.lines[1]);
      text(bg, left, y + 45, "shape", b.lines[2]);
      if (isGroup) toggle(bg, x + 6, y + 6, key, false);
      bg.addEventListener("click", (ev) => { ev.stopPropagation(); select(key); });
      if (isGroup) bg.addEventListener("dblclick", (ev) => { ev.stopPropagation(); setOpen(key, true); });
    }
    nearEdges();
    applyView();
  }

  function toggle(parent, x, y, path, open) {
    const t = el("g", { class: "toggle", "data-toggle": path, transform: "translate(" + x + "," + y + ")" }, parent);
    el("rect", { width: 16, height: 16, rx: 3 }, t);
    text(t, 8, 12.5, "", open ? "\u2212" : "+");
    el("title", {}, t).textContent = (open ? "close " : "open ") + path;
    t.addEventListener("click", (ev) => { ev.stopPropagation(); setOpen(path, !open); });
    t.addEventListener("dblclick", (ev) => ev.stopPropagation());
  }

  function nearEdges() {
    const id = selected === null ? null : (nodes.has(selected) ? boxOf(selected) : (grp(selected).open ? null : boxOf(grp(selected).nodes[0])));
    for (const e of viewport.querySelectorAll(".edge")) e.classList.toggle("near", id !== null && (e.dataset.from === id || e.dataset.to === id));
  }

  // -- pan and zoom -------------------------------------------------------------------------------------------
  function applyView() { viewport.setAttribute("transform", "translate(" + view.x + "," + view.y + ") scale(" + view.k + ")"); }
  // all: the whole graph in the window; else readable (scale >= 0.75), the top of the graph, centred on the input.
  function fit(all) {
    const w = svg.clientWidth || 800, h = svg.clientHeight || 600;
    const k = Math.min(1, all ? Math.min(w / layout.width, h / layout.height) : Math.max(0.75, w / layout.width));
    view.k = Math.max(k, 0.02);
    const input = layout.boxes.get("n:" + D.nodes[0].name);
    view.x = layout.width * view.k <= w || all ? (w - layout.width * view.k) / 2 : w / 2 - input.x * view.k;
    view.y = all ? (h - layout.height * view.k) / 2 : 40;
    applyView();
  }
  function centreOn(x, y) {
    const w = svg.clientWidth || 800, h = svg.clientHeight || 600;
    if (view.k < 0.6) view.k = 0.9;
    view.x = w / 2 - x * view.k;
    view.y = h / 2 - y * view.k;
    applyView();
  }
  let drag = null;
  svg.addEventListener("mousedown", (ev) => { drag = { x: ev.clientX, y: ev.clientY, vx: view.x, vy: view.y }; svg.classList.add("panning"); });
  window.addEventListener("mousemove", (ev) => { if (!drag) return; view.x = drag.vx + ev.clientX - drag.x; view.y = drag.vy + ev.clientY - drag.y; applyView(); });
  window.addEventListener("mouseup", () => { drag = null; svg.classList.remove("panning"); });
  svg.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = svg.getBoundingClientRect(), mx = ev.clientX - r.left, my = ev.clientY - r.top;
    const k = Math.min(4, Math.max(0.02, view.k * Math.exp(-ev.deltaY * 0.0015)));
    view.x = mx - (mx - view.x) * (k / view.k);
    view.y = my - (my - view.y) * (k / view.k);
    view.k = k;
    applyView();
  }, { passive: false });

  // -- state changes ------------------------------------------------------------------------------------------
  // Re-lay out, keeping `anchor` (a box id or cluster path) where it was on the screen.
  function relayout(anchor) {
    const before = anchor ? position(anchor) : null;
    layout = computeLayout();
    draw();
    const after = anchor ? position(anchor) : null;
    if (before && after) { view.x += (before.x - after.x) * view.k; view.y += (before.y - after.y) * view.k; applyView(); }
    document.body.dataset.boxes = String(layout.boxes.size);
    levelButtons();
  }
  // A layout of many boxes takes seconds (DenseNet-121 open to the last op: about 14 s, its concats reading every
  // earlier layer): say so first, and lay out once the message is shown. body[data-busy] is set meanwhile.
  function heavy(fn) {
    const n = countBoxes();
    if (n <= 250) return fn();
    const busy = document.getElementById("busy");
    busy.textContent = "laying out " + n + " boxes\u2026";
    busy.hidden = false;
    document.body.dataset.busy = "1";
    setTimeout(() => { try { fn(); } finally { busy.hidden = true; delete document.body.dataset.busy; } }, 30);
  }
  function position(path) {
    if (layout.boxes.has("g:" + path)) { const b = layout.boxes.get("g:" + path); return { x: b.x - b.width / 2, y: b.y - b.height / 2 }; }
    if (layout.boxes.has("n:" + path)) { const b = layout.boxes.get("n:" + path); return { x: b.x, y: b.y }; }
    const c = layout.clusters.find((f) => f.path === path);
    return c ? { x: c.x - c.width / 2, y: c.y - c.height / 2 } : null;
  }
  function setOpen(path, open) {
    grp(path).open = open;
    if (!open) for (const g of groups.values()) if (inGroup(g.path, path)) g.open = false;
    relayout(path);
  }
  function reveal(name) {
    let changed = false;
    for (const p of ancestors(name)) if (!grp(p).open) { grp(p).open = true; changed = true; }
    if (changed) relayout(null);
  }
  function select(key) {
    selected = key;
    for (const e of viewport.querySelectorAll(".selected")) e.classList.remove("selected");
    const sel = viewport.querySelector('[data-node="' + cssEscape(key) + '"], [data-group="' + cssEscape(key) + '"], [data-cluster="' + cssEscape(key) + '"]');
    if (sel) sel.classList.add("selected");
    nearEdges();
    details(key);
  }
  const cssEscape = (s) => (window.CSS && CSS.escape ? CSS.escape(s) : s.replace(/["\\]/g, "\\$&"));
  function goTo(key) {
    reveal(key);
    select(key);
    const p = layout.boxes.get("n:" + key) || layout.boxes.get("g:" + key) || layout.clusters.find((f) => f.path === key);
    if (p) centreOn(p.x, p.y);
  }

  // -- the side panel -----------------------------------------------------------------------------------------
  const detailsBox = document.getElementById("details");
  function row(table, label, value) {
    const tr = table.insertRow();
    tr.insertCell().textContent = label;
    const td = tr.insertCell();
    if (value instanceof Node) td.appendChild(value); else td.textContent = value;
  }
  function link(name) {
    const a = document.createElement("a");
    a.href = "#"; a.textContent = name;
    a.addEventListener("click", (ev) => { ev.preventDefault(); goTo(name); });
    return a;
  }
  function links(names) {
    const span = document.createElement("span");
    names.forEach((m, i) => { if (i) span.appendChild(document.createTextNode(", ")); span.appendChild(link(m)); });
    return span;
  }
  function details(key) {
    detailsBox.textContent = "";
    const h = document.createElement("h2");
    h.textContent = key;
    detailsBox.appendChild(h);
    const table = document.createElement("table");
    if (nodes.has(key)) {
      const n = nodes.get(key);
      const doc = document.createElement("p");
      doc.className = "doc"; doc.textContent = n.doc;
      detailsBox.appendChild(doc);
      row(table, "op", n.op + (n.aux ? "  (auxiliary head: train mode only)" : ""));
      if (n.module !== n.name) row(table, "module", n.module + " (shared, parameter-free)");
      for (const k in n.attrs) if (n.attrs[k] !== null) row(table, k, JSON.stringify(n.attrs[k]));
      row(table, "inputs", links(n.inputs));
      row(table, "output", "[" + n.shape.join(", ") + "]");
      row(table, "params", comma(n.params));
      row(table, "MACs", comma(n.macs) + (n.macs ? " (" + human(n.macs) + ")" : ""));
      row(table, "activations", comma(n.activations) + " values");
      row(table, "receptive field", rfText(n.rf) + " px, jump " + n.rf.jump.join("\u00d7") + ", start " + n.rf.start.join(", "));
      row(table, "readers", links(readers.get(n.name)));
      row(table, "spec", n.loc);
    } else {
      const g = grp(key);
      row(table, "group", g.nodes.length + " ops" + (g.aux ? " (auxiliary head: train mode only)" : ""));
      row(table, "params", comma(g.params));
      row(table, "MACs", comma(g.macs) + (g.macs ? " (" + human(g.macs) + ")" : ""));
      row(table, "activations", comma(g.activations) + " values");
      row(table, "outputs", links(g.outs));
      row(table, "contains", links(g.kids.slice(0, 40)));
      row(table, "spec", g.loc);
      const b = document.createElement("button");
      b.textContent = g.open ? "close group" : "open group";
      b.addEventListener("click", () => { setOpen(key, !g.open); details(key); });
      detailsBox.appendChild(table);
      detailsBox.appendChild(b);
      return;
    }
    detailsBox.appendChild(table);
  }

  const search = document.getElementById("search");
  const results = document.getElementById("results");
  const names = [...groups.keys(), ...nodes.keys()].sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
  function runSearch() {
    const q = search.value.trim().toLowerCase();
    results.textContent = "";
    if (!q) return;
    const hits = names.filter((m) => m.toLowerCase().includes(q));
    for (const m of hits.slice(0, 50)) {
      const li = document.createElement("li");
      li.textContent = m;
      li.dataset.name = m;
      const op = document.createElement("span");
      op.className = "op";
      op.textContent = nodes.has(m) ? nodes.get(m).op : grp(m).nodes.length + " ops";
      li.appendChild(op);
      li.addEventListener("click", () => goTo(m));
      results.appendChild(li);
    }
    if (hits.length > 50) { const li = document.createElement("li"); li.textContent = "\u2026 " + (hits.length - 50) + " more"; results.appendChild(li); }
    const boxesHit = new Set(hits.map((m) => nodes.has(m) ? boxOf(m) : (grp(m).open ? null : "g:" + m)));
    for (const b of viewport.querySelectorAll(".node, .group")) b.classList.toggle("hit", boxesHit.has(b.dataset.id));
  }
  search.addEventListener("input", runSearch);
  search.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { const first = results.querySelector("li[data-name]"); if (first) goTo(first.dataset.name); }
    if (ev.key === "Escape") { search.value = ""; runSearch(); }
  });
  window.addEventListener("keydown", (ev) => { if (ev.key === "/" && document.activeElement !== search) { ev.preventDefault(); search.focus(); } });

  // -- header, tools, legend ----------------------------------------------------------------------------------
  function header() {
    const t = D.totals, title = document.getElementById("title");
    const b = document.createElement("b"); b.textContent = D.name; title.appendChild(b);
    const f = document.createElement("span"); f.className = "file";
    const over = Object.keys(D.overrides).map((k) => k + "=" + D.overrides[k]).join(" ");
    f.textContent = D.file + (over ? "  (--set " + over + ")" : "") + (D.source ? "  \u00b7  " + D.source : "");
    title.appendChild(f);
    const params = comma(t.params_without_aux) + (t.params !== t.params_without_aux ? " (" + comma(t.params) + " with aux)" : "");
    const items = [["input", "[" + t.input.join(", ") + "]"], ["params", params], ["MACs", human(t.macs)],
      ["activations", human(4 * t.activations, "B") + " fp32"], ["peak", human(4 * t.peak_activations, "B")],
      ["depth", String(t.depth)], ["receptive field", rfText(t.receptive_field) + " px"], ["ops", String(D.nodes.length - 1)],
      ["outputs", t.outputs.map((o) => o.name + " [" + o.shape.join(", ") + "]" + (o.aux ? " aux" : "")).join(", ")]];
    const totals = document.getElementById("totals");
    for (const [k, v] of items) {
      const s = document.createElement("span");
      s.dataset.total = k;
      const kb = document.createElement("b"); kb.textContent = k + " ";
      s.appendChild(kb); s.appendChild(document.createTextNode(v));
      totals.appendChild(s);
    }
  }
  function levelButtons() {
    const box = document.getElementById("levels");
    box.textContent = "";
    for (let level = 1; level <= maxLevel + 1; level++) {
      const b = document.createElement("button");
      b.textContent = level > maxLevel ? "all" : String(level);
      b.dataset.level = String(level);
      const on = [...groups.values()].every((g) => g.open === g.depth < level);
      if (on) b.classList.add("on");
      b.addEventListener("click", () => { openTo(level); heavy(() => { relayout(null); fit(false); }); });
      box.appendChild(b);
    }
  }
  function legend() {
    const box = document.getElementById("legend");
    const cats = [...new Set(D.nodes.map((n) => n.cat))];
    for (const c of cats) {
      const s = document.createElement("span");
      const i = document.createElement("i");
      s.appendChild(i); s.appendChild(document.createTextNode(c.replace("_", " ")));
      box.appendChild(s);
      const probe = el("rect", { class: "cat-" + c }, svg);
      i.style.background = getComputedStyle(probe).fill;
      probe.remove();
    }
  }
  document.getElementById("fit").addEventListener("click", () => fit(true));
  document.getElementById("collapse-all").addEventListener("click", () => { openTo(0); relayout(null); fit(true); });
  document.getElementById("expand-all").addEventListener("click", () => { openTo(maxLevel + 1); heavy(() => { relayout(null); fit(false); }); });

  header();
  legend();
  firstView();
  relayout(null);
  fit(false);
  if (D.select) goTo(D.select);
  else if (location.hash.length > 1) goTo(decodeURIComponent(location.hash.slice(1)));
  window.addEventListener("hashchange", () => { const k = decodeURIComponent(location.hash.slice(1)); if (nodes.has(k) || groups.has(k)) goTo(k); });
  // For scripts and tests: the page's state, and the same actions the buttons take.
  window.archcView = {
    state: state, groups: groups, nodes: nodes,
    boxes: () => [...layout.boxes.keys()],
    open: (path, open) => setOpen(path, open !== false),
    level: (n) => { openTo(n); relayout(null); fit(false); },
    select: goTo,
  };
  document.body.dataset.ready = "1";
})();
