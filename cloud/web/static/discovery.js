// coldtrace discovery page: mount an unassigned device, browse an OPC-UA server through its
// gateway, read a node as a sensor. Posts carry the anti-forgery header the server requires.
"use strict";

const HEADERS = { "Content-Type": "application/json", "X-Coldtrace-Action": "1" };

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST", headers: HEADERS, body: JSON.stringify(body), credentials: "same-origin",
  });
  let payload = null;
  try { payload = await response.json(); } catch (_err) { payload = null; }
  if (!response.ok) {
    const detail = payload && payload.detail ? payload.detail : response.statusText;
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return payload;
}

function answer(form, text, failed) {
  const span = form.querySelector(".answer");
  span.textContent = text;
  span.classList.toggle("failed", Boolean(failed));
}

async function mount(form) {
  const location = form.elements.location_id.value;
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    await post("/ui/discovery/mount", { device_id: form.dataset.device, location_id: location });
    answer(form, `Mounted at ${location}.`, false);
    form.closest("tr").classList.add("done");
  } catch (err) {
    answer(form, err.message, true);
    button.disabled = false;
  }
}

async function showResult(gateway, requestId) {
  const target = document.getElementById("browse-result");
  for (let i = 0; i < 600; i += 1) {
    const response = await fetch(`/ui/discovery/browse/${encodeURIComponent(gateway)}/${requestId}`,
      { credentials: "same-origin" });
    target.innerHTML = await response.text();
    if (!target.querySelector("[data-pending]")) return;
    await new Promise((resolve) => { setTimeout(resolve, 2000); });
  }
}

async function browse(form) {
  const [gateway, source] = form.elements.source.value.split("|");
  const depth = Number(form.elements.depth.value);
  try {
    const made = await post("/ui/discovery/browse", { gateway_id: gateway, source, depth });
    answer(form, `Asked (request ${made.request_id}).`, false);
    await showResult(gateway, made.request_id);
  } catch (err) {
    answer(form, err.message, true);
  }
}

async function pick(form) {
  const body = {
    gateway_id: form.dataset.gateway, source: form.dataset.source, node_id: form.dataset.node,
    sensor_id: form.elements.sensor_id.value,
  };
  try {
    await post("/ui/discovery/point", body);
    answer(form, `Read as ${body.sensor_id} from the gateway's next configuration.`, false);
  } catch (err) {
    answer(form, err.message, true);
  }
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.matches("form.mount")) { event.preventDefault(); mount(form); }
  else if (form.id === "browse-form") { event.preventDefault(); browse(form); }
  else if (form.matches("form.pick")) { event.preventDefault(); pick(form); }
});
