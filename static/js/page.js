// Behaviours any page may ask for in its markup (data-* attributes), so that no page needs inline script or
// inline styles and the Content-Security-Policy can forbid both.
(function () {
  // <form data-confirm="Delete this job?">: ask before submitting.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  // <select data-navigate-param="dataset">: choosing an option reloads the page with ?dataset=<value>.
  document.querySelectorAll("select[data-navigate-param]").forEach(function (select) {
    select.addEventListener("change", function () {
      const query = new URLSearchParams({ [select.dataset.navigateParam]: select.value });
      window.location = "?" + query.toString();
    });
  });
  // <div data-width="42">: a bar 42% wide (set through the DOM, which style-src allows, not a style attribute).
  document.querySelectorAll("[data-width]").forEach(function (bar) {
    bar.style.width = Math.max(0, Math.min(100, Number(bar.dataset.width) || 0)) + "%";
  });
  // <input data-select-on-focus>: focusing it selects it all, ready to copy (a share link).
  document.querySelectorAll("input[data-select-on-focus]").forEach(function (input) {
    input.addEventListener("focus", function () { input.select(); });
  });
  // <section data-reload-after="3000">: reload the page after that many milliseconds (work still in progress).
  const reload = document.querySelector("[data-reload-after]");
  if (reload) setTimeout(function () { window.location.reload(); }, Number(reload.dataset.reloadAfter) || 3000);
})();
