// coldtrace administration pages: send each form as JSON with the anti-forgery header the
// server requires, show the answer, and show a new token once. Our own code, no library.
"use strict";

const HEADERS = { "Content-Type": "application/json", "X-Coldtrace-Action": "1" };

async function send(url, body) {
  const response = await fetch(url, {
    method: "POST", headers: HEADERS, body: JSON.stringify(body), credentials: "same-origin",
  });
  let payload = null;
  try { payload = await response.json(); } catch (_err) { payload = null; }
  if (!response.ok) {
    const detail = payload && payload.detail !== undefined ? payload.detail : response.statusText;
    const text = typeof detail === "string" ? detail
      : Array.isArray(detail) ? detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ")
        : JSON.stringify(detail);
    throw new Error(text);
  }
  return payload;
}

// GS1 check digit: the same rule the server applies (protocols/gs1/check_digit.py), so a typo
// is caught while typing; the server checks again.
function gtinValid(gtin) {
  if (!/^[0-9]{14}$/.test(gtin)) return false;
  let sum = 0;
  for (let i = 0; i < 13; i += 1) sum += Number(gtin[i]) * (i % 2 === 0 ? 3 : 1);
  return (10 - (sum % 10)) % 10 === Number(gtin[13]);
}

function fields(form) {
  const row = {};
  let reason = "";
  for (const el of form.elements) {
    if (!el.name || el.type === "submit" || el.type === "file") continue;
    if (el.name === "reason") { reason = el.value; continue; }
    row[el.name] = el.type === "checkbox" ? (el.checked ? "true" : "false") : el.value;
  }
  return { row, reason };
}

function showToken(result, token) {
  const code = document.createElement("code");
  code.className = "admin-token";
  code.textContent = token;
  result.append(" ", code, " (copy it now: it is not shown again)");
}

async function onSubmit(event) {
  const form = event.target.closest("form.admin-form");
  if (!form) return;
  event.preventDefault();
  const result = form.querySelector(".admin-result");
  const confirmText = form.dataset.confirm;
  if (confirmText && !window.confirm(confirmText)) return;
  const gtin = form.querySelector("input[data-gtin]");
  if (gtin && !gtinValid(gtin.value)) {
    result.textContent = "GTIN: the check digit does not match (or it is not 14 digits).";
    result.className = "admin-result error";
    return;
  }
  result.textContent = "Saving…";
  result.className = "admin-result";
  try {
    const answer = await send(form.dataset.url, fields(form));
    result.textContent = answer.message || "Saved.";
    if (answer.token) {
      showToken(result, answer.token);
      return;  // stay: the token must be copied before the page changes
    }
    const url = new URL(window.location.href);
    url.searchParams.set("saved", answer.message || "done");
    window.location.assign(url.toString());
  } catch (err) {
    result.textContent = `Not saved: ${err.message}`;
    result.className = "admin-result error";
  }
}

function reportTable(report) {
  const table = document.createElement("table");
  table.className = "admin-table";
  table.innerHTML = "<thead><tr><th>Line</th><th>Key</th><th>Would be</th><th>Error or change</th></tr></thead>";
  const body = document.createElement("tbody");
  for (const row of report.rows) {
    const tr = document.createElement("tr");
    if (row.error) tr.className = "error";
    const change = row.error || (row.outcome === "updated"
      ? Object.keys(row.after).filter((k) => JSON.stringify(row.before[k]) !== JSON.stringify(row.after[k]))
        .map((k) => `${k}: ${JSON.stringify(row.before[k])} → ${JSON.stringify(row.after[k])}`).join("; ")
      : "");
    for (const text of [row.line, row.key, row.outcome || "refused", change]) {
      const td = document.createElement("td");
      td.textContent = String(text);
      tr.append(td);
    }
    body.append(tr);
  }
  table.append(body);
  return table;
}

async function onCsv(event) {
  const form = event.target.closest("form.admin-csv");
  if (!form) return;
  event.preventDefault();
  const apply = event.submitter && event.submitter.value === "apply";
  const result = form.querySelector(".admin-result");
  const report = form.querySelector(".admin-report");
  const file = form.elements.file.files[0];
  if (!file) return;
  result.textContent = apply ? "Applying…" : "Checking…";
  result.className = "admin-result";
  report.replaceChildren();
  try {
    const text = await file.text();
    const kind = form.elements.kind.value;
    const answer = await send(`/ui/admin/api/import/${encodeURIComponent(kind)}?apply=${apply}`,
      { csv: text, reason: form.elements.reason.value });
    const counts = `${answer.created} to create, ${answer.updated} to update, ${answer.unchanged} unchanged, ${answer.errors} refused`;
    result.textContent = answer.applied ? `Applied: ${counts}.`
      : answer.errors ? `Nothing applied: ${counts}. Fix the refused lines and try again.`
        : `Dry run: ${counts}. Nothing was written.`;
    result.className = answer.errors ? "admin-result error" : "admin-result";
    report.append(reportTable(answer));
  } catch (err) {
    result.textContent = `Refused: ${err.message}`;
    result.className = "admin-result error";
  }
}

document.addEventListener("submit", (event) => {
  if (event.target.closest("form.admin-csv")) onCsv(event);
  else onSubmit(event);
});
