/* leads workspace: keyboard screening, time on record, evidence focus, drag and drop import.
   No inline scripts (the Content-Security-Policy forbids them); htmx does the requests, and the
   screening forms share hx-sync="#screen:drop", so a key pressed twice sends one decision. */
(function () {
  "use strict";
  var shownAt = performance.now();

  function markShown() { shownAt = performance.now(); }

  // Keys go to the page unless the person is typing into a field (a ticked checkbox keeps focus
  // but takes no text, so shortcuts still work after clicking a reason).
  var NOT_TEXT = ["checkbox", "radio", "button", "submit", "reset"];
  function typing(target) {
    if (!target) return false;
    var tag = (target.tagName || "").toLowerCase();
    if (tag === "input") return NOT_TEXT.indexOf((target.type || "").toLowerCase()) < 0;
    return tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function submitWith(form, button) {
    if (!form) return;
    // A key pressed right after a swap can come before htmx has bound the new form: bind it now,
    // or the browser would post the form itself (correct, but a full page load).
    if (window.htmx) window.htmx.process(form);
    if (typeof form.requestSubmit === "function") {
      form.requestSubmit(button || undefined);
    } else if (button) {
      button.click();
    } else {
      form.submit();
    }
  }

  // Seconds on the record: from the card being shown to the decision being sent. The decision
  // travels in the hidden "label" field, so that a key press (no button clicked) sends it too.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form && form.id === "decide-form") {
      var field = form.querySelector("#seconds");
      if (field) field.value = ((performance.now() - shownAt) / 1000).toFixed(3);
      var label = form.querySelector("#label-field");
      if (label && event.submitter && event.submitter.name === "label") label.value = event.submitter.value;
    }
  }, true);

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var form = document.getElementById("decide-form");
    var key = event.key.toLowerCase();
    if (form && (key === "i" || key === "e" || key === "m")) {
      var button = form.querySelector('button[data-key="' + key + '"]');
      var label = form.querySelector("#label-field");
      event.preventDefault();
      if (button && label) {
        label.value = button.value;
        submitWith(form, null);
      }
    } else if (form && /^[1-9]$/.test(key)) {
      var box = form.querySelector('input[name="reason"][data-number="' + key + '"]');
      if (box) { box.checked = !box.checked; event.preventDefault(); }
    } else if (key === "u") {
      var undo = document.getElementById("undo-form");
      if (undo) { event.preventDefault(); submitWith(undo); }
    } else if (key === "a") {
      var ai = document.getElementById("ai-form");
      if (ai) { event.preventDefault(); submitWith(ai); }
    }
  });

  // Pointing at a verdict lights up its evidence in the text.
  function focusCriterion(label, on) {
    document.querySelectorAll("mark.ev").forEach(function (mark) {
      var labels = (mark.getAttribute("data-criteria") || "").split(" ");
      if (labels.indexOf(label) >= 0) mark.classList.toggle("focus", on);
    });
  }
  ["mouseover", "focusin"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      var item = event.target.closest && event.target.closest(".verdict[data-criterion]");
      if (item) { item.classList.add("focus"); focusCriterion(item.getAttribute("data-criterion"), true); }
    });
  });
  ["mouseout", "focusout"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      var item = event.target.closest && event.target.closest(".verdict[data-criterion]");
      if (item) { item.classList.remove("focus"); focusCriterion(item.getAttribute("data-criterion"), false); }
    });
  });

  // Drag and drop onto the import form.
  function showChosen(input) {
    var out = document.getElementById("chosen-files");
    if (!out) return;
    var names = [];
    for (var i = 0; i < input.files.length; i++) names.push(input.files[i].name);
    out.textContent = names.join(", ");
  }
  function setupDropzone(root) {
    var zone = (root || document).querySelector ? (root || document).querySelector("#dropzone") : null;
    if (!zone || zone.dataset.ready) return;
    zone.dataset.ready = "1";
    var input = document.getElementById(zone.getAttribute("data-input"));
    if (!input) return;
    input.addEventListener("change", function () { showChosen(input); });
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (event) { event.preventDefault(); zone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (type) {
      zone.addEventListener(type, function (event) { event.preventDefault(); zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (event) {
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        showChosen(input);
      }
    });
  }

  // Extraction: clicking a value lights up its quote in the document and scrolls it into view.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest(".value-link[data-anchor]");
    if (!link) return;
    var anchor = link.getAttribute("data-anchor");
    var first = null;
    document.querySelectorAll("#document mark.ev").forEach(function (mark) {
      var on = (mark.getAttribute("data-criteria") || "").split(" ").indexOf(anchor) >= 0;
      mark.classList.toggle("focus", on);
      if (on && !first) first = mark;
    });
    document.querySelectorAll(".value.selected").forEach(function (el) { el.classList.remove("selected"); });
    var box = link.closest(".value");
    if (box) box.classList.add("selected");
    if (first) first.scrollIntoView({block: "center", behavior: "auto"});
  });
  // Seconds spent on an extraction action: from the page being shown to the form being sent.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form && form.classList && form.classList.contains("timed")) {
      var field = form.querySelector('input[name="seconds"]');
      if (field) field.value = ((performance.now() - shownAt) / 1000).toFixed(3);
    }
  }, true);

  document.addEventListener("DOMContentLoaded", function () { markShown(); setupDropzone(document); });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target && (event.target.id === "screen" || (event.target.querySelector && event.target.querySelector("#decide-form")))) markShown();
    else if (document.getElementById("decide-form") && event.detail && event.detail.target && event.detail.target.id === "screen") markShown();
  });
  document.addEventListener("htmx:load", function (event) {
    if (event.target && event.target.id === "screen") markShown();
  });
  // An error answer (403, 404, 400) is shown, not swallowed.
  document.addEventListener("htmx:responseError", function (event) {
    var flash = document.getElementById("flash");
    if (!flash) return;
    var p = document.createElement("p");
    p.className = "flash flash-error";
    p.setAttribute("role", "alert");
    p.textContent = (event.detail.xhr && event.detail.xhr.responseText) || "The request failed.";
    flash.replaceChildren(p);
  });
})();
