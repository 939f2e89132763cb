// coldtrace dashboard: live sections over server-sent events, acknowledge and QA disposition.
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
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
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
  document.body.dataset.updated = String(Date.now());
}

function flushPendingSections() {
  const held = Object.assign({}, pendingSections);
  if (Object.keys(held).length) swapSections(held);
}

function connect() {
  if (!document.querySelector("[data-section]") || !window.EventSource) return;
  const live = document.getElementById("live");
  const source = new EventSource("/ui/events");
  source.addEventListener("sections", (event) => swapSections(JSON.parse(event.data)));
  source.addEventListener("open", () => { if (live) live.hidden = false; });
  source.addEventListener("error", () => {
    if (live) live.hidden = true;
    // CLOSED (not CONNECTING) means the server refused the stream: the session ended (signed
    // out elsewhere, idle, expired). Show the sign-in page rather than a silently stale board.
    if (source.readyState === EventSource.CLOSED) window.location.assign("/ui/login");
  });
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

async function onSubmit(event) {
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
  for (const b of form.querySelectorAll("button")) b.disabled = true;
  form.classList.add("busy");
  try {
    await postJson(`/ui/lots/${form.dataset.lot}/disposition`, { decision, reason });
    output.textContent = decision === "release" ? "Released." : "Rejected.";
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
    for (const b of form.querySelectorAll("button")) b.disabled = false;
    form.classList.remove("busy");
  }
}

document.addEventListener("click", onClick);
document.addEventListener("submit", onSubmit);
document.addEventListener("focusout", () => setTimeout(flushPendingSections, 0));
document.addEventListener("DOMContentLoaded", connect);
