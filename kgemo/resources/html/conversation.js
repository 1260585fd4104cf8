/* kgemo conversation page: chat turns with the predicted label per task and a confidence bar; clicking a turn
   opens its evidence. Part of kgemo, Apache-2.0. Needs evidence.js (KG). */
(function () {
  const D = KG.init();
  const {el, clear} = KG;
  const app = document.getElementById("app");
  let current = -1, selected = -1;

  const title = el("h1", {text: "Conversation annotation"});
  const convSelect = D.convs.length > 1
    ? el("select", {attrs: {id: "conversation", "aria-label": "conversation"}}) : null;
  if (convSelect) {
    D.convs.forEach((c, k) =>
      convSelect.appendChild(el("option", {text: c.id + " (" + c.n + " turns)", attrs: {value: k}})));
    convSelect.addEventListener("change", () => showConversation(+convSelect.value));
  }
  const convLine = el("div", {class: "meta"});
  const chat = el("div", {class: "chat", attrs: {id: "chat", role: "list"}});
  const panel = el("div", {class: "panel sticky", attrs: {id: "evidence", "aria-live": "polite"}});
  app.appendChild(title);
  app.appendChild(KG.modelLine(D.raw));
  if (convSelect) app.appendChild(el("div", {class: "meta"}, "conversation ", convSelect));
  app.appendChild(convLine);
  app.appendChild(el("div", {class: "layout"}, el("div", {class: "panel"}, chat), panel));

  function showConversation(k) {
    current = k;
    if (convSelect) convSelect.value = String(k);
    const c = D.convs[k];
    clear(convLine);
    convLine.appendChild(document.createTextNode("conversation "));
    convLine.appendChild(el("b", {text: c.id}));
    convLine.appendChild(document.createTextNode(
      " · " + c.n + " turns · click a turn to see the knowledge behind its label"));
    clear(chat);
    const sides = new Map();
    for (let i = c.start; i < c.start + c.n; i++) {
      const u = D.utt(i);
      if (!sides.has(u.speaker)) sides.set(u.speaker, sides.size);
      const s = sides.get(u.speaker);
      const color = KG.SPEAKERS[s % KG.SPEAKERS.length];
      const turn = el("div", {class: "turn " + (s % 2 ? "right" : "left"),
        attrs: {role: "button", tabindex: 0, "data-row": i, "aria-label": "turn " + (u.index + 1)}},
        el("div", {class: "who"}, el("span", {class: "avatar", text: (u.speaker.trim()[0] || "?").toUpperCase(),
          style: {background: color}}), el("span", {class: "speaker", text: u.speaker}),
          el("span", {text: "#" + (u.index + 1)})),
        el("div", {class: "bubble"}, el("p", {class: "text", text: u.text}), KG.labelChips(u, D.tasks)));
      turn.addEventListener("click", () => select(i));
      turn.addEventListener("keydown", ev => {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(i); }
      });
      chat.appendChild(turn);
    }
    selected = -1;
    clear(panel);
    panel.appendChild(el("p", {class: "hint", text: "Click a turn to open its evidence: the words the model " +
      "attended to, their ConceptNet concepts (coloured by valence) and ATOMIC events, with the model's weights " +
      "as edge thickness."}));
  }

  function select(i) {
    selected = i;
    for (const t of chat.querySelectorAll(".turn")) t.classList.toggle("selected", +t.getAttribute("data-row") === i);
    KG.hideTip();
    KG.evidence(panel, D.utt(i));
  }

  // #conversation=K&turn=N (1-based turn) opens a conversation / turn directly.
  const h = KG.hashParams();
  const k0 = Math.max(0, Math.min(D.convs.length - 1, parseInt(h.conversation || "0", 10) || 0));
  showConversation(k0);
  const n = parseInt(h.turn || "", 10);
  if (n >= 1 && n <= D.convs[k0].n) select(D.convs[k0].start + n - 1);
  KG.markRendered();
})();
