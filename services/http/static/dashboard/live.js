/* fleetgate dashboard, Live decisions: an EventSource on the page's feed URL (with the filter form's parameters),
   one message a second at most ({window_s, counts, rate_per_s, recent, dropped}); each updates the rates, the
   totals since the page opened, and the latest decisions (newest first, recent-max kept). Changing a filter
   reopens the stream with the new parameters and puts them in the address bar (no reload). */
(function () {
  "use strict";

  var root = document.getElementById("live");
  var form = document.getElementById("live-filters");
  if (!root || !form) { return; }
  var outcomes = root.dataset.outcomes.split(" ");
  var recentMax = parseInt(root.dataset.recentMax, 10) || 20;
  var state = document.getElementById("feed-state");
  var recentBody = document.querySelector("#recent tbody");
  var totals = {};
  var source = null;

  function setState(name, text) { state.dataset.state = name; state.textContent = text; }

  function reset() {
    outcomes.forEach(function (o) { totals[o] = 0; });
    recentBody.textContent = "";
    document.getElementById("recent").hidden = true;
    document.getElementById("waiting").hidden = false;
    render({ counts: {}, rate_per_s: {}, recent: [], window_s: 0, dropped: 0 });
  }

  function cell(row, text, className, title) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : text;
    if (className) { td.className = className; }
    if (title) { td.title = title; }
    row.appendChild(td);
    return td;
  }

  function addRecent(decisions) {
    for (var i = decisions.length - 1; i >= 0; i--) {  // oldest first, each on top: newest ends first
      var d = decisions[i];
      var row = document.createElement("tr");
      row.className = "decision";
      row.dataset.outcome = d.outcome;
      var when = d.decided_at || "";  // RFC 3339 UTC: the time of day is enough here, the whole in the title
      cell(row, when.slice(11, 23).replace(/Z$/, ""), "nowrap", when);
      var badge = document.createElement("span");
      badge.className = "outcome o-" + d.outcome;
      badge.textContent = d.outcome;
      cell(row, "").appendChild(badge);
      cell(row, d.target, "code-cell", d.target);
      cell(row, d.vehicle_id, "code-cell", d.vehicle_id);
      cell(row, d.error, "muted code-cell", d.error);
      recentBody.insertBefore(row, recentBody.firstChild);
    }
    while (recentBody.rows.length > recentMax) { recentBody.deleteRow(recentBody.rows.length - 1); }
    if (recentBody.rows.length) {
      document.getElementById("recent").hidden = false;
      document.getElementById("waiting").hidden = true;
    }
  }

  function render(message) {
    var top = 0, rateAll = 0, totalAll = 0;
    outcomes.forEach(function (o) { top = Math.max(top, message.rate_per_s[o] || 0); });
    outcomes.forEach(function (o) {
      var row = document.getElementById("rate-" + o);
      var rate = message.rate_per_s[o] || 0;
      totals[o] += message.counts[o] || 0;
      rateAll += rate;
      totalAll += totals[o];
      row.querySelector(".rate").textContent = rate.toLocaleString();
      row.querySelector(".since").textContent = totals[o].toLocaleString();
      row.querySelector(".bar").style.width = (top ? 100 * rate / top : 0) + "%";
    });
    document.getElementById("rate-all").textContent = (Math.round(rateAll * 10) / 10).toLocaleString();
    var totalCell = document.getElementById("total-all");
    totalCell.textContent = totalAll.toLocaleString();
    totalCell.dataset.value = String(totalAll);
    if (message.window_s) {
      var note = "Rates over the last " + message.window_s.toFixed(1) + " s the server counted.";
      if (message.dropped) { note += " This browser fell behind: that window spans " + (message.dropped + 1) + " updates."; }
      document.getElementById("window-note").textContent = note;
    }
  }

  function query() {
    var params = new URLSearchParams(new FormData(form));
    ["target", "vehicle"].forEach(function (name) { if (!params.get(name)) { params.delete(name); } });
    return params.toString();
  }

  function open() {
    if (source) { source.close(); }
    reset();
    var q = query();
    setState("connecting", "connecting…");
    source = new EventSource(root.dataset.events + (q ? "?" + q : ""));
    source.onopen = function () { setState("open", "live"); };
    source.onmessage = function (event) {
      var message = JSON.parse(event.data);
      render(message);
      addRecent(message.recent);
    };
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        setState("closed", "stopped: reload the page (or sign in again)");
      } else {
        setState("connecting", "reconnecting…");
      }
    };
  }

  function apply(event) {
    if (event) { event.preventDefault(); }
    var q = query();
    history.replaceState(null, "", form.getAttribute("action") + (q ? "?" + q : ""));
    open();
  }

  form.addEventListener("submit", apply);
  form.addEventListener("change", function (event) {
    if (event.target.matches("input[type=checkbox]")) { apply(); }
  });
  window.addEventListener("pagehide", function () { if (source) { source.close(); } });
  open();
})();
