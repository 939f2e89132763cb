// coldtrace dashboard: live sections over server-sent events, acknowledge, QA disposition and
// closing an ended excursion (unit page).
// Our own code, no library: the server renders every section; this file only swaps them in
// and posts the user's actions (with the anti-forgery header the server requires).
"use strict";

const ACTION_HEADERS = { "Content-Type": "application/json", "X-Coldtrace-Action": "1" };

async function postJson(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: ACTION_HEADERS,
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  let payload = null;
  try {
    payload = await response.json();
  } catch (_err) {
    payload = null;
  }
  if (!response.ok) {
    const detail = payload && payload.detail ? payload.detail : response.statusText;
    // A validation error is a list: say each field's problem, not the raw JSON.
    const listed = Array.isArray(detail)
      ? detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(" ")}: ${d.msg}`)
        .join("; ")
      : null;
    const message = typeof detail === "string" ? detail
      : listed || (detail && detail.message) || JSON.stringify(detail);
    const error = new Error(message);
    error.detail = detail;
    throw error;
  }
  return payload;
}

// Sections held back while the user types in a disposition form or an acknowledgement comment,
// or waits for the form's answer: they
// are applied once the form is idle, so an answer ("Released.") is seen before its row goes.
const pendingSections = {};

function sectionBusy(target) {
  if (target.querySelector("form.disposition.busy")) return true;
  const active = document.activeElement;
  if (!active || !target.contains(active)) return false;
  return Boolean(active.closest("form.disposition") || active.matches("input.ack-note"));
}

function swapSections(sections) {
  for (const [name, html] of Object.entries(sections)) {
    const target = document.querySelector(`[data-section="${name}"]`);
    if (!target) continue;
    if (sectionBusy(target)) {
      pendingSections[name] = html;
      target.dataset.stale = "1";
      continue;
    }
    const title = target.querySelector("h2");
    target.innerHTML = (title ? title.outerHTML : "") + html;
    delete target.dataset.stale;
    delete pendingSections[name];
  }
  localizeTimes();
  document.body.dataset.updated = String(Date.now());
}

function flushPendingSections() {
  const held = Object.assign({}, pendingSections);
  if (Object.keys(held).length) swapSections(held);
}

// --- never show stale data as live ---------------------------------------------------------
// The page remembers when it last heard from the server (a "sections" or "alive" event). When
// the stream errors, or nothing arrives within the window the server announced, a banner says
// "connection lost, data as of HH:MM" (the site's time zone), and every unit card whose
// reading is older than its silence interval is greyed with its age, also while disconnected.
const freshness = {
  heardAt: null, // Date.now() when the last event arrived
  serverOffsetMs: 0, // server clock minus this browser's clock, from "alive" events
  withinMs: 60000, // the next event is due within this (the server says so in "alive")
  lost: false,
};

function serverNow() {
  return Date.now() + freshness.serverOffsetMs;
}

function siteZone() {
  const holder = document.querySelector("[data-timezone]");
  return holder ? holder.dataset.timezone : undefined;
}

function clockTime(ms) {
  const zone = siteZone();
  const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  try {
    return new Intl.DateTimeFormat("en-GB", zone ? { ...options, timeZone: zone } : options)
      .format(new Date(ms)) + (zone ? ` ${zone}` : "");
  } catch (_err) { // an unknown zone name: the browser's own
    return new Intl.DateTimeFormat("en-GB", options).format(new Date(ms));
  }
}

// Times are rendered in UTC by the server (<time datetime>); shown here in the site's zone, with
// its abbreviation (CET, CEST), so nobody has to convert. The UTC time stays in the title.
function localTime(date, zone) {
  const parts = {};
  const format = new Intl.DateTimeFormat("en-GB", {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
    minute: "2-digit", hourCycle: "h23", timeZoneName: "short",
  });
  for (const part of format.formatToParts(date)) parts[part.type] = part.value;
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`
    + ` ${parts.timeZoneName}`;
}

function localizeTimes() {
  const zone = siteZone();
  if (!zone) return;
  for (const element of document.querySelectorAll("main time[datetime]:not([data-local])")) {
    const date = new Date(element.getAttribute("datetime"));
    if (Number.isNaN(date.getTime())) continue;
    const own = element.closest("[data-timezone]"); // a site's section or row: its own zone
    try {
      element.textContent = localTime(date, own ? own.dataset.timezone : zone);
    } catch (_err) { // an unknown zone name: leave the UTC time
      return;
    }
    element.title = `${element.getAttribute("datetime")} (UTC)`;
    element.dataset.local = "1";
  }
}

function age(ms) {
  const minutes = Math.floor(ms / 60000);
  if (minutes < 1) return `${Math.max(0, Math.floor(ms / 1000))} s`;
  if (minutes < 120) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return hours < 48 ? `${hours} h ${String(minutes % 60).padStart(2, "0")} min`
    : `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

function markStaleUnits() {
  const now = serverNow();
  for (const card of document.querySelectorAll("article.unit[data-last]")) {
    const last = Date.parse(card.dataset.last);
    const silence = Number(card.dataset.silenceS) * 1000;
    let note = card.querySelector(".age");
    if (Number.isNaN(last) || !(now - last > silence)) {
      card.classList.remove("stale");
      if (note) note.remove();
      continue;
    }
    card.classList.add("stale");
    if (!note) {
      note = document.createElement("div");
      note.className = "age";
      card.appendChild(note);
    }
    note.textContent = `no data for ${age(now - last)}`;
  }
}

function showConnection() {
  const live = document.getElementById("live");
  let banner = document.getElementById("connection-lost");
  if (live) live.hidden = freshness.lost || freshness.heardAt === null;
  if (!freshness.lost) {
    if (banner) banner.remove();
    return;
  }
  if (!banner) {
    banner = document.createElement("div");
    banner.id = "connection-lost";
    banner.className = "connection-lost";
    banner.setAttribute("role", "alert");
    document.body.insertBefore(banner, document.querySelector("main"));
  }
  banner.textContent = freshness.heardAt === null
    ? "connection lost, no live data yet"
    : `connection lost, data as of ${clockTime(freshness.heardAt + freshness.serverOffsetMs)}`;
}

function heard(serverAt) {
  if (serverAt) freshness.serverOffsetMs = Date.parse(serverAt) - Date.now();
  freshness.heardAt = Date.now();
  freshness.lost = false;
  showConnection();
  markStaleUnits();
}

function connect() {
  if (!document.querySelector("[data-section]") || !window.EventSource) return;
  let source = null;
  const open = () => {
    source = new EventSource("/ui/events");
    source.addEventListener("sections", (event) => {
      swapSections(JSON.parse(event.data));
      heard(null);
    });
    source.addEventListener("alive", (event) => {
      const data = JSON.parse(event.data);
      if (data.within_s) freshness.withinMs = data.within_s * 1000 + 5000;
      heard(data.at);
    });
    source.addEventListener("error", () => {
      // CLOSED (not CONNECTING) means the server refused the stream: the session ended (signed
      // out elsewhere, idle, expired). Show the sign-in page rather than a silently stale board.
      if (source.readyState === EventSource.CLOSED) window.location.assign("/ui/login");
      freshness.lost = true;
      showConnection();
    });
  };
  open();
  // A connection that died without an error (a dropped network) is noticed by its silence.
  setInterval(() => {
    if (freshness.heardAt !== null && Date.now() - freshness.heardAt > freshness.withinMs) {
      freshness.lost = true;
      showConnection();
      source.close(); // and start again: the first event of a new stream carries everything
      open();
    }
    markStaleUnits();
  }, 5000);
  markStaleUnits();
}

async function onClick(event) {
  const button = event.target.closest("button.ack");
  if (!button) return;
  event.preventDefault();
  button.disabled = true;
  const ids = button.dataset.alerts.split(",").map(Number);
  // An optional comment typed beside the button (the alarms section has one).
  const input = button.parentElement ? button.parentElement.querySelector("input.ack-note") : null;
  const note = input && input.value.trim() ? input.value.trim().slice(0, 500) : null;
  try {
    await postJson("/ui/alerts/acknowledge", { alert_ids: ids, note });
    button.replaceWith(document.createTextNode("✓ acknowledged"));
  } catch (err) {
    button.disabled = false;
    button.title = err.message;
    button.classList.add("failed");
  }
}

function text(form, name) {
  const field = form.elements[name];
  const value = field ? field.value.trim() : "";
  return value || null;
}

// Closing an ended excursion: root cause and corrective action from the API's lists, and at
// action level the e-signature. The page is drawn again afterwards, showing the closure.
async function onCloseExcursion(form) {
  const output = form.querySelector("output");
  const f = form.elements;
  const signing = Boolean(f.sign_password);
  if (!f.root_cause.value) {
    output.textContent = "Choose the root cause.";
    return;
  }
  if (signing && !text(form, "corrective_action")) {
    output.textContent = "Choose the corrective action.";
    return;
  }
  if (signing && (!text(form, "sign_username") || !f.sign_password.value)) {
    output.textContent = "Sign with your user name and password.";
    return;
  }
  const body = {
    root_cause: f.root_cause.value,
    root_cause_detail: text(form, "root_cause_detail"),
    corrective_action: text(form, "corrective_action"),
    corrective_action_detail: text(form, "corrective_action_detail"),
    comment: text(form, "comment"),
    signature: signing ? { username: text(form, "sign_username"), password: f.sign_password.value,
      code: text(form, "sign_code"), meaning: f.sign_meaning.value } : null,
  };
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const closed = await postJson(`/ui/excursions/${form.dataset.excursion}/closure`, body);
    if (signing) f.sign_password.value = "";  // typed again for every signature
    const signed = closed.signatures.length
      ? ", signed: " + closed.signatures[closed.signatures.length - 1].manifestation : "";
    output.textContent = `Closed by ${closed.closed_by}${signed}.`;
    form.classList.add("done");
    setTimeout(() => window.location.reload(), 1200);
  } catch (err) {
    output.textContent = err.message;
    button.disabled = false;
  }
}

async function onSubmit(event) {
  const closing = event.target.closest("form.closure");
  if (closing) {
    event.preventDefault();
    await onCloseExcursion(closing);
    return;
  }
  const form = event.target.closest("form.disposition");
  if (!form) return;
  event.preventDefault();
  const decision = event.submitter ? event.submitter.value : "release";
  const reason = form.elements.reason.value.trim();
  const output = form.querySelector("output");
  if (!reason) {
    output.textContent = "A reason is required.";
    return;
  }
  // An excursion affecting the lot is still open: a release needs the box ticked (the server
  // refuses it otherwise, and records the confirmation).
  const confirmBox = form.elements.confirm_open_excursion;
  if (decision === "release" && confirmBox && !confirmBox.checked) {
    output.textContent = "An excursion is still open: tick the box to release anyway.";
    confirmBox.focus();
    return;
  }
  const confirmOpen = decision === "release" && Boolean(confirmBox && confirmBox.checked);
  // The e-signature: name and password typed again now, and the meaning (21 CFR 11.200).
  const f = form.elements;
  const meaning = f.sign_meaning.value;
  if (!f.sign_username.value.trim() || !f.sign_password.value) {
    output.textContent = "Sign with your user name and password.";
    return;
  }
  if ((decision === "reject") !== (meaning === "rejected")) {
    output.textContent = decision === "reject" ? "A reject is signed as 'Rejected'."
      : "A release is signed as 'Released' or 'Approved'.";
    f.sign_meaning.focus();
    return;
  }
  const signature = { username: f.sign_username.value.trim(), password: f.sign_password.value,
    meaning, code: f.sign_code.value.trim() || null };
  for (const b of form.querySelectorAll("button")) b.disabled = true;
  form.classList.add("busy");
  try {
    const answer = await postJson(`/ui/lots/${form.dataset.lot}/disposition`,
      { decision, reason, confirm_open_excursion: confirmOpen, signature });
    f.sign_password.value = "";  // typed again for every signature
    output.textContent = (decision === "release" ? "Released" : "Rejected")
      + ", signed: " + answer.signature;
    form.classList.add("done");
    form.elements.reason.blur();
    // Leave the answer on screen a moment before the live update removes the row.
    setTimeout(() => {
      if (form.contains(document.activeElement)) document.activeElement.blur();
      form.classList.remove("busy");
      flushPendingSections();
    }, 1500);
  } catch (err) {
    output.textContent = err.message;
    if (err.detail && err.detail.confirm === "open_excursion" && !confirmBox) addConfirm(form);
    for (const b of form.querySelectorAll("button")) b.disabled = false;
    form.classList.remove("busy");
  }
}

// The excursion opened after the page was drawn: add the confirmation the server asks for.
function addConfirm(form) {
  const label = document.createElement("label");
  label.className = "confirm-open";
  const box = document.createElement("input");
  box.type = "checkbox";
  box.name = "confirm_open_excursion";
  label.append(box, " I know an excursion is still open and release anyway");
  form.insertBefore(label, form.querySelector("button"));
}

document.addEventListener("click", onClick);
document.addEventListener("submit", onSubmit);
document.addEventListener("focusout", () => setTimeout(flushPendingSections, 0));
document.addEventListener("DOMContentLoaded", connect);
document.addEventListener("DOMContentLoaded", localizeTimes);
