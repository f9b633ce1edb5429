// New-job form: show only the inputs of the chosen row mode, and estimate the work before starting it.
(function () {
  const form = document.getElementById("job-form");
  if (!form) return;
  // Rough seconds per explained row on one worker core, by explainer; training per classifier.
  const perRow = { lime: 0.3, anchor: 1.5, shap: 0.6, counterfactual: 0.3 };
  const perClassifier = 3;
  const estimate = document.getElementById("estimate");

  // Names as chips: the textarea (one name per line, what the server reads) stays the store; with script on,
  // names are picked from the suggestions and shown as removable chips, so a name with commas stays whole.
  const names = document.getElementById("id_rows_names");
  function nameLines() {
    return names ? names.value.split("\n").map(function (s) { return s.trim(); }).filter(Boolean) : [];
  }
  const picker = form.querySelector(".name-picker");
  if (names && picker) {
    const pick = document.getElementById("id_rows_name_pick");
    const chips = document.getElementById("row-name-chips");
    const known = new Set(Array.from(document.querySelectorAll("#row-name-list option")).map(function (o) { return o.value; }));
    picker.hidden = false;
    names.hidden = true;
    document.querySelector('label[for="id_rows_names"]').htmlFor = "id_rows_name_pick";
    function renderChips() {
      chips.replaceChildren.apply(chips, nameLines().map(function (name) {
        const item = document.createElement("li");
        const text = document.createElement("span");
        text.textContent = name;
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "chip-remove";
        remove.textContent = "×";
        remove.setAttribute("aria-label", "Remove " + name);
        remove.addEventListener("click", function () {
          names.value = nameLines().filter(function (n) { return n !== name; }).join("\n");
          renderChips();
          update();
        });
        item.append(text, remove);
        return item;
      }));
    }
    function addName() {
      const name = pick.value.trim();
      if (!name) return;
      if (nameLines().indexOf(name) < 0) names.value = nameLines().concat([name]).join("\n");
      pick.value = "";
      renderChips();
      update();
    }
    document.getElementById("add-row-name").addEventListener("click", addName);
    pick.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); addName(); }
    });
    pick.addEventListener("change", function () { if (known.has(pick.value.trim())) addName(); });
    renderChips();
  }

  function mode() { return form.querySelector('input[name="rows_mode"]:checked').value; }
  function rowsCount() {
    const m = mode();
    if (m === "ids") return document.getElementById("id_rows_ids").value.split(/[ ,;]+/).filter(Boolean).length;
    if (m === "names") return nameLines().length;
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
