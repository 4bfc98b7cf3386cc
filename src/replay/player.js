/* understudy replay player. Reads the session from #session-data, rebuilds the recorded DOM
 * with UnderstudyRebuild.Rebuilder inside the sandboxed #replay-frame (no allow-scripts: the
 * recording's scripts and handlers never run), and plays pointer, clicks, scrolls and inputs
 * on a timeline. Every recorded string is untrusted: it reaches the page through textContent
 * or a property, never as HTML.
 *
 * Time is "ms since the session's first event" (the same origin as cook's signal times).
 * Seeking forward applies the events in between; seeking backwards, or into another page
 * view, rebuilds that page view from its latest snapshot at or before the target and
 * fast-forwards.
 */
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("session-data").textContent);
  var R = window.UnderstudyRebuild;
  var $ = function (id) { return document.getElementById(id); };
  var frame = $("replay-frame"), viewport = $("viewport"), stage = $("stage");
  var START = DATA.start;
  var CLICK_MS = 700, BADGE_MS = 2000, IDLE_MS = 3000;

  /* ---------- the session, flattened ---------- */
  // flat[i] = {ev, pg, rel}: every event in session order, times made non-decreasing.
  var flat = [], pageFirst = [], last = -Infinity;
  DATA.pages.forEach(function (p, pg) {
    pageFirst[pg] = flat.length;
    p.events.forEach(function (ev) {
      var t = Math.max(ev.t, last);
      last = t;
      flat.push({ ev: ev, pg: pg, rel: t - START });
    });
  });
  // Pointer samples (moves and clicks), sorted by time.
  var pointer = [], clicks = [], inputs = [];
  flat.forEach(function (f, i) {
    var ev = f.ev;
    if (ev.k === "move" && ev.pts) {
      ev.pts.forEach(function (p) {
        pointer.push({ rel: ev.t + (+p[2] || 0) - START, x: +p[0], y: +p[1], pg: f.pg });
      });
    } else if (ev.k === "click") {
      pointer.push({ rel: f.rel, x: +ev.x, y: +ev.y, pg: f.pg });
      clicks.push({ rel: f.rel, x: +ev.x, y: +ev.y, pg: f.pg, i: i, kind: "" });
    } else if (ev.k === "input") {
      inputs.push({ rel: f.rel, pg: f.pg, ev: ev });
    }
  });
  pointer.sort(function (a, b) { return a.rel - b.rel; });
  var signals = (DATA.signals || []).slice().sort(function (a, b) { return a.t - b.t; });
  // A click signal colours the clicks it is about (same time, and the burst after a rage).
  signals.forEach(function (s) {
    if (!/_click$/.test(s.kind)) return;
    var n = s.kind === "rage_click" || s.kind === "dead_click" ? Math.max(1, s.count || 1) : 1;
    for (var j = 0; j < clicks.length && n > 0; j++) {
      if (clicks[j].rel + 1 >= s.t) {
        if (!clicks[j].kind || s.kind === "rage_click") clicks[j].kind = s.kind;
        n--;
      }
    }
  });
  var DURATION = Math.max(0, flat.length ? flat[flat.length - 1].rel : 0,
    pointer.length ? pointer[pointer.length - 1].rel : 0);

  // Index of the last item of sorted `arr` whose rel is <= t, or -1.
  function lastAt(arr, t, key) {
    var lo = 0, hi = arr.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if ((key ? arr[mid][key] : arr[mid].rel) <= t) lo = mid + 1; else hi = mid;
    }
    return lo - 1;
  }

  /* ---------- the rebuilt page ---------- */
  var st = { pg: -1, idx: -1, rb: null, snapped: false, w: 0, h: 0, url: "" };
  var problems = [];
  function note(msg) {
    problems.push(String(msg));
    $("status").textContent = problems.length + " event(s) could not be replayed; last: " + problems[problems.length - 1];
  }
  function fdoc() { return frame.contentDocument; }
  function fwin() { return frame.contentWindow; }
  function clearDoc() {
    var d = fdoc();
    if (!d) return;
    while (d.firstChild) d.removeChild(d.firstChild);
  }
  function setViewport(w, h) {
    w = Math.max(1, Math.round(+w) || 0); h = Math.max(1, Math.round(+h) || 0);
    if (w === st.w && h === st.h) return;
    st.w = w; st.h = h;
    viewport.style.width = w + "px";
    viewport.style.height = h + "px";
    fit();
  }
  function fit() {
    if (!st.w) return;
    var s = Math.min((stage.clientWidth - 16) / st.w, (stage.clientHeight - 16) / st.h, 1);
    s = Math.max(s, 0.05);
    var left = Math.max(8, (stage.clientWidth - st.w * s) / 2);
    viewport.style.transform = "translate(" + left + "px, 8px) scale(" + s + ")";
  }
  function setUrl(u) { st.url = String(u || ""); $("url").textContent = st.url; }
  function scrollTo(id, x, y) {
    if (!id) {
      var w = fwin();
      if (w) w.scrollTo(+x || 0, +y || 0);
      return;
    }
    var n = st.rb.node(id);
    if (n && n.nodeType === 1) { n.scrollLeft = +x || 0; n.scrollTop = +y || 0; }
  }
  function showInput(ev) {
    var n = st.rb.node(ev.id);
    if (!n || n.nodeType !== 1) return;
    var tag = n.localName, type = String(n.getAttribute("type") || "").toLowerCase();
    if (tag === "select") {
      if (ev.idx != null) n.selectedIndex = ev.idx;
    } else if (type === "checkbox" || type === "radio") {
      n.checked = ev.cls === "toggle" ? ev.idx === 1 : true;
    } else if (tag === "input" || tag === "textarea") {
      n.value = new Array((ev.len | 0) + 1).join("*");
    }
  }
  function rebuildApply(ev) {
    try { st.rb.apply(ev); return true; } catch (e) { note(ev.k + " at " + clock(ev.t - START) + ": " + (e && e.message || e)); return false; }
  }
  // Applies flat[i]. `live` is false for events before the page view's latest snapshot, when
  // only the viewport and URL matter.
  function apply(i, live) {
    var ev = flat[i].ev;
    switch (ev.k) {
      case "meta": setViewport(ev.w, ev.h); setUrl(ev.url); break;
      case "resize": setViewport(ev.w, ev.h); break;
      case "nav": if (ev.nav !== "leave") setUrl(ev.url); break;
      case "snap":
        if (!live) break;
        if (rebuildApply(ev)) { st.snapped = true; scrollTo(0, ev.sx, ev.sy); }
        break;
      case "mut": if (live && st.snapped) rebuildApply(ev); break;
      case "scroll": if (live && st.snapped) scrollTo(ev.id, ev.x, ev.y); break;
      case "input": if (live && st.snapped) showInput(ev); break;
    }
  }
  // Brings the frame to the state after flat[target] (target -1: before anything).
  function reach(target) {
    var pg = target >= 0 ? flat[target].pg : 0;
    if (pg !== st.pg || target < st.idx) {
      var from = target;
      while (from >= 0 && flat[from].pg === pg && flat[from].ev.k !== "snap") from--;
      if (from >= 0 && flat[from].pg !== pg) from = -1;
      clearDoc();
      st.rb = new R.Rebuilder(fdoc());
      st.pg = pg; st.snapped = false;
      var first = target >= 0 ? pageFirst[pg] : 0;
      for (var i = first; i <= target; i++) apply(i, from >= 0 && i >= from);
      st.idx = target;
    } else {
      for (var j = st.idx + 1; j <= target; j++) apply(j, true);
      st.idx = target;
    }
    var blank = $("no-snapshot");
    if (st.snapped || target < 0) {
      blank.style.display = "none";
    } else {
      blank.style.display = "flex";
      blank.textContent = "No DOM snapshot for this page view yet" +
        (DATA.pages[pg] ? " (" + DATA.pages[pg].events.length + " events)" : "");
    }
  }

  /* ---------- overlays: pointer, clicks, input badges ---------- */
  function inFrame(node) {
    var r = node.getBoundingClientRect();
    return { x: r.left, y: r.top, w: r.width, h: r.height };
  }
  function drawOverlays(t) {
    var p = $("pointer"), k = lastAt(pointer, t);
    if (k >= 0 && pointer[k].pg === st.pg) {
      var a = pointer[k], b = pointer[k + 1], x = a.x, y = a.y;
      if (b && b.pg === a.pg && b.rel > a.rel && b.rel - a.rel < 1000) {
        var f = (t - a.rel) / (b.rel - a.rel);
        x += (b.x - a.x) * f; y += (b.y - a.y) * f;
      }
      p.style.display = "block";
      p.style.left = x + "px"; p.style.top = y + "px";
    } else {
      p.style.display = "none";
    }
    var box = $("clicks");
    box.textContent = "";
    for (var c = lastAt(clicks, t); c >= 0 && clicks[c].rel >= t - CLICK_MS; c--) {
      var ck = clicks[c];
      if (ck.pg !== st.pg) continue;
      var d = document.createElement("div");
      d.className = "ripple " + ck.kind;
      var age = (t - ck.rel) / CLICK_MS;
      d.style.left = ck.x + "px"; d.style.top = ck.y + "px";
      d.style.opacity = String(1 - age);
      d.style.transform = "scale(" + (0.5 + age) + ")";
      box.appendChild(d);
      // The element clicked, outlined: where it is in the rebuild, which can differ from the
      // click's point when the page's external stylesheets were not recorded.
      var tn = st.snapped ? st.rb.node(flat[ck.i].ev.id) : null;
      if (tn && tn.nodeType === 1) {
        var tr = inFrame(tn), o = document.createElement("div");
        o.className = "target " + ck.kind;
        o.style.left = tr.x + "px"; o.style.top = tr.y + "px";
        o.style.width = tr.w + "px"; o.style.height = tr.h + "px";
        o.style.opacity = String(1 - age);
        box.appendChild(o);
      }
    }
    var badges = $("badges");
    badges.textContent = "";
    if (!st.snapped) return;
    for (var n = lastAt(inputs, t); n >= 0 && inputs[n].rel >= t - BADGE_MS; n--) {
      var inp = inputs[n];
      if (inp.pg !== st.pg) continue;
      var node = st.rb.node(inp.ev.id);
      if (!node || node.nodeType !== 1) continue;
      var r = inFrame(node), bd = document.createElement("div");
      bd.className = "badge";
      bd.textContent = inputText(inp.ev);
      bd.style.left = Math.max(0, r.x) + "px";
      bd.style.top = Math.max(0, r.y + r.h + 2) + "px";
      badges.appendChild(bd);
    }
  }
  function inputText(ev) {
    var s = "input: " + ev.cls + " · " + ev.len + " char" + (ev.len === 1 ? "" : "s");
    if (ev.keys) s += " · " + ev.keys + " keys";
    if (ev.paste) s += " · pasted";
    return s;
  }

  /* ---------- side lists and timeline ---------- */
  function clock(ms) {
    ms = Math.max(0, ms);
    var s = ms / 1000, m = Math.floor(s / 60);
    s -= m * 60;
    return m + ":" + (s < 10 ? "0" : "") + s.toFixed(1);
  }
  var lists = [];
  function list(id, items) {
    var ol = $(id);
    items.sort(function (a, b) { return a.rel - b.rel; });
    if (!items.length) {
      var e = document.createElement("li");
      e.className = "empty"; e.textContent = "none";
      ol.appendChild(e);
    }
    items.forEach(function (it) {
      var li = document.createElement("li"), t = document.createElement("span"), w = document.createElement("span");
      li.className = (it.cls || "") + " future";
      li.setAttribute("data-t", String(it.rel));
      t.className = "t"; t.textContent = clock(it.rel);
      w.className = "what"; w.textContent = it.text;
      if (it.title) li.title = it.title;
      li.appendChild(t); li.appendChild(w);
      li.addEventListener("click", function () { seek(it.rel); });
      ol.appendChild(li);
      it.li = li;
    });
    lists.push({ items: items, upto: -1 });
  }
  function target(tgt) {
    if (!tgt) return "";
    return tgt.testid ? "[data-testid=" + tgt.testid + "]" : tgt.eid ? "#" + tgt.eid : tgt.path || tgt.tag || "";
  }
  var errs = [], net = [], act = [];
  flat.forEach(function (f) {
    var ev = f.ev, rel = f.rel;
    switch (ev.k) {
      case "err":
        errs.push({ rel: rel, cls: "bad", text: ev.ek + ": " + ev.msg,
          title: ev.src ? ev.src + ":" + (ev.line || 0) + ":" + (ev.col || 0) : "" });
        break;
      case "net":
        var bad = !(ev.status >= 200 && ev.status < 400);
        net.push({ rel: Math.max(0, rel - (ev.dur || 0)), cls: bad ? "bad" : "",
          text: ev.method + " " + ev.url + " → " + (ev.status || "failed") + " · " + ev.dur + " ms",
          title: ev.via });
        break;
      case "meta": act.push({ rel: rel, cls: "special", text: "page view (" + ev.load + "): " + ev.url }); break;
      case "nav": act.push({ rel: rel, text: "navigation (" + ev.nav + "): " + ev.url }); break;
      case "click": act.push({ rel: rel, text: "click " + target(ev.tgt) }); break;
      case "input": act.push({ rel: rel, text: inputText(ev) + " on " + target(ev.tgt) }); break;
      case "submit": act.push({ rel: rel, text: "submit " + target(ev.tgt) }); break;
      case "vis": act.push({ rel: rel, text: ev.hidden ? "tab hidden" : "tab shown" }); break;
      case "custom":
        var data = ev.data == null ? "" : " " + JSON.stringify(ev.data);
        act.push({ rel: rel, cls: ev.name.charAt(0) === "$" ? "special bad" : "special",
          text: "custom " + ev.name + (data.length > 200 ? data.slice(0, 200) + "…" : data) });
        break;
    }
  });
  list("signals", signals.map(function (s) {
    var text = s.kind + (s.count > 1 ? " ×" + s.count : "") + (s.target ? " on " + s.target : "") +
      (s.detail ? ": " + s.detail : "");
    return { rel: s.t, cls: s.kind, text: text };
  }));
  list("errors", errs);
  list("network", net);
  list("activity", act);

  var timeline = $("timeline");
  function pct(rel) { return DURATION > 0 ? Math.min(100, Math.max(0, 100 * rel / DURATION)) : 0; }
  DATA.pages.forEach(function (p, pg) {
    if (pg === 0 || pageFirst[pg] >= flat.length) return;
    var tk = document.createElement("div");
    tk.className = "tick";
    tk.style.left = pct(flat[pageFirst[pg]].rel) + "%";
    tk.title = "page view " + (pg + 1);
    $("ticks").appendChild(tk);
  });
  signals.forEach(function (s) {
    var m = document.createElement("div");
    m.className = "marker " + s.kind;
    m.setAttribute("data-kind", s.kind);
    m.setAttribute("data-t", String(s.t));
    m.style.left = pct(s.t) + "%";
    m.title = s.kind + (s.target ? " on " + s.target : "") + (s.detail ? ": " + s.detail : "") + " at " + clock(s.t);
    m.addEventListener("click", function (e) { e.stopPropagation(); seek(s.t); });
    $("markers").appendChild(m);
  });
  function seekFromPointer(e) {
    var r = timeline.getBoundingClientRect();
    seek(DURATION * Math.min(1, Math.max(0, (e.clientX - r.left) / Math.max(1, r.width))));
  }
  var dragging = false;
  timeline.addEventListener("mousedown", function (e) { dragging = true; seekFromPointer(e); });
  window.addEventListener("mousemove", function (e) { if (dragging) seekFromPointer(e); });
  window.addEventListener("mouseup", function () { dragging = false; });

  /* ---------- the clock ---------- */
  var now = 0, playing = false, lastFrame = 0;
  function render() {
    reach(lastAt(flat, now));
    drawOverlays(now);
    $("clock").textContent = clock(now) + " / " + clock(DURATION);
    $("progress").style.width = pct(now) + "%";
    $("head").style.left = pct(now) + "%";
    lists.forEach(function (l) {
      var upto = lastAt(l.items, now), i;
      for (i = l.upto + 1; i <= upto; i++) l.items[i].li.classList.remove("future");
      for (i = upto + 1; i <= l.upto; i++) l.items[i].li.classList.add("future");
      l.upto = upto;
    });
  }
  function seek(ms) {
    now = Math.min(DURATION, Math.max(0, +ms || 0));
    render();
  }
  function tick(ts) {
    if (!playing) return;
    var dt = lastFrame ? ts - lastFrame : 0;
    lastFrame = ts;
    var next = now + dt * (+$("speed").value || 1);
    if ($("skip").checked) {
      var k = lastAt(flat, now) + 1;
      var upcoming = k < flat.length ? flat[k].rel : DURATION;
      var pk = lastAt(pointer, now) + 1;
      if (pk < pointer.length) upcoming = Math.min(upcoming, pointer[pk].rel);
      if (upcoming - now > IDLE_MS) next = Math.max(next, upcoming - 500);
    }
    if (next >= DURATION) { next = DURATION; pause(); }
    seek(next);
    if (playing) requestAnimationFrame(tick);
  }
  function play() {
    if (playing) return;
    if (now >= DURATION) seek(0);
    playing = true; lastFrame = 0;
    $("play").textContent = "Pause";
    requestAnimationFrame(tick);
  }
  function pause() {
    playing = false;
    $("play").textContent = "Play";
  }
  $("play").addEventListener("click", function () { if (playing) pause(); else play(); });
  document.addEventListener("keydown", function (e) {
    var tag = e.target && e.target.localName;
    if (tag === "select" || tag === "input" || tag === "button") return;
    if (e.key === " ") { e.preventDefault(); if (playing) pause(); else play(); }
    else if (e.key === "ArrowRight") seek(now + 5000);
    else if (e.key === "ArrowLeft") seek(now - 5000);
  });
  window.addEventListener("resize", fit);

  // For tests and the curious: drive the player from the console.
  window.understudyReplay = {
    seek: seek, play: play, pause: pause,
    time: function () { return now; },
    duration: DURATION,
    page: function () { return st.pg; },
    node: function (id) { return st.rb ? st.rb.node(id) : null; },
    problems: problems
  };
  // Open on the first snapshot rather than the blank moment before it.
  var firstSnap = 0;
  for (var fs = 0; fs < flat.length; fs++) {
    if (flat[fs].ev.k === "snap") { firstSnap = flat[fs].rel; break; }
  }
  // `#t=MS` opens at that moment (ms since the session's first event).
  var m = /^#t=(\d+(?:\.\d+)?)$/.exec(location.hash);
  seek(m ? +m[1] : firstSnap);
})();
