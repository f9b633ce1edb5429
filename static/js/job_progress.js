// Job page: poll the job's status, move the bar, show the stage, and open the results when it is done.
(function () {
  const card = document.getElementById("progress-card");
  if (!card) return;
  const url = card.dataset.statusUrl;
  const finals = ["succeeded", "failed", "cancelled"];
  const labels = { queued: "Queued", running: "Running", succeeded: "Succeeded", failed: "Failed", cancelled: "Cancelled" };

  function render(s) {
    const pct = Math.round(s.progress * 100);
    document.getElementById("bar").style.width = pct + "%";
    document.getElementById("progressbar").setAttribute("aria-valuenow", pct);
    document.getElementById("percent").textContent = pct + "%";
    // A finished job's stage often repeats its status ("Cancelled"): the badge says it once.
    const stage = s.headline || s.stage;
    document.getElementById("stage").textContent = stage === labels[s.status] ? "" : stage;
    const eta = document.getElementById("eta");
    if (eta) {
      eta.textContent = s.eta || "";
      document.getElementById("eta-line").hidden = !s.eta;
    }
    renderRuns(s.runs || []);
    document.getElementById("elapsed").textContent = s.elapsed;
    const status = document.getElementById("job-status");
    status.textContent = labels[s.status] || s.status;
    status.className = "status " + s.status;
    if (s.status === "failed") {
      document.getElementById("job-error").hidden = false;
      document.getElementById("error-text").textContent = s.error;
    }
    if (finals.indexOf(s.status) >= 0) {
      const note = document.getElementById("updates-note");
      if (note) note.hidden = true;
      document.getElementById("cancel-form").hidden = true;
      document.getElementById("partial-results").hidden = false;
      const watch = document.getElementById("watch-results");
      if (watch) watch.hidden = true;
      document.getElementById("delete-form").hidden = false;
    }
  }

  // One line per classifier when several run side by side: their tasks run in parallel.
  function renderRuns(runs) {
    const list = document.getElementById("run-stages");
    if (!list) return;
    list.hidden = runs.length < 2;
    list.replaceChildren.apply(list, runs.map(function (run) {
      const item = document.createElement("li");
      const name = document.createElement("strong");
      name.textContent = run.label;
      const pct = document.createElement("span");
      pct.className = "muted";
      pct.textContent = Math.round(run.progress * 100) + "%";
      item.append(name, " ", pct, " ", run.status === "done" ? "Done" : run.stage + (run.eta ? " — " + run.eta : ""));
      return item;
    }));
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        render(s);
        if (s.status === "succeeded") { window.location = s.results_url; return; }
        if (finals.indexOf(s.status) < 0) setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 500);
})();
