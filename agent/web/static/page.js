// ingest-agent's page, enhanced: uploads with progress, rows that follow their jobs.
// Everything here is optional: without it the forms post and the pages reload.
"use strict";

(function () {
  const csrf = document.body.dataset.csrf || "";
  const FINAL = new Set(["completed", "failed", "timeout"]);
  const FOLLOW_MS = 400;  // one small JSON read per uploaded file being followed

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- upload: one request per file, a progress bar each, then the job followed live ----
  function followJob(jobId, item) {
    const status = item.querySelector(".status");
    const bar = item.querySelector("progress");
    const message = item.querySelector(".message");
    const link = item.querySelector("a");
    link.href = "/jobs/" + encodeURIComponent(jobId);
    let stopped = false;
    async function tick() {
      if (stopped || document.hidden) { if (!stopped) setTimeout(tick, 5 * FOLLOW_MS); return; }
      try {
        const r = await fetch("/api/v1/jobs/" + encodeURIComponent(jobId),
                              {credentials: "same-origin"});
        if (r.ok) {
          const job = await r.json();
          status.textContent = job.status;
          status.className = "status status-" + job.status;
          bar.value = job.status === "completed" ? 100 : job.progress;
          message.textContent = job.message || "";
          if (FINAL.has(job.status)) { stopped = true; bar.hidden = job.status !== "completed"; return; }
        }
      } catch (e) { /* the agent restarting: try again */ }
      setTimeout(tick, FOLLOW_MS);
    }
    tick();
  }

  function uploadOne(file, inbox, list) {
    const item = el("li", {"class": "upload"});
    const link = el("a", {href: "#"}, file.name);
    const status = el("span", {"class": "status"}, "uploading");
    const bar = el("progress", {max: "100", value: "0", "aria-label": "Upload of " + file.name});
    const message = el("span", {"class": "message"});
    item.append(link, " ", status, " ", bar, " ", message);
    list.prepend(item);
    const body = new FormData();
    body.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/upload?inbox=" + encodeURIComponent(inbox));
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) bar.value = Math.round(100 * e.loaded / e.total);
    });
    xhr.addEventListener("load", () => {
      let data = {};
      try { data = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status === 201) {
        status.textContent = data.status;
        bar.value = 0;
        followJob(data.job_id, item);
      } else {
        status.textContent = "refused";
        status.className = "status status-failed";
        message.textContent = data.detail || ("HTTP " + xhr.status);
      }
    });
    xhr.addEventListener("error", () => {
      status.textContent = "not sent";
      status.className = "status status-failed";
      message.textContent = "the agent could not be reached";
    });
    xhr.send(body);
  }

  const form = document.getElementById("upload");
  if (form) {
    const input = document.getElementById("upload-file");
    const list = document.getElementById("uploads");
    const zone = document.getElementById("dropzone");
    const inbox = () => document.getElementById("upload-inbox").value;
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      for (const file of input.files) uploadOne(file, inbox(), list);
      input.value = "";  // the files are on their way; the chosen inbox stays
    });
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      for (const file of e.dataTransfer.files) uploadOne(file, inbox(), list);
    });
  }

  // ---- live parts (the job list's rows, the start page's State): re-read from the server
  // (escaped there) when the agent's events move (a long poll), or every poll while a job in
  // view runs; at most every `gap` ms ----
  function live(part, gap) {
    let seen = part.dataset.generation || "0";
    let busy = part.dataset.busy || "0";
    const join = part.dataset.live.includes("?") ? "&" : "?";
    async function refresh() {
      let wait = gap;
      try {
        const url = part.dataset.live + join + "seen=" + seen + "&busy=" + busy;
        const r = await fetch(url, {credentials: "same-origin"});
        if (r.redirected) { location.reload(); return; }  // the session ended: to the login
        if (r.ok) {
          const html = await r.text();
          seen = r.headers.get("X-Generation") || seen;
          busy = r.headers.get("X-Busy") || "0";
          const focused = document.activeElement && part.contains(document.activeElement);
          if (!focused) part.innerHTML = html;
        } else { wait = 5000; }
      } catch (e) { wait = 5000; }
      setTimeout(refresh, document.hidden ? 5000 : wait);
    }
    setTimeout(refresh, 0);
  }
  const rows = document.getElementById("job-rows");
  if (rows && rows.dataset.live) live(rows, 0);
  const state = document.getElementById("state");
  if (state && state.dataset.live) live(state, 2000);  // health checks are not free

  // ---- one job: its status, progress and message followed until it ends ----
  const one = document.getElementById("job");
  if (one && one.dataset.live && !FINAL.has(one.dataset.status)) {
    async function follow() {
      try {
        const r = await fetch(one.dataset.live, {credentials: "same-origin"});
        if (r.ok) {
          const job = await r.json();
          if (FINAL.has(job.status)) { location.reload(); return; }
          document.getElementById("job-status").textContent = job.status;
          const bar = document.getElementById("job-progress");
          if (bar) bar.value = job.progress;
          document.getElementById("job-message").textContent = job.message || "—";
        }
      } catch (e) { /* try again */ }
      setTimeout(follow, 2 * FOLLOW_MS);
    }
    setTimeout(follow, 2 * FOLLOW_MS);
  }
})();
