// Copy buttons for one-time secrets: shown only where this script runs (the page
// works without it: the secret is selectable text).
document.addEventListener("DOMContentLoaded", function () {
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
});
