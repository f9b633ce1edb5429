// Schema form: class-name boxes follow the chosen label; a live summary says what will be predicted from what.
(function () {
  const labelValues = JSON.parse(document.getElementById("label-values").textContent);
  const initialNames = JSON.parse(document.getElementById("class-names-initial").textContent);
  const label = document.getElementById("id_label");
  const rowName = document.getElementById("id_row_name");
  const box = document.getElementById("class-names");
  const summary = document.getElementById("schema-summary");
  const firstLabel = label.value;

  function renderClassNames() {
    const values = labelValues[label.value] || [];
    box.innerHTML = "";
    if (!values.length) {
      box.innerHTML = '<p class="field-error">This column has too many different values to be predicted.</p>';
      return;
    }
    values.forEach(function (pair, i) {
      const id = "class-name-" + i;
      const row = document.createElement("div");
      row.className = "class-name";
      const lab = document.createElement("label");
      lab.htmlFor = id;
      lab.innerHTML = '<code></code> <span class="muted"></span>';
      lab.querySelector("code").textContent = pair[0];
      lab.querySelector(".muted").textContent = "(" + pair[1] + " rows)";
      const input = document.createElement("input");
      input.id = id;
      input.name = "class_name__" + i;
      input.value = label.value === firstLabel && initialNames[pair[0]] ? initialNames[pair[0]] : pair[0];
      row.append(lab, input);
      box.append(row);
    });
  }

  // A column becomes the label (or the row name) and stops being a feature; when it stops being the label its
  // tick comes back as it was, and the first label, never ticked, is ticked unless it was left out for a reason.
  const wasTicked = {};
  let excluded = new Set([label.value, rowName.value]);
  let restored = [];

  function updateSummary() {
    const rows = document.querySelectorAll("table.features tbody tr");
    const nowExcluded = new Set([label.value, rowName.value]);
    let features = 0, categorical = 0;
    rows.forEach(function (tr) {
      const name = tr.dataset.column;
      const use = tr.querySelector('input[name="features"]');
      const isExcluded = nowExcluded.has(name);
      if (isExcluded && !excluded.has(name)) wasTicked[name] = use.checked;
      if (!isExcluded && excluded.has(name) && name) {
        use.checked = name in wasTicked ? wasTicked[name] : !tr.dataset.reason;
        if (use.checked) restored.push(name);
      }
      use.disabled = isExcluded;
      tr.classList.toggle("excluded", isExcluded);
      if (use.checked && !isExcluded) {
        features += 1;
        if (tr.querySelector('input[type="checkbox"][name="categorical"]').checked) categorical += 1;
      }
    });
    excluded = nowExcluded;
    const classes = (labelValues[label.value] || []).length;
    summary.textContent = features + " feature" + (features === 1 ? "" : "s") + " (" + categorical + " categorical) → predicting " +
      label.value + " (" + classes + " class" + (classes === 1 ? "" : "es") + ")" +
      (restored.length ? " · " + restored.join(", ") + (restored.length === 1 ? " is a feature again" : " are features again") : "");
    restored = [];
  }

  function setAll(value) {
    document.querySelectorAll('table.features input[name="features"]').forEach(function (c) { if (!c.disabled) c.checked = value; });
    updateSummary();
  }

  label.addEventListener("change", function () { renderClassNames(); updateSummary(); });
  rowName.addEventListener("change", updateSummary);
  document.querySelector("table.features").addEventListener("change", updateSummary);
  document.getElementById("tick-all").addEventListener("click", function () { setAll(true); });
  document.getElementById("tick-none").addEventListener("click", function () { setAll(false); });
  renderClassNames();
  updateSummary();
})();
