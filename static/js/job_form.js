// New-job form: show only the inputs of the chosen row mode, and estimate the work before starting it.
(function () {
  const form = document.getElementById("job-form");
  if (!form) return;
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
  const alsoWrong = document.getElementById("id_rows_also_misclassified");  // "3 random + 2 misclassified"
  // The estimate comes from the server: measured rates of this machine, corrected by this account's finished
  // jobs (explanations/estimates.py). Asked again a moment after the last change.
  let asked = null;
  let latest = 0;
  function estimateAsk() {
    const query = new URLSearchParams(new FormData(form));
    query.delete("csrfmiddlewaretoken");
    const ticket = ++latest;
    // getAttribute, not form.dataset: the form's <select name="dataset"> shadows form.dataset (the old NaN).
    fetch(form.getAttribute("data-estimate-url") + "?" + query.toString(), { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (e) {
        if (!e || ticket !== latest) return;
        estimate.textContent = e.text + (e.large ? " — that is a lot; consider fewer rows or explainers." : "");
        estimate.title = e.basis;
        estimate.classList.toggle("warn", e.large);
      })
      .catch(function () {});
  }
  function update() {
    const m = mode();
    form.querySelectorAll(".row-inputs [data-mode]").forEach(function (p) {
      p.hidden = p.dataset.mode.split(" ").indexOf(m) < 0;
    });
    if (alsoWrong) alsoWrong.closest("p").hidden = m === "misclassified";
    clearTimeout(asked);
    asked = setTimeout(estimateAsk, 250);
  }
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  form.addEventListener("submit", function () {
    const button = document.getElementById("start");
    setTimeout(function () { button.disabled = true; button.textContent = "Starting…"; }, 0);
  });
  update();
})();
