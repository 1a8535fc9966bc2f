/*
 * The relais dashboard page.  Every request carries the token the page was
 * opened with; everything shown is built as DOM nodes (never as HTML text),
 * so nothing the broker holds can run as code.
 */
"use strict";

const TOKEN = document.body.dataset.token;
const SVGNS = "http://www.w3.org/2000/svg";

function api(path, params) {
  const q = new URLSearchParams(params || {});
  q.set("token", TOKEN);
  return path + "?" + q.toString();
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children)
    e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children)
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function when(ms) {
  if (!ms) return "—";
  return new Date(ms).toLocaleString("fr-FR", { timeZone: "Europe/Paris",
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
}

function age(now, ms) {
  if (!ms) return "—";
  const d = Math.floor((now - ms) / 86400000);
  return d >= 1 ? d + " j" : Math.floor((now - ms) / 3600000) + " h";
}

/* A figure as the table shows it: integers as they are, days to 0.01. */
function figure(v) {
  if (v === null || v === undefined) return "—";
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

/* ---- pages ---------------------------------------------------------- */

function show(page) {
  for (const s of document.querySelectorAll(".page"))
    s.classList.toggle("active", s.id === "page-" + page);
  for (const b of document.querySelectorAll("nav button"))
    b.classList.toggle("active", b.dataset.page === page);
}

/* A person's id that opens their file (the broker says whether we may). */
function participantLink(id) {
  const a = el("a", { href: "#", class: "participant" }, id);
  a.addEventListener("click", (e) => { e.preventDefault(); openParticipant(id); });
  return a;
}

/* ---- alerts (coordinators), live ------------------------------------ */

async function act(action, id, note) {
  const msg = document.getElementById("alerts-msg");
  const params = { id };
  if (note) params.note = note;
  const r = await fetch(api("/api/alerts/" + action, params), { method: "POST" });
  const body = await r.json();
  msg.textContent = r.ok ? "" : (body.message || body.error || "refusé");
}

function alertRow(a) {
  const note = el("input", { class: "note", placeholder: "note (sans nom)", maxLength: 280 });
  const ack = el("button", { type: "button", class: "ack" }, "Prendre en compte");
  const resolve = el("button", { type: "button", class: "resolve" }, "Résoudre");
  ack.disabled = a.status !== "open";
  ack.addEventListener("click", () => act("ack", a.id, note.value));
  resolve.addEventListener("click", () => act("resolve", a.id, note.value));
  return el("tr", { class: a.status, "data-alert": a.id },
    el("td", {}, a.id), el("td", {}, participantLink(a.participant)), el("td", {}, a.rule),
    el("td", { class: "sev-" + a.severity }, a.severity), el("td", {}, a.qpv),
    el("td", { class: "status" }, a.status), el("td", {}, when(a.opened_at)),
    el("td", {}, (a.agents || []).join(", ")),
    el("td", { class: "note-text" }, a.note || ""),
    el("td", {}, note, " ", ack, " ", resolve));
}

/* What a live update may change in an alert's row; the note being typed stays. */
function updateAlertRow(tr, a) {
  tr.className = a.status;
  tr.querySelector("td.status").textContent = a.status;
  tr.cells[7].textContent = (a.agents || []).join(", ");
  tr.querySelector("td.note-text").textContent = a.note || "";
  tr.querySelector("button.ack").disabled = a.status !== "open";
}

/*
 * Rows already shown are updated in place, not rebuilt: a coordinator
 * typing a note keeps the text and the focus when another alert arrives.
 */
function renderAlerts(list) {
  const tbody = document.querySelector("#alerts tbody");
  const shown = new Map([...tbody.rows].map((tr) => [tr.dataset.alert, tr]));
  list.forEach((a, i) => {
    let tr = shown.get(String(a.id));
    if (tr) {
      updateAlertRow(tr, a);
      shown.delete(String(a.id));
    } else {
      tr = alertRow(a);
    }
    if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
  });
  for (const gone of shown.values()) gone.remove();
  document.getElementById("alerts-empty").hidden = list.length > 0;
  document.getElementById("alert-count").textContent = "(" + list.length + ")";
}

/* ---- inbox (partners), live ----------------------------------------- */

function renderInbox(data) {
  const now = data.now;
  fill(document.querySelector("#inbox-to-answer tbody"), data.to_answer.map((r) =>
    el("tr", { "data-referral": r.referral }, el("td", {}, r.referral), el("td", {}, participantLink(r.participant)),
      el("td", {}, r.from), el("td", {}, age(now, r.sent_at)), el("td", {}, when(r.expires_at)))));
  fill(document.querySelector("#inbox-sent tbody"), data.sent.map((r) =>
    el("tr", { "data-referral": r.referral }, el("td", {}, r.referral), el("td", {}, participantLink(r.participant)),
      el("td", {}, r.to), el("td", {}, age(now, r.sent_at)), el("td", {}, when(r.expires_at)))));
  fill(document.querySelector("#inbox-alerts tbody"), data.alerts.map((a) =>
    el("tr", { "data-alert": a.id }, el("td", {}, a.id), el("td", {}, a.participant),
      el("td", {}, a.rule), el("td", {}, a.status), el("td", {}, age(now, a.opened_at)))));
}

function follow(coordinator) {
  const live = document.getElementById("live");
  const source = new EventSource(api("/api/events"));
  source.onopen = () => { live.textContent = "● en direct"; };
  source.onerror = () => { live.textContent = "○ reconnexion…"; };
  source.onmessage = (e) => {
    const data = JSON.parse(e.data);
    if (coordinator) renderAlerts(data); else renderInbox(data);
    document.body.dataset.version = String(Number(document.body.dataset.version || 0) + 1);
  };
}

/* ---- a participant's file ------------------------------------------- */

function table(head, rows, attrs) {
  return el("table", attrs, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c))))));
}

const CONTACT_KEYS = ["name", "phone", "email", "address", "best_time", "note"];

/*
 * The contact details sealed into the person's referrals, as this
 * dashboard's agent opened them: the broker gives a sealed contact only
 * to the referral's target, and librelais opens it with the agent's key,
 * so only the target's dashboard has rows here.
 */
function contactRows(timeline) {
  return timeline.filter((x) => x.type === "referral.sent" && (x.contact || x.contact_error))
    .map((x) => {
      const c = x.contact && typeof x.contact === "object" ? x.contact : null;
      const text = c ? CONTACT_KEYS.filter((k) => c[k]).map((k) => c[k]).join(" · ")
        : "illisible : " + x.contact_error;
      return el("tr", { "data-referral": x.referral }, el("td", {}, x.referral),
        el("td", {}, x.sender), el("td", { class: "contact" }, text));
    });
}

async function openParticipant(id) {
  show("participant");
  document.getElementById("participant-id").value = id;
  const out = document.getElementById("participant");
  const r = await fetch(api("/api/participant", { id }));
  const body = await r.json();
  if (!r.ok) { out.replaceChildren(el("p", { class: "msg" }, body.error)); return; }
  const s = body.state;
  const contacts = contactRows(body.timeline);
  out.replaceChildren(
    el("dl", {}, el("dt", {}, "Personne"), el("dd", {}, s.participant),
      el("dt", {}, "QPV"), el("dd", {}, s.qpv), el("dt", {}, "Étape"), el("dd", { "data-field": "phase" }, s.phase),
      el("dt", {}, "Repérée"), el("dd", {}, when(s.identified_at) + " par " + (s.identified_by || "—")),
      el("dt", {}, "Dernière activité"), el("dd", {}, when(s.last_activity)),
      el("dt", {}, "Référents"), el("dd", {}, s.referents.map((x) => x.agent).join(", ") || "aucun")),
    el("h3", {}, "Orientations"),
    table(["Orientation", "De", "Vers", "État", "Envoyée", "Réponse"], s.referrals.map((x) =>
      [x.id, x.from, x.to, x.state, when(x.sent_at), when(x.answered_at)]),
      { id: "participant-referrals" }),
    ...(contacts.length === 0 ? [] : [
      el("h3", {}, "Coordonnées (ouvertes avec votre clé)"),
      el("table", { id: "participant-contacts" },
        el("thead", {}, el("tr", {}, ...["Orientation", "De", "Coordonnées"].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...contacts))]),
    el("h3", {}, "Freins"),
    table(["Frein", "État", "Repéré", "Levé"], s.barriers.map((x) =>
      [x.code, x.state, when(x.identified_at), when(x.lifted_at)])),
    el("h3", {}, "Alertes ouvertes"),
    table(["Alerte", "Règle", "Statut", "Ouverte"], s.open_alerts.map((x) =>
      [x.id, x.rule, x.status, when(x.opened_at)])),
    el("h3", {}, "Historique"),
    table(["Date", "Événement", "Par"], body.timeline.map((x) =>
      [when(x.occurred_at), x.type, x.sender])));
}

/* ---- indicators ------------------------------------------------------ */

/* The period, and the QPV and breakdown where the form has them. */
function periodParams(prefix) {
  const value = (what) => {
    const e = document.getElementById(prefix + "-" + what);
    return e ? e.value.trim() : "";
  };
  const params = {};
  if (value("period")) params.period = value("period");
  else if (value("from") && value("to")) { params.from = value("from"); params.to = value("to"); }
  if (value("qpv")) params.qpv = value("qpv");
  if (value("by")) params.by = value("by");
  return params;
}

/* "Du 2026-01-01 au 2026-12-31, QPV Sanitas" */
function periodTitle(body) {
  return "Du " + body.from + " au " + body.to + (body.qpv ? ", QPV " + body.qpv_name : "");
}

/* One bar chart per family of counts (outreach.*, contact.*, ...). */
function charts(columns, total) {
  const families = new Map();
  columns.forEach((c, i) => {
    const v = total[i];
    if (!Number.isInteger(v) || c.endsWith("_days")) return;
    const fam = c.split(".")[0];
    if (!families.has(fam)) families.set(fam, []);
    families.get(fam).push([c.slice(fam.length + 1) || c, v]);
  });
  const out = [];
  for (const [fam, bars] of families) {
    if (bars.length < 2) continue;
    const max = Math.max(1, ...bars.map((b) => b[1]));
    const h = 18 * bars.length + 24;
    const g = svg("svg", { width: 360, height: h, role: "img", "aria-label": fam, class: "chart", "data-family": fam },
      svg("text", { x: 4, y: 14 }, fam));
    bars.forEach(([name, v], i) => {
      const y = 22 + i * 18;
      g.append(svg("text", { x: 4, y: y + 11 }, name),
        svg("rect", { class: "chart-bar", x: 150, y, height: 13, width: Math.round(170 * v / max) }),
        svg("text", { x: 154 + Math.round(170 * v / max), y: y + 11 }, String(v)));
    });
    out.push(g);
  }
  return out;
}

async function loadReport() {
  const params = periodParams("report");
  const msg = document.getElementById("report-msg");
  document.getElementById("report-csv").href = api("/api/report.csv", params);
  const r = await fetch(api("/api/report", params));
  const body = await r.json();
  if (!r.ok) { msg.textContent = body.error; return; }
  msg.textContent = periodTitle(body);
  document.getElementById("report-charts").replaceChildren(...charts(body.columns, body.total));
  /* A column per QPV, agent or month, headed by its name; then the total. */
  fill(document.querySelector("#report thead"), [el("tr", {}, el("th", {}, "Mesure"),
    ...body.rows.map((g) => el("th", { "data-group": g.group }, g.name || "(sans QPV)")),
    el("th", {}, "Total"))]);
  fill(document.querySelector("#report tbody"), body.columns.map((c, i) =>
    el("tr", {}, el("td", {}, c),
      ...body.rows.map((g) => el("td", { class: "num", "data-group": g.group }, figure(g.values[i]))),
      el("td", { class: "num", "data-measure": c }, figure(body.total[i])))));
  document.getElementById("report").dataset.loaded = body.from + "/" + body.to;
}

/* ---- the referral-flow map ------------------------------------------ */

function flowValue(columns, values, name) {
  const i = columns.indexOf(name);
  return i < 0 ? null : values[i];
}

/* Declined for any reason: the sum of the declined.<reason> columns. */
function flowDeclined(columns, values) {
  return columns.reduce((n, c, i) => n + (c.startsWith("declined.") ? values[i] : 0), 0);
}

/* What an arrow of the map says when pointed at. */
function flowLabel(data, f) {
  const v = (name) => flowValue(data.columns, f.values, name) || 0;
  return `${f.from_name} → ${f.to_name} : ${v("sent")} envoyées, ${v("accepted")} acceptées, ` +
    `${flowDeclined(data.columns, f.values)} refusées, ${v("expired")} expirées`;
}

function flowMap(data) {
  const agents = [], names = new Map();
  for (const f of data.flows) {
    names.set(f.from, f.from_name);
    names.set(f.to, f.to_name);
    for (const a of [f.from, f.to]) if (!agents.includes(a)) agents.push(a);
  }
  const W = 520, H = 420, R = 160, cx = W / 2, cy = H / 2;
  const pos = new Map(agents.map((a, i) => {
    const t = 2 * Math.PI * i / Math.max(1, agents.length) - Math.PI / 2;
    return [a, [cx + R * Math.cos(t), cy + R * Math.sin(t)]];
  }));
  const max = Math.max(1, ...data.flows.map((f) => flowValue(data.columns, f.values, "sent") || 0));
  const map = svg("svg", { width: W, height: H, role: "img", "aria-label": "flows", id: "flow-svg" },
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
      markerWidth: 6, markerHeight: 6, orient: "auto" }, svg("path", { d: "M0,0 L10,5 L0,10 z", class: "flow-node" }))));
  for (const f of data.flows) {
    const [x1, y1] = pos.get(f.from), [x2, y2] = pos.get(f.to);
    const sent = flowValue(data.columns, f.values, "sent") || 0;
    const mx = (x1 + x2) / 2 + (y2 - y1) * 0.15, my = (y1 + y2) / 2 - (x2 - x1) * 0.15;
    map.append(svg("path", { class: "flow-edge", d: `M${x1},${y1} Q${mx},${my} ${x2},${y2}`,
      "stroke-width": 1 + 7 * sent / max, "marker-end": "url(#arrow)", "data-from": f.from, "data-to": f.to },
      svg("title", {}, flowLabel(data, f))));
  }
  for (const a of agents) {
    const [x, y] = pos.get(a);
    map.append(svg("circle", { class: "flow-node", cx: x, cy: y, r: 6, "data-agent": a }),
      svg("text", { x: x + 9, y: y - 8, "data-agent": a }, names.get(a)));
  }
  return map;
}

async function loadFlows() {
  const params = Object.assign(periodParams("flows"), { flows: "1" });
  const msg = document.getElementById("flows-msg");
  document.getElementById("flows-csv").href = api("/api/report.csv", params);
  const r = await fetch(api("/api/report", params));
  const body = await r.json();
  if (!r.ok) { msg.textContent = body.error; return; }
  msg.textContent = periodTitle(body);
  document.getElementById("flows-map").replaceChildren(flowMap(body));
  fill(document.querySelector("#flows tbody"), body.flows.map((f) => el("tr", {},
    el("td", {}, f.from_name), el("td", {}, f.to_name),
    el("td", { class: "num" }, figure(flowValue(body.columns, f.values, "sent"))),
    el("td", { class: "num" }, figure(flowValue(body.columns, f.values, "accepted"))),
    el("td", { class: "num" }, figure(flowDeclined(body.columns, f.values))),
    el("td", { class: "num" }, figure(flowValue(body.columns, f.values, "expired"))),
    el("td", { class: "num" }, figure(flowValue(body.columns, f.values, "answer_median_days"))))));
}

/* ---- start ----------------------------------------------------------- */

async function start() {
  const role = await (await fetch(api("/api/role"))).json();
  document.body.classList.add(role.coordinator ? "coordinator" : "partner");
  for (const b of document.querySelectorAll("nav button"))
    b.addEventListener("click", () => show(b.dataset.page));
  document.getElementById("participant-form").addEventListener("submit", (e) => {
    e.preventDefault(); openParticipant(document.getElementById("participant-id").value.trim());
  });
  document.getElementById("report-form").addEventListener("submit", (e) => { e.preventDefault(); loadReport(); });
  document.getElementById("flows-form").addEventListener("submit", (e) => { e.preventDefault(); loadFlows(); });
  const hash = location.hash.replace("#", "");
  show(hash || (role.coordinator ? "alerts" : "inbox"));
  follow(role.coordinator);
  document.body.dataset.ready = "yes";
}

start();
