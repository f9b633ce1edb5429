// New-job form: show only the inputs of the chosen row mode, and estimate the work before starting it.
(function () {
  const form = document.getElementById("job-form");
  if (!form) return;
  // Rough seconds per explained row on one worker core, by explainer; training per classifier.
  const perRow = { lime: 0.3, anchor: 1.5, shap: 0.6 };
  const perClassifier = 3;
  const estimate = document.getElementById("estimate");

  function mode() { return form.querySelector('input[name="rows_mode"]:checked').value; }
  function rowsCount() {
    const m = mode();
    if (m === "ids") return document.getElementById("id_rows_ids").value.split(/[ ,;]+/).filter(Boolean).length;
    if (m === "names") return document.getElementById("id_rows_names").value.split(",").filter(function (s) { return s.trim(); }).length;
    if (m === "all_test") {
      const share = Number(document.getElementById("id_test_size").value) || 0.25;
      return Math.round(Number(form.dataset.rows) * share);
    }
    return Number(document.getElementById("id_rows_count").value) || 0;
  }
  function update() {
    const m = mode();
    form.querySelectorAll(".row-inputs [data-mode]").forEach(function (p) {
      p.hidden = p.dataset.mode.split(" ").indexOf(m) < 0;
    });
    const classifiers = form.querySelectorAll('input[name="classifiers"]:checked').length;
    const explainers = Array.from(form.querySelectorAll('input[name="explainers"]:checked')).map(function (c) { return c.value; });
    const rows = rowsCount();
    let seconds = classifiers * perClassifier;
    explainers.forEach(function (e) { seconds += classifiers * rows * (perRow[e] || 1); });
    const text = classifiers + " classifier" + (classifiers === 1 ? "" : "s") + " × " + explainers.length + " explainer" +
      (explainers.length === 1 ? "" : "s") + " × " + rows + " row" + (rows === 1 ? "" : "s") + " ≈ " +
      (seconds < 90 ? Math.max(1, Math.round(seconds)) + " s" : Math.round(seconds / 60) + " min") + " on one worker";
    estimate.textContent = text;
    estimate.classList.toggle("warn", seconds > 600);
    if (seconds > 600) estimate.textContent += " — that is a lot; consider fewer rows or explainers.";
  }
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  form.addEventListener("submit", function () {
    const button = document.getElementById("start");
    setTimeout(function () { button.disabled = true; button.textContent = "Starting…"; }, 0);
  });
  update();
})();
