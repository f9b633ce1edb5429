// Results page of a running job: results fill in as they are computed, without a reload. The status line is
// polled every 2 s; when more explanations exist (or the status moved), the page's changing parts are fetched
// (?fragment=live, with this page's own sort, filter and page) and only the parts whose version moved are
// swapped, never one holding the keyboard focus, so nothing flickers and no one loses their place.
(function () {
  const live = document.getElementById("live-status");
  if (!live) return;
  const finals = ["succeeded", "failed", "cancelled"];
  const labels = { queued: "Queued", running: "Running", succeeded: "Succeeded", failed: "Failed", cancelled: "Cancelled" };
  let explained = Number(live.dataset.explained);
  let status = live.dataset.status;
  let stale = false;

  function fragmentUrl() {
    const query = new URLSearchParams(window.location.search);
    query.set("fragment", "live");
    return window.location.pathname + "?" + query.toString();
  }

  function swap(html) {
    const fresh = new DOMParser().parseFromString(html, "text/html");
    stale = false;
    fresh.querySelectorAll("[data-live-block]").forEach(function (block) {
      const current = document.getElementById(block.id);
      if (!current || current.dataset.version === block.dataset.version) return;
      if (current.contains(document.activeElement)) { stale = true; return; }  // the user is there: later
      const node = document.importNode(block, true);
      current.replaceWith(node);
      if (window.explainerPage) window.explainerPage.swapped(node);
    });
  }

  function refresh() {
    return fetch(fragmentUrl(), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(swap);
  }

  function render(s) {
    const badge = live.querySelector(".status");
    badge.textContent = labels[s.status] || s.status;
    badge.className = "status " + s.status;
    const count = s.explained + " explanation" + (s.explained === 1 ? "" : "s");
    const text = document.getElementById("live-text");
    if (finals.indexOf(s.status) >= 0) {
      text.textContent = s.status === "succeeded" ? "Finished: " + count + ", every result is below." :
        (s.status === "failed" ? "The job failed: " + s.error : "Cancelled: the " + count + " finished are kept.");
      document.getElementById("live-note").hidden = true;
    } else {
      text.textContent = (s.headline || s.stage) + (s.eta ? " — " + s.eta : "") + " · " + count + " so far.";
    }
  }

  function poll() {
    fetch(live.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        const moved = s.explained !== explained || s.status !== status;
        explained = s.explained;
        status = s.status;
        const final = finals.indexOf(s.status) >= 0;
        const done = moved || stale ? refresh() : Promise.resolve();
        return done.then(function () {
          render(s);
          if (!final) setTimeout(poll, 2000);
        });
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
