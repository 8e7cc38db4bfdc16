// Progress of a running solve, updated in place (the page also works without this script:
// it then refreshes itself every two seconds).
"use strict";
(function () {
  const box = document.getElementById("job");
  if (!box) return;
  const stage = document.getElementById("job-stage");
  const bar = document.getElementById("job-bar");
  const url = box.dataset.url;
  const done = box.dataset.done;
  async function poll() {
    let data;
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) throw new Error(String(response.status));
      data = await response.json();
    } catch (e) {
      setTimeout(poll, 2000);
      return;
    }
    if (data.state === "done" || data.state === "failed" || data.state === "none") {
      window.location.assign(done);
      return;
    }
    stage.textContent = data.state === "queued"
      ? "Waiting for a free worker…"
      : data.stage_words + (data.stopping ? " (stopping; keeping the best plan so far)" : "") + "…";
    bar.value = data.overall;
    bar.textContent = Math.round(data.overall * 100) + "%";
    setTimeout(poll, 500);
  }
  setTimeout(poll, 300);
})();
