// flotta console: progressive enhancement only. Every page works without
// this script; with it, lists marked data-stream follow the server's
// event stream (server-sent events, same origin, the sign-in cookie) and
// new items appear at the top without a reload.
"use strict";
(function () {
  function text(tag, cls, s) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    e.textContent = s;
    return e;
  }
  function item(ev) {
    var level = ev.level || ev.type || "info";
    var li = document.createElement("li");
    li.className = "ev fresh l-" + level;
    var t = text("time", "", "just now");
    if (ev.time) { t.setAttribute("datetime", ev.time); t.title = ev.time; }
    li.appendChild(t);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(text("span", "badge b-" + level, level));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(text("b", "reason", ev.reason || ""));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(text("span", "msg", ev.message || ""));
    return li;
  }
  function follow(list) {
    if (!window.EventSource) return;
    var source = new EventSource(list.getAttribute("data-stream"));
    source.addEventListener("event", function (m) {
      var ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      var none = document.getElementById("no-events");
      if (none) none.remove();
      list.insertBefore(item(ev), list.firstChild);
      list.setAttribute("data-live", "1");
    });
    source.addEventListener("open", function () { list.setAttribute("data-connected", "1"); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var lists = document.querySelectorAll("[data-stream]");
    for (var i = 0; i < lists.length; i++) follow(lists[i]);
  });
})();
