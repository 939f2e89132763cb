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

function swapSections(sections) {
  for (const [name, html] of Object.entries(sections)) {
    const target = document.querySelector(`[data-section="${name}"]`);
    if (!target) continue;
    const title = target.querySelector("h2");
    // Keep a disposition form the user is typing in: replace the section only when idle.
    if (target.contains(document.activeElement) && document.activeElement.tagName === "INPUT") {
      target.dataset.stale = "1";
      continue;
    }
    target.innerHTML = (title ? title.outerHTML : "") + html;
    delete target.dataset.stale;
  }
  document.body.dataset.updated = String(Date.now());
}

function connect() {
  if (!document.querySelector("[data-section]") || !window.EventSource) return;
  const live = document.getElementById("live");
  const source = new EventSource("/ui/events");
  source.addEventListener("sections", (event) => swapSections(JSON.parse(event.data)));
  source.addEventListener("open", () => { if (live) live.hidden = false; });
  source.addEventListener("error", () => { if (live) live.hidden = true; });
}

async function onClick(event) {
  const button = event.target.closest("button.ack");
  if (!button) return;
  event.preventDefault();
  button.disabled = true;
  const ids = button.dataset.alerts.split(",").map(Number);
  try {
    await postJson("/ui/alerts/acknowledge", { alert_ids: ids });
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
  try {
    await postJson(`/ui/lots/${form.dataset.lot}/disposition`, { decision, reason });
    output.textContent = decision === "release" ? "Released." : "Rejected.";
    form.classList.add("done");
    form.elements.reason.blur();
  } catch (err) {
    output.textContent = err.message;
    for (const b of form.querySelectorAll("button")) b.disabled = false;
  }
}

document.addEventListener("click", onClick);
document.addEventListener("submit", onSubmit);
document.addEventListener("DOMContentLoaded", connect);
