/* kgemo HTML pages: reading the embedded data, labels with confidence bars, and the evidence graph.
   Part of kgemo, Apache-2.0; no third-party code.

   Text is data, never markup: every string from the data reaches the page through textContent or setAttribute
   on an attribute named here (never an event handler, href or src); nothing is parsed as HTML. */
"use strict";
const KG = (function () {
  const T0 = performance.now();
  const SVGNS = "http://www.w3.org/2000/svg";

  // -- DOM helpers -----------------------------------------------------------------------------------------
  // el("div", {class: "x", text: "...", title: "...", attrs: {...}, style: {...}, on: {click: f}}, child...)
  function build(node, props, children) {
    if (props) {
      for (const key of Object.keys(props)) {
        const v = props[key];
        if (v === undefined || v === null) continue;
        if (key === "class") node.setAttribute("class", v);
        else if (key === "text") node.textContent = String(v);
        else if (key === "attrs") for (const a of Object.keys(v)) node.setAttribute(a, String(v[a]));
        else if (key === "style") for (const s of Object.keys(v)) node.style.setProperty(s, String(v[s]));
        else if (key === "on") for (const ev of Object.keys(v)) node.addEventListener(ev, v[ev]);
        else throw new Error("unknown property " + key);
      }
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return node;
  }
  function el(tag, props, ...children) { return build(document.createElement(tag), props, children); }
  function svg(tag, props, ...children) { return build(document.createElementNS(SVGNS, tag), props, children); }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function fmt(x, d) { return (x === null || x === undefined) ? "–" : Number(x).toFixed(d === undefined ? 3 : d); }
  function pct(x) { return (100 * x).toFixed(0) + "%"; }
  function nice(name) { return String(name).replace(/_/g, " "); }
  function cut(s, n) { s = String(s); return s.length > n ? s.slice(0, n - 1) + "…" : s; }

  // -- the data ------------------------------------------------------------------------------------------
  function load() {
    const raw = JSON.parse(document.getElementById("kgemo-data").textContent);
    const S = raw.strings;
    const cache = new Array(raw.utterances.length);
    function utt(i) {
      if (cache[i]) return cache[i];
      const r = raw.utterances[i];
      const u = {
        row: i, conv: r[0], index: r[1], speaker: S[r[2]], text: r[3], pred: r[4], probs: r[5], gold: r[6],
        err: r[7], truncated: !!r[10],
        concepts: r[8].map(c => ({
          concept: S[c[0]], token: S[c[1]], relation: S[c[2]], direction: c[3] ? "in" : "out", weight: c[4],
          attention: c[5], tokenWeight: c[6], confidence: c[7], vad: [c[8], c[9], c[10]], vadKnown: !!c[11],
          source: S[c[12]]})),
        events: r[9].map(e => ({head: S[e[0]], relation: S[e[1]], tail: S[e[2]], score: e[3], source: S[e[4]],
          provider: S[e[5]]})),
      };
      cache[i] = u;
      return u;
    }
    const convs = raw.conversations.map(c => ({id: c[0], dataset: c[1], start: c[2], n: c[3]}));
    return {raw, utt, convs, tasks: raw.tasks, labels: raw.labels, strings: S, parsedAt: performance.now()};
  }

  // -- colours -------------------------------------------------------------------------------------------
  const EMOTION = {
    neutral: "#8c959f", "no emotion": "#8c959f", joy: "#d4a000", happiness: "#d4a000", happy: "#d4a000",
    joyful: "#d4a000", excited: "#e8710a", surprise: "#f0883e", anger: "#cf222e", angry: "#cf222e",
    mad: "#cf222e", frustrated: "#bf3989", sadness: "#0969da", sad: "#0969da", disgust: "#1a7f37",
    fear: "#8250df", scared: "#8250df", peaceful: "#1b7c83", powerful: "#953800", positive: "#1a7f37",
    negative: "#cf222e",
  };
  const PALETTE = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#e8710a", "#1b7c83", "#bf3989", "#953800",
    "#57606a", "#d4a000", "#0550ae", "#116329", "#a40e26", "#6639ba", "#7d4e00"];
  function labelColor(task, label) {
    const k = String(label).toLowerCase();
    if (Object.prototype.hasOwnProperty.call(EMOTION, k)) return EMOTION[k];
    const i = (D && D.labels[task]) ? D.labels[task].indexOf(label) : -1;
    return PALETTE[(i >= 0 ? i : hash(k)) % PALETTE.length];
  }
  function hash(s) { let h = 7; for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0; return h; }
  function mix(a, b, t) { return a.map((x, i) => Math.round(x + (b[i] - x) * t)); }
  // Valence 0 (negative, red) → 0.5 (neutral, light grey) → 1 (positive, green); NRC-VAD scale.
  function valenceRGB(v) {
    const red = [215, 48, 39], mid = [240, 240, 240], green = [26, 152, 80];
    v = Math.max(0, Math.min(1, v));
    return v < 0.5 ? mix(red, mid, v / 0.5) : mix(mid, green, (v - 0.5) / 0.5);
  }
  function rgb(c) { return "rgb(" + c.join(",") + ")"; }
  function ink(c) { return (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]) > 150 ? "#1f2328" : "#ffffff"; }
  const RELATION = {xReact: "#e8710a", oReact: "#0969da", xIntent: "#8250df", xWant: "#1b7c83", oWant: "#116329",
    xEffect: "#bf3989", oEffect: "#57606a", xNeed: "#953800", xAttr: "#0550ae"};
  function relationColor(rel) {
    return Object.prototype.hasOwnProperty.call(RELATION, rel) ? RELATION[rel] : PALETTE[hash(rel) % PALETTE.length];
  }
  const SPEAKERS = ["#0969da", "#bf3989", "#1a7f37", "#8250df", "#e8710a", "#1b7c83", "#953800", "#57606a"];

  // -- the tooltip: one element, filled with text lines --------------------------------------------------
  let tip = null;
  function showTip(ev, lines) {
    if (!tip) { tip = el("div", {attrs: {id: "kg-tip", role: "tooltip"}}); document.body.appendChild(tip); }
    clear(tip);
    for (const [k, v] of lines) {
      tip.appendChild(el("div", null, k ? el("span", {class: "k", text: k}) : null, String(v)));
    }
    tip.style.display = "block";
    const x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    const y = Math.min(ev.clientY + 14, window.innerHeight - tip.offsetHeight - 8);
    tip.style.left = Math.max(4, x) + "px";
    tip.style.top = Math.max(4, y) + "px";
  }
  function hideTip() { if (tip) tip.style.display = "none"; }
  // Hover shows the numbers; an SVG <title> keeps them for screen readers.
  function hover(node, lines) {
    node.addEventListener("mouseenter", ev => showTip(ev, lines()));
    node.addEventListener("mousemove", ev => showTip(ev, lines()));
    node.addEventListener("mouseleave", hideTip);
    return node;
  }

  // -- labels with confidence bars -----------------------------------------------------------------------
  function bar(p, color) {
    const width = pct(Math.max(0, Math.min(1, p)));
    return el("span", {class: "bar"}, el("span", {style: {width: width, background: color}}));
  }
  // One "task: label ▬▬ 0.62" per task (what a chat turn and a gallery row show).
  function labelChips(u, tasks) {
    const box = el("div", {class: "labels"});
    tasks.forEach((task, t) => {
      const label = D.labels[task][u.pred[t]], p = u.probs[t][u.pred[t]], color = labelColor(task, label);
      const chip = el("span", {class: "label", attrs: {"data-task": task}},
        tasks.length > 1 ? el("span", {class: "task", text: task}) : null,
        el("span", {class: "chip pred", text: label, style: {background: color}}),
        bar(p, color), el("span", {class: "prob", text: fmt(p, 2)}));
      box.appendChild(chip);
    });
    if (u.truncated) box.appendChild(el("span", {class: "badge", text: "truncated",
      attrs: {title: "longer than the sentence encoder's limit: only its start was encoded"}}));
    return box;
  }
  // The whole probability table of each task (evidence panel), gold marked when known.
  function distribution(u) {
    const box = el("div");
    D.tasks.forEach((task, t) => {
      box.appendChild(el("h3", {text: task + " probabilities"}));
      const grid = el("div", {class: "dist"});
      const order = D.labels[task].map((_, k) => k).sort((a, b) => u.probs[t][b] - u.probs[t][a]);
      for (const k of order) {
        const label = D.labels[task][k];
        const cls = "name" + (k === u.pred[t] ? " pred" : "") + (u.gold.length && u.gold[t] === k ? " gold" : "");
        grid.appendChild(el("span", {class: cls, text: label}));
        const b = bar(u.probs[t][k], labelColor(task, label));
        hover(b, () => [["", label], ["p", fmt(u.probs[t][k])]]);
        grid.appendChild(el("span", null, b, " ", el("span", {class: "prob", text: fmt(u.probs[t][k], 3)})));
      }
      box.appendChild(grid);
    });
    return box;
  }

  // -- the evidence graph --------------------------------------------------------------------------------
  // A layered layout, left to right: the utterance; its content words (edge thickness β, the word's share of
  // the utterance's knowledge); their ConceptNet concepts (thickness α, the concept's share of the word's
  // neighbours; fill = valence); below them the ATOMIC events, linked straight from the utterance (thickness =
  // retrieval score; colour = relation).
  const ROW = 26, TOP = 30, X_UTT = 6, W_UTT = 150, X_TOK = 200, W_TOK = 118, X_CON = 378, W_CON = 232, WIDTH = 618;
  function curve(x1, y1, x2, y2) {
    const mx = (x1 + x2) / 2;
    return "M" + x1 + "," + y1 + " C" + mx + "," + y1 + " " + mx + "," + y2 + " " + x2 + "," + y2;
  }
  function graph(u) {
    const tokens = [], byToken = new Map();
    for (const c of u.concepts) {
      let t = byToken.get(c.token);
      if (!t) { t = {name: c.token, beta: c.tokenWeight, concepts: []}; byToken.set(c.token, t); tokens.push(t); }
      t.concepts.push(c);
    }
    let y = TOP;
    for (const t of tokens) {
      for (const c of t.concepts) { c.y = y; y += ROW; }
      t.y = (t.concepts[0].y + t.concepts[t.concepts.length - 1].y) / 2;
    }
    const eventsTop = y + (tokens.length ? 14 : 0);
    y = eventsTop + (u.events.length ? 28 : 0);
    for (const e of u.events) { e.y = y; y += ROW; }
    const height = Math.max(y, TOP + ROW) + 4;
    const uy = (TOP + Math.max(y - ROW, TOP)) / 2;
    const root = svg("svg", {class: "graph", attrs: {viewBox: "0 0 " + WIDTH + " " + height, role: "img",
      "aria-label": "evidence graph", "data-kind": "graph"}});
    root.style.maxWidth = WIDTH * 1.35 + "px";
    const edges = svg("g"), nodes = svg("g");
    root.appendChild(edges); root.appendChild(nodes);
    root.appendChild(svg("text", {class: "col-head", text: "utterance", attrs: {x: X_UTT, y: 14}}));
    if (tokens.length) {
      root.appendChild(svg("text", {class: "col-head", text: "words (β)", attrs: {x: X_TOK, y: 14}}));
      root.appendChild(svg("text", {class: "col-head", text: "ConceptNet concepts (α)", attrs: {x: X_CON, y: 14}}));
    }
    if (u.events.length) {
      root.appendChild(svg("text", {class: "col-head", text: "ATOMIC events (score)",
        attrs: {x: X_CON, y: eventsTop + 11}}));
    }
    const predLines = () => D.tasks.map((task, t) =>
      [task, D.labels[task][u.pred[t]] + " " + fmt(u.probs[t][u.pred[t]], 3)]);

    function box(x, yc, w, fill, stroke, text, kind, name, lines, dashed) {
      const g = svg("g", {class: "node", attrs: {"data-kind": kind, "data-name": name}});
      const r = svg("rect", {attrs: {x: x, y: yc - 10, width: w, height: 20, rx: 5, fill: fill, stroke: stroke,
        "stroke-width": 1.2}});
      if (dashed) r.setAttribute("stroke-dasharray", "3,2");
      g.appendChild(r);
      g.appendChild(svg("text", {text: text, attrs: {x: x + 6, y: yc + 4, fill: fill === "#ffffff" ? "#1f2328" :
        ink(hexOrRgb(fill))}}));
      g.appendChild(svg("title", {text: lines().map(l => (l[0] ? l[0] + ": " : "") + l[1]).join("\n")}));
      hover(g, lines);
      nodes.appendChild(g);
      return g;
    }
    function edge(d, width, color, kind, lines) {
      const p = svg("path", {class: "edge", attrs: {d: d, stroke: color, "stroke-width": width.toFixed(2),
        "stroke-opacity": 0.55, "data-kind": kind}});
      p.appendChild(svg("title", {text: lines().map(l => (l[0] ? l[0] + ": " : "") + l[1]).join("\n")}));
      hover(p, lines);
      edges.appendChild(p);
    }

    box(X_UTT, uy, W_UTT, "#ffffff", "#1f2328", cut(u.text, 22), "utterance", u.text,
      () => [["speaker", u.speaker], ["", u.text]].concat(predLines()));
    for (const t of tokens) {
      edge(curve(X_UTT + W_UTT, uy, X_TOK, t.y), 1 + 10 * t.beta, "#57606a", "word-edge",
        () => [["word", t.name], ["β (word weight)", fmt(t.beta)]]);
      box(X_TOK, t.y, W_TOK, "#eaeef2", "#8c959f", cut(nice(t.name), 17), "word", t.name,
        () => [["word", nice(t.name)], ["β (word weight)", fmt(t.beta)], ["concepts shown", t.concepts.length]]);
      for (const c of t.concepts) {
        const col = c.vadKnown ? valenceRGB(c.vad[0]) : [255, 255, 255];
        const stmt = c.direction === "out" ? nice(c.token) + " —" + c.relation + "→ " + nice(c.concept)
          : nice(c.concept) + " —" + c.relation + "→ " + nice(c.token);
        const lines = () => [["concept", nice(c.concept)], ["", stmt], ["w (utterance weight)", fmt(c.weight)],
          ["α (attention)", fmt(c.attention)], ["β (word weight)", fmt(c.tokenWeight)],
          ["confidence", fmt(c.confidence)],
          c.vadKnown ? ["valence / arousal / dominance", fmt(c.vad[0]) + " / " + fmt(c.vad[1]) + " / " + fmt(c.vad[2])]
            : ["VAD", "not in NRC-VAD"], ["source", c.source]];
        const stroke = c.vadKnown ? rgb(valenceRGB(c.vad[0])) : "#8c959f";
        edge(curve(X_TOK + W_TOK, t.y, X_CON, c.y), 1 + 8 * c.attention, stroke, "concept-edge", lines);
        box(X_CON, c.y, W_CON, rgb(col), c.vadKnown ? "rgba(0,0,0,.35)" : "#8c959f",
          cut(nice(c.concept), 24) + "  " + fmt(c.weight, 2), "concept", c.concept, lines, !c.vadKnown);
      }
    }
    for (const e of u.events) {
      const color = relationColor(e.relation);
      const lines = () => [["relation", e.relation], ["event", e.tail], ["matched ATOMIC head", e.head],
        ["score", fmt(e.score)], ["provider", e.provider + " (" + e.source + ")"]];
      edge(curve(X_UTT + W_UTT, uy, X_CON, e.y), 1 + 6 * Math.max(0, e.score), color, "event-edge", lines);
      box(X_CON, e.y, W_CON, "#ffffff", color, cut(e.relation + ": " + e.tail, 34), "event", e.tail, lines, false);
      nodes.lastChild.querySelector("rect").setAttribute("stroke-width", 2.2);
    }
    return root;
  }
  function hexOrRgb(s) {
    const m = /^rgb\((\d+),(\d+),(\d+)\)$/.exec(s);
    if (m) return [+m[1], +m[2], +m[3]];
    if (/^#[0-9a-f]{6}$/i.test(s)) return [1, 3, 5].map(i => parseInt(s.slice(i, i + 2), 16));
    return [255, 255, 255];
  }
  function legend(u) {
    const box = el("div", {class: "legend"});
    if (u.concepts.length) {
      box.appendChild(el("span", null, "valence", el("span", {class: "ramp"}), "negative → positive"));
      const dashed = el("span", {class: "swatch", style: {background: "#fff", "border-style": "dashed"}});
      box.appendChild(el("span", null, dashed, "no VAD entry"));
      box.appendChild(el("span", {text: "edge thickness = model weight (β, α, score); hover for numbers"}));
    }
    const rels = [...new Set(u.events.map(e => e.relation))];
    for (const r of rels) {
      box.appendChild(el("span", null, el("span", {class: "swatch", style: {background: relationColor(r)}}), r));
    }
    return box;
  }

  // -- the evidence panel: header, probability tables, graph, concept table, event list ------------------
  function evidence(target, u, heading) {
    clear(target);
    const root = el("section", {class: "evidence", attrs: {"data-row": u.row}});
    root.appendChild(el("div", {class: "ev-head"}, el("span", {class: "speaker", text: u.speaker}),
      el("span", {class: "task", text: "  " + (heading || ("turn " + (u.index + 1)))})));
    root.appendChild(el("div", {class: "ev-text", text: u.text}));
    root.appendChild(distribution(u));
    root.appendChild(el("h3", {text: "knowledge evidence"}));
    if (!u.concepts.length && !u.events.length) {
      root.appendChild(el("p", {class: "hint", text: "No knowledge evidence for this utterance: the model uses no " +
        "ConceptNet knowledge, or none of its words is in the knowledge base, and no ATOMIC event was retrieved."}));
    } else {
      root.appendChild(graph(u));
      root.appendChild(legend(u));
    }
    if (u.concepts.length) {
      root.appendChild(el("h3", {text: "ConceptNet concepts"}));
      const table = el("table", {class: "ev concepts"});
      table.appendChild(el("thead", null, el("tr", null, ...["concept", "via word", "relation", "w", "α", "β",
        "valence"].map(h => el("th", {text: h})))));
      const body = el("tbody");
      for (const c of u.concepts) {
        const name = el("span", {class: "concept-name", text: nice(c.concept)});
        body.appendChild(el("tr", {attrs: {"data-concept": c.concept}},
          el("td", null, el("span", {class: "swatch",
            style: {background: c.vadKnown ? rgb(valenceRGB(c.vad[0])) : "#fff"}}), name),
          el("td", {text: nice(c.token)}),
          el("td", {text: (c.direction === "out" ? "→ " : "← ") + c.relation}),
          el("td", {class: "num", text: fmt(c.weight)}), el("td", {class: "num", text: fmt(c.attention)}),
          el("td", {class: "num", text: fmt(c.tokenWeight)}),
          el("td", {class: "num", text: c.vadKnown ? fmt(c.vad[0], 2) : "–"})));
      }
      table.appendChild(body);
      root.appendChild(table);
    }
    if (u.events.length) {
      root.appendChild(el("h3", {text: "ATOMIC events"}));
      const list = el("ul", {class: "events"});
      for (const e of u.events) {
        list.appendChild(el("li", {attrs: {"data-relation": e.relation}},
          el("span", {class: "chip", text: e.relation, style: {background: relationColor(e.relation)}}), " ",
          el("span", {class: "event-tail", text: e.tail}), " ",
          el("span", {class: "from", text: "(matched “" + e.head + "”, score " + fmt(e.score, 2) + ")"})));
      }
      root.appendChild(list);
    }
    target.appendChild(root);
    return root;
  }

  // -- header and timing ---------------------------------------------------------------------------------
  function modelLine(raw) {
    const m = raw.model || {};
    const parts = [];
    for (const k of ["name", "model", "graph", "encoder"]) if (m[k]) parts.push([k, String(m[k])]);
    const box = el("div", {class: "meta"});
    parts.forEach(([k, v], i) => {
      box.appendChild(document.createTextNode((i ? " · " : "") + k + " "));
      box.appendChild(el("b", {text: v}));
    });
    return box;
  }
  // Marks the end of the first render (ms since navigation start): `rendered` when the DOM is built, `painted` in
  // the frame after the one that drew it (a second requestAnimationFrame runs only once the first frame is out).
  function markRendered(extra) {
    const timing = Object.assign({scriptStart: T0, parsed: D ? D.parsedAt : null, rendered: performance.now()},
      extra || {});
    window.kgemoTiming = timing;
    requestAnimationFrame(() => requestAnimationFrame(() => {
      timing.painted = performance.now();
      document.body.setAttribute("data-ready", "1");
    }));
  }
  function hashParams() {
    const out = {};
    for (const part of location.hash.replace(/^#/, "").split("&")) {
      const [k, v] = part.split("=");
      if (k) out[decodeURIComponent(k)] = v === undefined ? "" : decodeURIComponent(v);
    }
    return out;
  }

  let D = null;
  function init() { D = load(); return D; }
  return {el, svg, clear, fmt, nice, cut, bar, init, labelColor, relationColor, valenceRGB, SPEAKERS, labelChips,
    evidence, graph, modelLine, markRendered, hashParams, hover, hideTip, get data() { return D; }};
})();
