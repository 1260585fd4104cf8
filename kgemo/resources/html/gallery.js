/* kgemo split gallery: predicted vs gold for every utterance of a split, filters, confusion matrix, per-class F1,
   and the evidence of any utterance. Part of kgemo, Apache-2.0. Needs evidence.js (KG).

   Only the visible page of rows is in the DOM (50 by default); filtering walks the compact arrays, so a test
   split of thousands of utterances stays responsive. */
(function () {
  const D = KG.init();
  const {el, clear, fmt} = KG;
  const raw = D.raw, U = raw.utterances, N = U.length;
  const ERR = raw.errors.map(e => e[0]);                 // code → name
  const ERR_TEXT = raw.errors.map(e => e[1]);
  const datasets = raw.datasets || [];
  const convDataset = D.convs.map(c => c.dataset);
  const lower = new Array(N);
  const SIZES = [50, 100, 250, "all"];
  const state = {task: 0, dataset: "", gold: -1, pred: -1, err: "", q: "", page: 0, size: 50, selected: -1};
  let filtered = [];

  // -- header --------------------------------------------------------------------------------------------
  const app = document.getElementById("app");
  app.appendChild(el("h1", {text: (datasets.join(" + ") || "split") + " " + raw.split + ": predicted vs gold"}));
  app.appendChild(KG.modelLine(raw));
  app.appendChild(el("div", {class: "meta"}, el("b", {text: String(N)}), " utterances in ",
    el("b", {text: String(D.convs.length)}), " conversations · model from ", el("b", {text: raw.source || "?"})));

  // -- summary: scores, per-class table, confusion matrix ------------------------------------------------
  const summary = el("div", {class: "summary panel", attrs: {id: "summary"}});
  const left = el("div"), right = el("div");
  summary.appendChild(left); summary.appendChild(right);
  app.appendChild(summary);

  function scope() {
    const s = raw.scores || {};
    return (state.dataset && s[state.dataset]) ? state.dataset : "all";
  }
  function taskName() { return D.tasks[state.task]; }

  function renderSummary() {
    clear(left); clear(right);
    const task = taskName(), sc = (raw.scores[scope()] || {})[task];
    left.appendChild(el("h2", {text: task + (scope() === "all" ? "" : " · " + scope())}));
    if (!sc) { left.appendChild(el("p", {class: "hint", text: "No gold labels for this task here."})); return; }
    const scores = el("div", {class: "scores", attrs: {id: "scores"}});
    scores.appendChild(el("span", {class: "score"}, sc.metric.replace(/_/g, " "), el("b", {text: fmt(sc.score, 2)})));
    for (const k of ["accuracy", "macro_f1", "weighted_f1"]) {
      if (k === sc.metric) continue;
      scores.appendChild(el("span", {class: "score"}, k.replace(/_/g, " "), el("b", {text: fmt(sc.averages[k], 2)})));
    }
    scores.appendChild(el("span", {class: "score"}, "labelled", el("b", {text: String(sc.support)})));
    left.appendChild(scores);
    const table = el("table", {class: "grid", attrs: {id: "per-class"}});
    const heads = [["class", ""], ["precision", "num"], ["recall", "num"], ["F1", "num"], ["", ""], ["support", "num"],
      ["predicted", "num"]];
    table.appendChild(el("thead", null, el("tr", null, ...heads.map(([h, cls]) => el("th", {class: cls, text: h})))));
    const body = el("tbody");
    for (const label of D.labels[task]) {
      const c = sc.classes[label];
      body.appendChild(el("tr", {attrs: {"data-label": label}},
        el("td", null, el("span", {class: "chip", text: label, style: {background: KG.labelColor(task, label)}})),
        el("td", {class: "num", text: fmt(c.precision, 1)}), el("td", {class: "num", text: fmt(c.recall, 1)}),
        el("td", {class: "num f1", text: fmt(c.f1, 1)}), el("td", null, KG.bar(c.f1 / 100, KG.labelColor(task, label))),
        el("td", {class: "num", text: String(c.support)}), el("td", {class: "num", text: String(c.predicted)})));
    }
    table.appendChild(body);
    left.appendChild(table);
    const errs = el("div", {class: "meta", attrs: {id: "error-counts"}});
    ERR.forEach((name, k) => {
      if (k) errs.appendChild(document.createTextNode(" · "));
      errs.appendChild(el("span", {class: "err " + name, text: name.replace(/_/g, " ") + " " + (sc.errors[name] || 0),
        attrs: {title: ERR_TEXT[k]}}));
    });
    left.appendChild(errs);
    renderMatrix(task, sc);
  }

  function renderMatrix(task, sc) {
    const labels = D.labels[task], cm = sc.confusion;
    right.appendChild(el("h2", {text: "confusion matrix"}));
    right.appendChild(el("div", {class: "axis", text: "rows: gold · columns: predicted · shade: share of the gold " +
      "row · click a cell to list those utterances"}));
    const table = el("table", {class: "cm", attrs: {id: "confusion"}});
    const head = el("tr", null, el("th"));
    for (const l of labels) head.appendChild(el("th", {class: "rot"}, el("span", {text: l})));
    table.appendChild(el("thead", null, head));
    const body = el("tbody");
    cm.forEach((row, g) => {
      const total = row.reduce((a, b) => a + b, 0);
      const tr = el("tr", null, el("th", {text: labels[g], style: {"text-align": "right"}}));
      row.forEach((n, p) => {
        const share = total ? n / total : 0;
        const base = g === p ? [26, 127, 55] : [207, 34, 46];
        const active = state.gold === g && state.pred === p;
        const td = el("td", {text: String(n), class: (g === p ? "diag" : "") + (active ? " active" : ""),
          attrs: {"data-gold": labels[g], "data-pred": labels[p]},
          style: {background: "rgba(" + base.join(",") + "," + (0.08 + 0.85 * share).toFixed(3) + ")",
            color: share > 0.5 ? "#fff" : "#1f2328"}});
        KG.hover(td, () => [["gold", labels[g]], ["predicted", labels[p]], ["utterances", n],
          ["share of gold " + labels[g], (100 * share).toFixed(1) + "%"]]);
        td.addEventListener("click", () => {
          KG.hideTip();
          Object.assign(state, {gold: g, pred: p, err: "", page: 0});
          syncControls(); update(true);
          listPanel.scrollIntoView({block: "start"});
        });
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    table.appendChild(body);
    right.appendChild(table);
  }

  // -- filters -------------------------------------------------------------------------------------------
  function select(id, label, options, onChange) {
    const s = el("select", {attrs: {id: id}});
    for (const [value, text] of options) s.appendChild(el("option", {text: text, attrs: {value: value}}));
    s.addEventListener("change", () => onChange(s.value));
    return [s, el("label", null, label, s)];
  }
  const filters = el("div", {class: "filters", attrs: {id: "filters"}});
  const controls = {};
  if (D.tasks.length > 1) {
    const [s, l] = select("f-task", "task", D.tasks.map((t, k) => [k, t]), v => {
      Object.assign(state, {task: +v, gold: -1, pred: -1, page: 0});
      rebuildLabelOptions(); renderSummary(); update(true);
    });
    controls.task = s; filters.appendChild(l);
  }
  if (datasets.length > 1) {
    const [s, l] = select("f-dataset", "dataset", [["", "all"]].concat(datasets.map(d => [d, d])), v => {
      Object.assign(state, {dataset: v, page: 0}); renderSummary(); update(true); });
    controls.dataset = s; filters.appendChild(l);
  }
  const [goldSel, goldLabel] = select("f-gold", "gold", [], v => {
    Object.assign(state, {gold: +v, page: 0}); update(true); });
  const [predSel, predLabel] = select("f-pred", "predicted", [], v => {
    Object.assign(state, {pred: +v, page: 0}); update(true); });
  const [errSel, errLabel] = select("f-error", "error type",
    [["", "any"], ["errors", "any error"]].concat(ERR.map((name, k) => [String(k), ERR_TEXT[k]])),
    v => { Object.assign(state, {err: v, page: 0}); update(true); });
  const search = el("input", {attrs: {type: "search", id: "f-text", placeholder: "text or speaker contains…",
    "aria-label": "search"}});
  let searchTimer = null;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      Object.assign(state, {q: search.value.trim().toLowerCase(), page: 0}); update(true);
    }, 120);
  });
  const reset = el("button", {text: "reset", attrs: {id: "f-reset", type: "button"}});
  reset.addEventListener("click", () => {
    Object.assign(state, {dataset: "", gold: -1, pred: -1, err: "", q: "", page: 0});
    search.value = ""; syncControls(); renderSummary(); update(true);
  });
  const count = el("span", {class: "count", attrs: {id: "count"}});
  for (const x of [goldLabel, predLabel, errLabel, el("label", null, search), reset, count]) filters.appendChild(x);
  app.appendChild(filters);

  function rebuildLabelOptions() {
    for (const s of [goldSel, predSel]) {
      clear(s);
      s.appendChild(el("option", {text: "any", attrs: {value: -1}}));
      D.labels[taskName()].forEach((l, k) => s.appendChild(el("option", {text: l, attrs: {value: k}})));
    }
  }
  function syncControls() {
    goldSel.value = String(state.gold); predSel.value = String(state.pred); errSel.value = state.err;
    if (controls.task) controls.task.value = String(state.task);
    if (controls.dataset) controls.dataset.value = state.dataset;
    sizeSel.value = String(state.size === Infinity ? "all" : state.size);
  }

  // -- rows and the detail panel -------------------------------------------------------------------------
  const rowsBody = el("tbody", {attrs: {id: "rows"}});
  const rowsTable = el("table", {class: "rows"},
    el("colgroup", null, el("col", {style: {width: "104px"}}), el("col"), el("col", {style: {width: "84px"}}),
      el("col", {style: {width: "120px"}}), el("col", {style: {width: "78px"}})),
    el("thead", null, el("tr", null,
      ...["turn", "utterance", "gold", "predicted", "result"].map(h => el("th", {text: h})))),
    rowsBody);
  const prev = el("button", {text: "‹ previous", attrs: {id: "prev", type: "button"}});
  const next = el("button", {text: "next ›", attrs: {id: "next", type: "button"}});
  const pageInfo = el("span", {attrs: {id: "page"}});
  const [sizeSel, sizeLabel] = select("f-size", "rows per page", SIZES.map(s => [String(s), String(s)]), v => {
    Object.assign(state, {size: v === "all" ? Infinity : +v, page: 0}); update(false); });
  prev.addEventListener("click", () => { state.page--; update(false); });
  next.addEventListener("click", () => { state.page++; update(false); });
  const listPanel = el("div", {class: "panel", attrs: {id: "list"}},
    el("div", {class: "pager"}, prev, pageInfo, next, sizeLabel), rowsTable,
    el("div", {class: "pager"}, el("span", {class: "hint", text: "click a row for its conversation and evidence"})));
  const detail = el("div", {class: "panel sticky", attrs: {id: "detail", "aria-live": "polite"}},
    el("p", {class: "hint", text: "Click an utterance to see its conversation and the knowledge behind its label."}));
  app.appendChild(el("div", {class: "layout wide"}, listPanel, detail));

  function matches(i) {
    const r = U[i], t = state.task;
    if (state.dataset && convDataset[r[0]] !== state.dataset) return false;
    if (state.gold >= 0 && r[6][t] !== state.gold) return false;
    if (state.pred >= 0 && r[4][t] !== state.pred) return false;
    if (state.err === "errors") { const e = ERR[r[7][t]]; if (e === "correct" || e === "unlabelled") return false; }
    else if (state.err !== "" && r[7][t] !== +state.err) return false;
    if (state.q) {
      if (lower[i] === undefined) lower[i] = (r[3] + "\u0000" + D.strings[r[2]]).toLowerCase();
      if (lower[i].indexOf(state.q) < 0) return false;
    }
    return true;
  }
  function update(refilter) {
    if (refilter) { filtered = []; for (let i = 0; i < N; i++) if (matches(i)) filtered.push(i); }
    const pages = Math.max(1, Math.ceil(filtered.length / state.size));
    state.page = Math.max(0, Math.min(state.page, pages - 1));
    count.textContent = "showing " + filtered.length + " of " + N + " utterances";
    pageInfo.textContent = "page " + (state.page + 1) + " of " + pages;
    prev.disabled = state.page === 0; next.disabled = state.page >= pages - 1;
    for (const td of right.querySelectorAll("td.active")) td.classList.remove("active");
    if (state.gold >= 0 && state.pred >= 0) {
      const cell = right.querySelectorAll("tbody tr")[state.gold];
      if (cell) { const td = cell.querySelectorAll("td")[state.pred]; if (td) td.classList.add("active"); }
    }
    renderRows();
  }
  function renderRows() {
    const t = state.task, task = taskName();
    const from = state.page * (state.size === Infinity ? 0 : state.size);
    const to = state.size === Infinity ? filtered.length : Math.min(filtered.length, from + state.size);
    const frag = document.createDocumentFragment();
    for (let k = from; k < to; k++) {
      const i = filtered[k], r = U[i], c = D.convs[r[0]];
      const gold = r[6][t], pred = r[4][t], err = ERR[r[7][t]];
      const goldLabel = gold >= 0 ? D.labels[task][gold] : null, predLabel = D.labels[task][pred];
      const where = (datasets.length > 1 ? c.dataset + " " : "") + c.id + " #" + (r[1] + 1);
      const predColor = KG.labelColor(task, predLabel), p = r[5][t][pred];
      const tr = el("tr", {class: "row" + (i === state.selected ? " selected" : ""),
        attrs: {"data-row": i, tabindex: 0}},
        el("td", {class: "pos"}, el("div", {text: where}),
          el("div", {class: "speaker", text: D.strings[r[2]]})),
        el("td", {class: "text", text: r[3]}),
        el("td", null, goldLabel === null ? el("span", {class: "hint", text: "–"}) :
          el("span", {class: "chip gold", text: goldLabel, style: {"border-color": KG.labelColor(task, goldLabel)}})),
        el("td", null, el("span", {class: "chip pred", text: predLabel, style: {background: predColor}}),
          " ", el("span", {class: "prob", text: fmt(p, 2)}), el("div", null, KG.bar(p, predColor))),
        el("td", null, el("span", {class: "err " + err, text: err.replace(/_/g, " "),
          attrs: {title: ERR_TEXT[r[7][t]]}})));
      frag.appendChild(tr);
    }
    clear(rowsBody);
    if (to <= from) {
      rowsBody.appendChild(el("tr", null,
        el("td", {class: "hint", text: "no utterance matches these filters", attrs: {colspan: 5}})));
    }
    rowsBody.appendChild(frag);
  }
  rowsBody.addEventListener("click", ev => {
    const tr = ev.target.closest("tr.row");
    if (tr) show(+tr.getAttribute("data-row"));
  });
  rowsBody.addEventListener("keydown", ev => {
    const tr = ev.target.closest("tr.row");
    if (!tr) return;
    if (ev.key === "Enter") show(+tr.getAttribute("data-row"));
    else if (ev.key === "ArrowDown" && tr.nextElementSibling) { ev.preventDefault(); tr.nextElementSibling.focus(); }
    else if (ev.key === "ArrowUp" && tr.previousElementSibling) {
      ev.preventDefault(); tr.previousElementSibling.focus();
    }
  });

  function show(i) {
    state.selected = i;
    for (const tr of rowsBody.querySelectorAll("tr.selected")) tr.classList.remove("selected");
    const mine = rowsBody.querySelector('tr[data-row="' + i + '"]');
    if (mine) mine.classList.add("selected");
    KG.hideTip();
    const u = D.utt(i), c = D.convs[u.conv], t = state.task, task = taskName();
    clear(detail);
    detail.appendChild(el("div", {class: "meta"}, "conversation ", el("b", {text: c.id}),
      c.dataset ? " (" + c.dataset + ")" : "", " · turn " + (u.index + 1) + " of " + c.n));
    const context = el("ol", {class: "context", attrs: {id: "context"}});
    let current = null;
    for (let j = c.start; j < c.start + c.n; j++) {
      const r = U[j], gold = r[6][t], pred = r[4][t];
      const li = el("li", {class: j === i ? "selected" : "", attrs: {"data-row": j}},
        el("span", {class: "gp"}, gold >= 0 ? el("span", {class: "chip gold", text: D.labels[task][gold],
          style: {"border-color": KG.labelColor(task, D.labels[task][gold])}}) : null, " ",
          el("span", {class: "chip", text: D.labels[task][pred],
            style: {background: KG.labelColor(task, D.labels[task][pred])}})),
        el("span", {class: "speaker", text: D.strings[r[2]] + ":"}), el("span", {text: r[3]}));
      li.addEventListener("click", () => show(j));
      if (j === i) current = li;
      context.appendChild(li);
    }
    detail.appendChild(el("h3", {text: "conversation (gold outlined, predicted filled)"}));
    detail.appendChild(context);
    const ev = el("div");
    detail.appendChild(ev);
    KG.evidence(ev, u, "turn " + (u.index + 1) + " · " + ERR_TEXT[u.err[t]]);
    if (current) context.scrollTop = current.offsetTop - context.clientHeight / 2;
  }

  // -- start: #task=…&dataset=…&gold=…&pred=…&error=…&size=…&row=… preset the view ----------------------
  const h = KG.hashParams();
  if (h.task && D.tasks.indexOf(h.task) >= 0) state.task = D.tasks.indexOf(h.task);
  if (h.dataset && datasets.indexOf(h.dataset) >= 0) state.dataset = h.dataset;
  rebuildLabelOptions();
  if (h.gold) state.gold = D.labels[taskName()].indexOf(h.gold);
  if (h.pred) state.pred = D.labels[taskName()].indexOf(h.pred);
  if (h.error === "errors") state.err = "errors";
  else if (ERR.indexOf(h.error) >= 0) state.err = String(ERR.indexOf(h.error));
  if (h.size) state.size = h.size === "all" ? Infinity : (parseInt(h.size, 10) > 0 ? parseInt(h.size, 10) : 50);
  syncControls();
  renderSummary();
  update(true);
  const row = parseInt(h.row || "", 10);
  if (row >= 0 && row < N) show(row);
  KG.markRendered({rows: rowsBody.childElementCount});
})();
