/* Safe Passage counsellors' desk: live updates (Server-Sent Events), waiting times, the SMS
   segment count while typing, canned replies. Plain JavaScript, no build step, no inline
   script (the Content-Security-Policy allows only this file). Every HTML fragment it inserts
   was rendered and escaped by the server. */
(function () {
  "use strict";

  function $(id) { return document.getElementById(id); }

  /* -- waiting times and overdue highlight, ticking between server redraws -- */
  var drawnAt = Date.now();
  function minutes(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) { return seconds + " s"; }
    if (seconds < 3600) { return Math.floor(seconds / 60) + " min"; }
    return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  }
  function tick() {
    var elapsed = (Date.now() - drawnAt) / 1000;
    document.querySelectorAll(".wait[data-waited]").forEach(function (cell) {
      cell.textContent = minutes(Number(cell.dataset.waited) + elapsed);
      if (cell.dataset.overdueIn !== undefined && Number(cell.dataset.overdueIn) - elapsed <= 0) {
        var row = cell.closest("tr");
        if (row) { row.classList.add("overdue"); }
      }
    });
  }
  setInterval(tick, 5000);

  /* -- live updates -- */
  var url = document.body.dataset.events;
  if (url && window.EventSource) {
    var source = new EventSource(url);
    var state = $("live-state");
    source.addEventListener("open", function () { if (state) { state.textContent = "live"; } });
    source.addEventListener("queue", function (event) {
      var rows = $("queue-rows");
      if (rows) { rows.innerHTML = event.data; drawnAt = Date.now(); }
    });
    source.addEventListener("lines", function (event) {
      var transcript = $("transcript");
      if (transcript) {
        transcript.insertAdjacentHTML("beforeend", event.data);
        transcript.scrollTop = transcript.scrollHeight;
      }
    });
    /* Her own action (claim, close, release...) changes the case's state too: once a form is on
       its way the page the server answers with is the fresh one, and a reload now would cancel
       that answer and show the old page. */
    var submitting = false;
    document.addEventListener("submit", function () { submitting = true; source.close(); });
    source.addEventListener("state", function () {
      source.close();
      if (!submitting) { window.location.reload(); }
    });
    source.addEventListener("logout", function () { source.close(); window.location.assign("/login"); });
    source.addEventListener("error", function () {
      if (state) { state.textContent = "reconnecting"; }
      if (source.readyState === EventSource.CLOSED) { window.location.assign("/login"); }
    });
  }

  /* -- SMS segments (GSM 03.38 / UCS-2, as bot/sms/segments.py counts them) -- */
  var reply = $("reply");
  var counter = $("segments");
  function segments(text) {
    var basic = reply.dataset.gsm7 || "";
    var extension = reply.dataset.gsm7ext || "";
    var gsm = true;
    var septets = 0;
    for (var char of text) {
      if (basic.indexOf(char) >= 0) { septets += 1; }
      else if (extension.indexOf(char) >= 0) { septets += 2; }
      else { gsm = false; break; }
    }
    var units = gsm ? septets : text.length; /* UTF-16 code units: characters beyond the BMP take two */
    var single = gsm ? 160 : 70;
    var part = gsm ? 153 : 67;
    var count = units === 0 ? 0 : (units <= single ? 1 : Math.ceil(units / part));
    return { count: count, units: units, encoding: gsm ? "GSM-7" : "UCS-2", limit: count <= 1 ? single : part * count };
  }
  function showSegments() {
    if (!reply || !counter || !reply.dataset.sms) { return; }
    var s = segments(reply.value);
    counter.textContent = s.count + " SMS (" + s.encoding + ", " + s.units + "/" + s.limit + ")";
    counter.dataset.count = String(s.count);
    counter.classList.toggle("many", s.count > 3);
  }
  if (reply) {
    reply.addEventListener("input", showSegments);
    showSegments();
    var transcript = $("transcript");
    if (transcript) { transcript.scrollTop = transcript.scrollHeight; }
  }

  /* -- canned replies fill the box; the counsellor reads, edits and sends -- */
  document.querySelectorAll(".canned-reply").forEach(function (button) {
    button.addEventListener("click", function () {
      if (!reply) { return; }
      reply.value = button.dataset.text;
      reply.dispatchEvent(new Event("input"));
      reply.focus();
    });
  });
})();
