// Behaviours any page may ask for in its markup (data-* attributes), so that no page needs inline script or
// inline styles and the Content-Security-Policy can forbid both.
(function () {
  // <form data-confirm="Delete this job?">: ask before submitting (delegated: forms a live page swaps in ask too).
  document.addEventListener("submit", function (event) {
    const form = event.target.closest ? event.target.closest("form[data-confirm]") : null;
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });
  // <a data-enlarge href="plot.png">: the plot opens large in a dialog (Esc or the Close button closes it and the
  // focus goes back to the link); without script the link opens the full-size image itself.
  let viewer = null;
  function viewerMake() {
    const dialog = document.createElement("dialog");
    dialog.className = "plot-viewer";
    dialog.setAttribute("aria-label", "Enlarged plot");
    const close = document.createElement("button");
    close.type = "button";
    close.className = "small secondary plot-viewer-close";
    close.textContent = "Close";
    close.addEventListener("click", function () { dialog.close(); });
    const figure = document.createElement("figure");
    const image = document.createElement("img");
    const caption = document.createElement("figcaption");
    figure.append(image, caption);
    dialog.append(close, figure);
    dialog.addEventListener("click", function (event) { if (event.target === dialog) dialog.close(); });
    document.body.append(dialog);
    return dialog;
  }
  document.addEventListener("click", function (event) {
    const link = event.target.closest ? event.target.closest("a[data-enlarge]") : null;
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    viewer = viewer || viewerMake();
    if (typeof viewer.showModal !== "function") return;  // an old browser: the link opens the image
    event.preventDefault();
    const image = viewer.querySelector("img");
    image.src = link.getAttribute("href");
    image.alt = link.dataset.alt || (link.querySelector("img") || {}).alt || "";
    viewer.querySelector("figcaption").textContent = link.dataset.caption || "";
    const opener = link;
    viewer.addEventListener("close", function back() { viewer.removeEventListener("close", back); opener.focus(); });
    viewer.showModal();
    viewer.querySelector(".plot-viewer-close").focus();
  });
  // <select data-navigate-param="dataset">: choosing an option reloads the page with ?dataset=<value>.
  document.querySelectorAll("select[data-navigate-param]").forEach(function (select) {
    select.addEventListener("change", function () {
      const query = new URLSearchParams({ [select.dataset.navigateParam]: select.value });
      window.location = "?" + query.toString();
    });
  });
  // <div data-width="42">: a bar 42% wide (set through the DOM, which style-src allows, not a style attribute).
  function widths(root) {
    root.querySelectorAll("[data-width]").forEach(function (bar) {
      bar.style.width = Math.max(0, Math.min(100, Number(bar.dataset.width) || 0)) + "%";
    });
  }
  widths(document);
  window.explainerPage = { swapped: widths };  // a live page calls it on the parts it swaps in
  // <input data-select-on-focus>: focusing it selects it all, ready to copy (a share link).
  document.querySelectorAll("input[data-select-on-focus]").forEach(function (input) {
    input.addEventListener("focus", function () { input.select(); });
  });
  // <button data-copy="input-id" hidden>: shown when script runs; copies that input's value and says so in the
  // page's role=status line (the input itself stays selectable by hand without script).
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    const input = document.getElementById(button.dataset.copy);
    if (!input) return;
    button.hidden = false;
    const said = document.getElementById(button.dataset.copy + "-copied");
    function say(text) { if (said) said.textContent = text; }
    button.addEventListener("click", function () {
      input.select();
      const copied = navigator.clipboard && window.isSecureContext
        ? navigator.clipboard.writeText(input.value)
        : Promise.resolve(document.execCommand("copy")).then(function (ok) { if (!ok) throw new Error("copy"); });
      copied.then(function () { say("Copied. Paste it into your script."); },
                  function () { say("Your browser did not let the page copy: the token is selected, press Ctrl+C (⌘C)."); });
    });
  });
  // <section data-reload-after="3000">: reload the page after that many milliseconds (work still in progress).
  const reload = document.querySelector("[data-reload-after]");
  if (reload) setTimeout(function () { window.location.reload(); }, Number(reload.dataset.reloadAfter) || 3000);
})();
