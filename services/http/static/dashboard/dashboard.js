/* fleetgate dashboard: small enhancements over plain forms (every page works without this file).
   - A catalog's search box (the Vehicle Access editor, the New webhook form) filters the rendered rows; elements
     marked data-js-only are shown only when this file runs.
   - The Vehicle Access editor: each change of a tick or a Required
     toggle posts the selection to the page's derive URL and swaps in the permissions panel the server renders
     (derive() on the server is the one place the rule lives).
   - The Connect preview's frame is sized to the grant screen it shows.
   - Copy buttons: [data-copy=ID] copies the text of #ID (navigator.clipboard, else the text is selected). */
(function () {
  "use strict";

  function syncToggles(form) {
    // A Required toggle means something only for a ticked row: disabled (and so not posted) otherwise.
    form.querySelectorAll("tr.row").forEach(function (row) {
      var pick = row.querySelector("input.pick");
      var req = row.querySelector("input.req");
      if (pick && req) { req.disabled = !pick.checked; }
    });
  }

  var pending = null;
  function derive(form) {
    var panel = document.getElementById("permissions-panel");
    if (!panel) { return; }
    if (pending) { pending.abort(); }
    pending = new AbortController();
    var body = new URLSearchParams(new FormData(form));
    body.delete("action");
    fetch(form.dataset.derive, { method: "POST", body: body, signal: pending.signal, credentials: "same-origin" })
      .then(function (response) {
        if (response.redirected || !response.ok) { throw new Error("derive: " + response.status); }
        return response.text();
      })
      .then(function (html) { panel.innerHTML = html; panel.dataset.updated = String(Date.now()); })
      .catch(function (error) {
        if (error.name === "AbortError") { return; }
        panel.insertAdjacentHTML("afterbegin",
          '<p class="alert" role="alert">Could not recompute: sign in again, or use Recompute.</p>');
      });
  }

  function filterRows(query) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    var any = false;
    document.querySelectorAll("section.group").forEach(function (group) {
      var shown = 0;
      group.querySelectorAll("tr.row").forEach(function (row) {
        var text = row.dataset.search || "";
        var match = words.every(function (w) { return text.indexOf(w) !== -1; });
        row.hidden = !match;
        if (match) { shown += 1; }
      });
      group.hidden = shown === 0;
      any = any || shown > 0;
    });
    var empty = document.getElementById("search-empty");
    if (empty) { empty.hidden = any; }
  }

  function copy(button) {
    var target = document.getElementById(button.dataset.copy);
    if (!target) { return; }
    var text = (target.value !== undefined && target.tagName === "INPUT") ? target.value : target.textContent.trim();
    function done(label) {
      var before = button.dataset.label || button.textContent;
      button.dataset.label = before;
      button.textContent = label;
      setTimeout(function () { button.textContent = before; }, 1500);
    }
    function selectText() {
      var range = document.createRange();
      range.selectNodeContents(target);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      done("Selected: press Ctrl+C");
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done("Copied"); }, selectText);
    } else {
      selectText();
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button) { event.preventDefault(); copy(button); }
  });

  // The preview's frame (same origin, sandboxed without scripts) is as tall as the grant screen it shows.
  var frame = document.getElementById("grant-frame");
  if (frame) {
    var fit = function () {
      var doc = frame.contentDocument;
      if (doc && doc.documentElement) { frame.style.height = doc.documentElement.scrollHeight + 4 + "px"; }
    };
    frame.addEventListener("load", fit);
    if (frame.contentDocument && frame.contentDocument.readyState === "complete") { fit(); }
  }

  var form = document.getElementById("access-form");
  if (form) {
    syncToggles(form);
    form.addEventListener("change", function (event) {
      if (!event.target.matches("input[type=checkbox]")) { return; }
      syncToggles(form);
      derive(form);
    });
  }

  var search = document.getElementById("search");
  if (search) {
    search.addEventListener("input", function () { filterRows(search.value); });
    if (search.form) {
      search.form.addEventListener("submit", function (event) { event.preventDefault(); });  // filtered as typed
    }
    if (search.value) { filterRows(search.value); }
  }
  document.querySelectorAll("[data-js-only]").forEach(function (element) { element.hidden = false; });

  // The New webhook form: an On change box means something only for a signal in use; the side counts the ticks.
  var hookForm = document.getElementById("webhook-form");
  if (hookForm) {
    var syncChange = function () {
      var picked = 0;
      hookForm.querySelectorAll("tr.row").forEach(function (row) {
        var pick = row.querySelector("input.pick");
        var change = row.querySelector("input.change");
        if (pick && change) { change.disabled = !pick.checked; }
        if (pick && pick.checked) { picked += 1; }
      });
      var count = document.getElementById("picked-count");
      if (count) {
        count.dataset.count = String(picked);
        count.textContent = picked + (picked === 1 ? " signal" : " signals") + " ticked";
      }
    };
    syncChange();
    hookForm.addEventListener("change", syncChange);
  }
})();
