// kare's Now page, live: phase voltages, frequency and meter values from the server-sent
// events of /api/v1/stream, drawn at most three times a second; a new event or ticket reloads the
// page (the server renders the state and the tickets).
(function () {
  if (!window.EventSource) return;
  var es = new EventSource('/api/v1/stream'), latest = {}, meters = {}, reload = null, queued = false;
  function later() { if (!queued) { queued = true; setTimeout(function () { queued = false; draw(); }, 300); } }
  es.addEventListener('reading', function (m) { var r = JSON.parse(m.data); latest[r.source] = r; later(); });
  es.addEventListener('meter', function (m) { var r = JSON.parse(m.data); meters[r.source + '/' + r.device + '|' + r.quantity] = r; later(); });
  function soon() { if (!reload) reload = setTimeout(function () { location.reload(); }, 2000); }
  es.addEventListener('event', soon);
  es.addEventListener('ticket', soon);
  function draw() {
    document.querySelectorAll('[data-src]').forEach(function (el) {
      var r = latest[el.getAttribute('data-src')]; if (!r) return;
      if (el.hasAttribute('data-freq')) { if (r.frequency_hz != null) el.textContent = r.frequency_hz.toFixed(3) + ' Hz'; }
      else { var v = r.volts[+el.getAttribute('data-ch')]; if (v != null) el.textContent = v.toFixed(1) + ' V'; }
    });
    document.querySelectorAll('[data-meter]').forEach(function (el) {
      var r = meters[el.getAttribute('data-meter') + '|' + el.getAttribute('data-q')];
      if (r) el.textContent = r.value.toFixed(2) + ' ' + r.unit;
    });
  }
})();
