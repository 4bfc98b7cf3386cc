/* understudy bench capture: installed on every new document before the page's scripts.
 * Sinks for both recorders, a long-task observer, a MessageChannel ticker that notes every
 * gap between its ticks, and the entry points the benchmark calls. Nothing here records. */
(function () {
  "use strict";
  var KEEP = __KEEP__;
  var B = (window.__bench = {
    t0: 0, tWork: 0, n0: 0, times: [], out: [], longtasks: [], gaps: [],
    bytes: 0, batches: 0, breaker: false, snapSeen: false, scanned: 0, src: "", ticking: false
  });
  try {
    new PerformanceObserver(function (list) {
      list.getEntries().forEach(function (e) { B.longtasks.push([e.startTime, e.duration]); });
    }).observe({ type: "longtask", buffered: true });
  } catch (e) {}

  // The ticker: a MessageChannel ping-pong while `ticking`; every gap over 2 ms between two
  // ticks is kept as [start, length]. Its longest gap in a window is the longest the main
  // thread was busy in it, long-task observer or not.
  var tick = new MessageChannel(), last = 0;
  tick.port1.onmessage = function () {
    var n = performance.now();
    if (n - last > 2) B.gaps.push([last, n - last]);
    last = n;
    if (B.ticking) tick.port2.postMessage(0);
  };
  function startTicker() {
    last = performance.now();
    if (!B.ticking) { B.ticking = true; tick.port2.postMessage(0); }
  }

  // capture.js hands its batches to this function instead of the network (the benchmark
  // sets `flushMs: 0`: ship at the end of the task that produced events).
  window.understudyConfig = __CONFIG__;
  window.__understudyEmit = function (s) {
    B.times.push(performance.now());
    if (KEEP) B.out.push(s);
    else {
      B.bytes += s.length;
      B.batches++;
      if (!B.breaker && s.indexOf('"$breaker"') >= 0) B.breaker = true;
      if (!B.snapSeen && s.indexOf('"k":"snap"') >= 0) B.snapSeen = true;
    }
  };
  // rrweb's `emit`: keeps the event objects; they are serialised after the measurement.
  B.rrEmit = function (e) { B.times.push(performance.now()); B.out.push(e); };

  // Runs `f` in a task of its own (not inside a CDP evaluation), after noting t0.
  function inTask(measure, f) {
    var c = new MessageChannel();
    B.tWork = 0;
    B.snapSeen = false;
    B.scanned = 0;
    c.port1.onmessage = function () {
      if (measure) { B.t0 = performance.now(); B.n0 = B.times.length; }
      startTicker();
      f();
      B.tWork = performance.now();
    };
    c.port2.postMessage(0);
    return true;
  }
  // Starts a recorder from B.src (set beforehand), measured or not.
  B.inject = function (kind, measure) {
    return inTask(measure, function () {
      (0, eval)(B.src);
      if (kind === "rrweb") {
        var R = window.rrwebRecord || window.rrweb;
        var o = { emit: B.rrEmit }, k;
        for (k in B.rrOptions || {}) o[k] = B.rrOptions[k];
        B.stop = (R.record || R)(o);
      }
    });
  };
  B.go = function () { return inTask(true, function () { window.workload(); }); };
  B.lastEmit = function () { return B.times.length > B.n0 ? B.times[B.times.length - 1] : 0; };
  // Whether a full snapshot was emitted (since n0, when kept).
  function hasSnap() {
    for (; B.scanned < B.out.length; B.scanned++) {
      var e = B.out[B.scanned];
      if (B.scanned >= B.n0 && (typeof e === "string" ? e.indexOf('"k":"snap"') >= 0 : e.type === 2)) {
        B.snapSeen = true;
      }
    }
    return B.snapSeen;
  }
  // Whether the page has been quiet for `ms`: the task started last is over, nothing was
  // emitted for `ms`, and the main thread was not mostly busy then (under 3/4 of it in
  // ticker gaps over 2 ms: a time-sliced recorder still at work keeps it busier; an idle
  // page on a loaded machine shows some gaps too). With `needEmit`, at least one emission
  // since t0; with `needSnap`, a full snapshot.
  B.quiet = function (ms, needEmit, needSnap) {
    var n = performance.now(), from = n - ms, busy = 0, i, g;
    if (!B.tWork) return false;
    if (needEmit && B.times.length <= B.n0) return false;
    if (needSnap && !hasSnap()) return false;
    if (n - Math.max(B.tWork, B.lastEmit()) < ms) return false;
    for (i = B.gaps.length - 1; i >= 0; i--) {
      g = B.gaps[i];
      if (g[0] + g[1] <= from) break;
      busy += g[0] + g[1] - Math.max(g[0], from);
    }
    return busy < 0.75 * ms;
  };
  B.result = function () {
    var stop = performance.now(), t0 = B.t0, lt = 0, gap = 0, at = 0;
    B.ticking = false;
    B.longtasks.forEach(function (e) {
      if (e[0] < stop && e[0] + e[1] > t0 && e[1] > lt) { lt = e[1]; if (lt > gap) at = e[0]; }
    });
    B.gaps.forEach(function (g) {
      if (g[0] >= t0 - 1 && g[0] < stop && g[1] > gap) { gap = g[1]; if (gap > lt) at = g[0]; }
    });
    return {
      t0: t0, tWork: B.tWork, stop: stop, n0: B.n0, times: B.times,
      longtask: lt, gap: gap, longestAt: Math.max(0, at - t0)
    };
  };
  // The recording as strings: capture.js batches as they were handed over, rrweb events
  // through JSON.stringify.
  B.strings = function () {
    return B.out.map(function (e) { return typeof e === "string" ? e : JSON.stringify(e); });
  };
})();
//# sourceURL=bench-harness.js
