// Keyboard shortcuts for a gate's page: a approves, r and m go to the reject and modify boxes,
// Ctrl+Enter submits the box one is in. ui.js handles ? and Esc. Every action is also a form.
(function () {
  "use strict";

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "TEXTAREA" || tag === "SELECT" || tag === "INPUT";
  }

  function submit(form) {
    if (!form) { return; }
    if (typeof form.requestSubmit === "function") { form.requestSubmit(); } else { form.submit(); }
  }

  function focusBox(id) {
    var box = document.getElementById(id);
    if (!box) { return; }
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (document.body.getAttribute("data-page") !== "gate") { return; }
    var approve = document.getElementById("approve-form");
    document.addEventListener("keydown", function (event) {
      if (event.altKey || event.defaultPrevented) { return; }
      var inText = typing(event.target);
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        if (inText && event.target.form) { submit(event.target.form); event.preventDefault(); }
        return;
      }
      if (inText || event.ctrlKey || event.metaKey) { return; }
      var handled = true;
      if (event.key === "a" && approve) {
        submit(approve);
      } else if (event.key === "r" && approve) {
        focusBox("reason");
      } else if (event.key === "m" && approve) {
        focusBox("arguments");
      } else if ((event.key === "n" || event.key === "j") && !approve) {
        submit(document.getElementById("next-form"));
      } else if (event.key === "k") {
        var back = document.getElementById("back-to-queue");
        if (back) { window.location.href = back.href; }
      } else {
        handled = false;
      }
      if (handled) { event.preventDefault(); }
    });
  });
})();
