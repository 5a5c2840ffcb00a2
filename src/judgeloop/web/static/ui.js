// Keyboard shortcuts for the judgeloop review pages. Written for this project; no libraries.
// Every action here is also a plain link or form, so the pages work without JavaScript.
(function () {
  "use strict";

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "TEXTAREA" || tag === "SELECT" ||
      (tag === "INPUT" && target.type !== "radio" && target.type !== "checkbox");
  }

  function submit(form) {
    if (!form) { return; }
    if (typeof form.requestSubmit === "function") { form.requestSubmit(); } else { form.submit(); }
  }

  var hintTimer = null;
  function hint(text) {
    var box = document.getElementById("flash-hint");
    if (!box) {
      box = document.createElement("div");
      box.id = "flash-hint";
      box.className = "flash-hint";
      box.setAttribute("role", "status");
      document.body.appendChild(box);
    }
    box.textContent = text;
    box.hidden = false;
    clearTimeout(hintTimer);
    hintTimer = setTimeout(function () { box.hidden = true; }, 2500);
  }

  function toggleHelp() {
    var help = document.getElementById("shortcuts");
    if (help) { help.hidden = !help.hidden; }
  }

  // ---- the queue: j/k move through the rows, Enter opens, n claims the next item
  function queuePage() {
    var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-href]"));
    var index = -1;
    function select(next) {
      if (!rows.length) { return; }
      index = Math.max(0, Math.min(rows.length - 1, next));
      rows.forEach(function (row, i) { row.classList.toggle("selected", i === index); });
      rows[index].scrollIntoView({ block: "nearest" });
    }
    rows.forEach(function (row) {
      row.addEventListener("click", function (event) {
        if (event.target.closest("a, button")) { return; }
        window.location.href = row.getAttribute("data-href");
      });
    });
    return function (event) {
      if (event.key === "j") { select(index + 1); return true; }
      if (event.key === "k") { select(index - 1); return true; }
      if ((event.key === "Enter" || event.key === "o") && index >= 0) {
        window.location.href = rows[index].getAttribute("data-href");
        return true;
      }
      if (event.key === "n") { submit(document.getElementById("next-form")); return true; }
      return false;
    };
  }

  // ---- one item: digits pick a label, Enter / Ctrl+Enter submit, n/j next, k back
  function itemPage() {
    var form = document.getElementById("review-form");
    return function (event, inText) {
      if (form && event.key === "Enter" && (event.ctrlKey || event.metaKey || !inText)) {
        if (!form.querySelector("input[name=label]:checked")) {
          hint("Pick a label first (keys 1–9).");
        }
        submit(form);
        return true;
      }
      if (inText) { return false; }
      if (form && /^[1-9]$/.test(event.key)) {
        var choice = form.querySelector('input[name=label][data-key="' + event.key + '"]');
        if (choice) { choice.checked = true; choice.focus(); }
        return true;
      }
      if (event.key === "n" || event.key === "j") {
        if (form) { hint("Submit your label first, or release the item."); return true; }
        submit(document.getElementById("next-form"));
        return true;
      }
      if (event.key === "k") {
        var back = document.getElementById("back-to-queue");
        if (back) { window.location.href = back.href; }
        return true;
      }
      return false;
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var page = document.body.getAttribute("data-page");
    var handler = page === "queue" ? queuePage() : page === "item" ? itemPage() : null;
    document.addEventListener("keydown", function (event) {
      var inText = typing(event.target);
      if (event.key === "Escape" && inText) { event.target.blur(); return; }
      if (event.altKey || ((event.ctrlKey || event.metaKey) && event.key !== "Enter")) { return; }
      if (!inText && event.key === "?") { toggleHelp(); event.preventDefault(); return; }
      if (handler && handler(event, inText)) { event.preventDefault(); }
    });
  });
})();
