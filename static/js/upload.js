// Upload: drag-and-drop onto the drop zone, show the chosen file, refuse too-large files before sending them.
(function () {
  const input = document.getElementById("id_file");
  const drop = document.getElementById("drop");
  const name = document.getElementById("filename");
  if (!input || !drop) return;
  const maxBytes = Number(input.dataset.maxMb) * 1024 * 1024;

  function show() {
    const file = input.files[0];
    if (!file) { name.textContent = ""; return; }
    const mb = (file.size / 1024 / 1024).toFixed(1);
    const size = file.size < 1024 * 1024 ? Math.max(1, Math.round(file.size / 1024)) + " KB" : mb + " MB";
    if (file.size > maxBytes) {
      name.textContent = file.name + " is " + mb + " MB — over the " + input.dataset.maxMb + " MB limit.";
      name.classList.add("field-error");
      input.setCustomValidity("File too large");
    } else {
      name.textContent = "Chosen: " + file.name + " (" + size + ")";
      name.classList.remove("field-error");
      input.setCustomValidity("");
    }
  }
  input.addEventListener("change", show);
  ["dragenter", "dragover"].forEach(function (ev) {
    drop.addEventListener(ev, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (ev) {
    drop.addEventListener(ev, function (e) { e.preventDefault(); drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (e) {
    if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; show(); }
  });
})();
