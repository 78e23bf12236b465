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
  // Every other table reads as labelled cards on a phone, as the lists do: each cell
  // is given its column's name where the page gave none (without this script a wide
  // table scrolls sideways in its own box instead).
  document.querySelectorAll("main table:not(.stack):not(.numbers)").forEach(function (t) {
    if (!t.tHead || !t.tHead.rows.length || t.closest("figure")) return;
    var heads = Array.prototype.map.call(t.tHead.rows[0].cells, function (c) { return c.textContent.trim(); });
    Array.prototype.forEach.call(t.tBodies, function (body) {
      Array.prototype.forEach.call(body.rows, function (r) {
        Array.prototype.forEach.call(r.cells, function (c, i) {
          if (!c.hasAttribute("data-label") && heads[i]) c.setAttribute("data-label", heads[i]);
        });
      });
    });
    t.classList.add("stack");
  });
  // A plot that scrolls sideways on a phone opens at its latest days.
  document.querySelectorAll("figure#usage-daily").forEach(function (f) {
    f.scrollLeft = f.scrollWidth;
  });
  // A table wider than a phone scrolls in its own box: make that box reachable by
  // keyboard (Tab to it, then the arrow keys scroll it).
  document.querySelectorAll("main table").forEach(function (t) {
    if (t.scrollWidth > t.clientWidth + 1 && !t.hasAttribute("tabindex")) {
      t.setAttribute("tabindex", "0");
    }
  });
});
