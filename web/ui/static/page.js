// The little the pages do with a script; each page works without it.
document.addEventListener("DOMContentLoaded", function () {
  // Copy buttons for one-time secrets: shown only where this script runs (without
  // it the secret is selectable text).
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    var target = document.getElementById(b.getAttribute("data-copy"));
    var note = document.getElementById("copied");
    if (!target || !navigator.clipboard) return;
    b.hidden = false;
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(function () {
        if (note) note.textContent = "Copied.";
      }, function () {
        if (note) note.textContent = "Copy failed: select the text and copy it.";
      });
    });
  });
  // A table wider than a phone scrolls in its own box: make that box reachable by
  // keyboard (Tab to it, then the arrow keys scroll it).
  document.querySelectorAll("main table").forEach(function (t) {
    if (t.scrollWidth > t.clientWidth + 1 && !t.hasAttribute("tabindex")) {
      t.setAttribute("tabindex", "0");
    }
  });
});
