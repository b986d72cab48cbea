// s3gw console: live refresh.  Polls /api/version every 2 s; when the token changes
// (a branch head moved, a job changed state), the <main data-live> of the page is
// fetched again and swapped in place: no reload, scroll position kept.
(function () {
  "use strict";
  var main = document.querySelector("main[data-live]");
  if (!main) { return; }
  var last = null, busy = false, failures = 0;
  function refresh() {
    return fetch(window.location.href, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.querySelector("main[data-live]");
        if (fresh) {
          main.innerHTML = fresh.innerHTML;
          document.body.setAttribute("data-refreshed", String(Date.now()));
        }
      });
  }
  function tick() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch("/api/version", {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (token) {
        failures = 0;
        if (last !== null && token !== last) { last = token; return refresh(); }
        last = token;
      })
      .catch(function () { failures += 1; })
      .then(function () { busy = false; });
  }
  tick();
  var timer = window.setInterval(function () {
    if (failures > 30) { window.clearInterval(timer); return; }
    tick();
  }, 2000);
})();
