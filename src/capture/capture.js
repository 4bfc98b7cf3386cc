/* understudy capture.js: the in-page recorder. Wire format: src/event.rs (`Batch`).
 *
 * Privacy rules, applied here before anything leaves the page:
 * - Text: every non-space character becomes "*" (length kept), unless the text is inside
 *   [data-understudy-unmask] or an element matching a config `unmask` selector. <script> text
 *   is never sent; <style> text is sent as is; <textarea> and contenteditable text is always
 *   masked. Comments are masked like text.
 * - Attributes: a structural allow-list keeps its values (id, class, style, role, type, name,
 *   for, data-testid, aria-* except label-like ones, SVG geometry). href/src/action/
 *   xlink:href keep origin+path only (other schemes: the scheme only). Everything else is
 *   "*" of the same length. Inside unmasked subtrees attributes are kept, except `value`
 *   (always masked) and URLs (always origin+path).
 * - Input values never leave the page: `input` events carry a value class and length only.
 * - [data-understudy-exclude]: tag, attributes and box size only; no children, and no
 *   mutation, text, attribute or input work inside it; clicks inside report the element.
 * - Error messages: e-mails, digits and quoted strings scrubbed, 300 chars, 5 per message.
 * - URLs never carry query or fragment. Network: method, url, status, duration, and only
 *   the headers named in config `headers`; never bodies.
 * Node ids: only the root of a serialised tree (a snapshot, an add, a new root) carries `id`;
 * every other node's id is the previous node's plus one, in document order: a node, its
 * shadow root, its template content, its iframe document, then its children.
 * Mutation replay: apply `rems` in order (skip an id already gone: it left with an ancestor
 * removed earlier in the same event), then `adds` in order (`n` is the id of the next
 * sibling, already present when that add is applied; 0 = append), then `attrs` (null
 * removes), then `texts`. Node ids restart at 1 for every page view (`pvid`).
 * Runaway pages (recording their DOM changes costs over 1 s of main thread in 5 s) stop
 * DOM recording for the page view and emit `custom` "$breaker".
 */
(function () {
  "use strict";
  var SCHEMA = 1;
  var VERSION = "1.0.0";

  var W = window, D = document, old = W.understudy;
  try { if ((old && old.version) || W !== W.top) return; } catch (e) { return; }

  var C = W.understudyConfig || {}, cs = D.currentScript, L = location;
  var SVG = "http://www.w3.org/2000/svg", EXA = "data-understudy-exclude", EXS = "[" + EXA + "]";
  var EP = C.endpoint || (cs && cs.getAttribute("data-endpoint")) ||
    (cs && cs.src ? new URL(cs.src).origin : L.origin) + "/v1/batches";
  try { EP = new URL(EP, L.href).href; } catch (e) {}
  // The project's public ingest key: config `key` or the script tag's data-key, sent as ?key=.
  var KEY = C.key || (cs && cs.getAttribute("data-key"));
  if (KEY) EP += (EP.indexOf("?") < 0 ? "?" : "&") + "key=" + encodeURIComponent(KEY);
  // flushMs 0 ships right after the events are made, in a microtask (benchmarks, tests).
  var FMS = C.flushMs === 0 ? 0 : +C.flushMs >= 50 ? +C.flushMs : 1000;
  // Bytes of unsent batches held for retry while the collector is away; past it the oldest
  // are dropped, counted, and reported in the stream as custom "$lost".
  var QB = +C.queueBytes > 0 ? +C.queueBytes : 4194304;
  var HDR = [].concat(C.headers || []).map(function (h) { return String(h).toLowerCase(); });
  var UNS = ["[data-understudy-unmask]"].concat([].concat(C.unmask || []).filter(function (s) {
    try { D.createDocumentFragment().querySelector(s); return true; } catch (e) { return false; }
  })).join(","), UNQ = UNS === "[data-understudy-unmask]";
  var KEEP = /^(id|class|style|role|type|name|for|rel|lang|dir|tabindex|disabled|hidden|checked|selected|multiple|required|readonly|width|height|colspan|rowspan|method|data-testid|data-test-id|data-test|data-understudy-unmask|data-understudy-exclude|viewbox|d|fill|stroke|points|x|y|cx|cy|r|rx|ry|x1|y1|x2|y2|transform|xmlns|stroke-width|opacity|preserveaspectratio)$/;
  var ARIAX = /^aria-(label|description|valuetext|placeholder|roledescription)$/;
  var FIELD = /^(input|textarea|select)$/, TXT = /^(text|email|tel|url|search)$/;
  var TE = new TextEncoder();
  var F = W.fetch;

  /* ---------- helpers ---------- */
  function now() { return Date.now(); }
  function rnd(v) { return Math.round(v) || 0; }
  function safe(f) { return function () { try { return f.apply(this, arguments); } catch (e) {} }; }
  function star(v) { return "*".repeat(v.length); }
  function url(u, base) {
    try {
      var x = new URL(u, base || D.baseURI);
      return /^https?:$/.test(x.protocol) ? x.origin + x.pathname : x.protocol;
    } catch (e) { return ""; }
  }
  var EPU = url(EP);
  // The nearest element matching `sel` at or above `n`, crossing shadow roots and out of
  // template content.
  var tplOf = new WeakMap();
  function near(n, sel) {
    while (n) {
      if (n.nodeType === 1) {
        var m = n.closest(sel);
        if (m) return m;
        n = n.getRootNode();
      }
      n = n.host || tplOf.get(n) || n.parentNode;
    }
    return null;
  }
  function size(b) { return typeof b === "string" ? TE.encode(b).length : b.byteLength; }

  /* ---------- session ids ---------- */
  var mem = {};
  function sg(k) { try { var v = sessionStorage.getItem(k); if (v != null) return v; } catch (e) {} return mem[k]; }
  function ss(k, v) { mem[k] = v; try { sessionStorage.setItem(k, v); } catch (e) {} }
  function rid(p) {
    var a = new Uint8Array(12), s = p, i;
    try { crypto.getRandomValues(a); } catch (e) { for (i = 0; i < 12; i++) a[i] = Math.random() * 256; }
    for (i = 0; i < 12; i++) s += (a[i] | 256).toString(16).slice(1);
    return s;
  }
  // Called when recording starts (after consent, if asked for): nothing is stored before.
  var SID;
  function session() {
    SID = sg("__us_sid");
    // A tab opened by another copies its sessionStorage: start a session of its own.
    if (!/^[\w-]{1,64}$/.test(SID || "") || (W.opener && history.length < 2)) {
      ss("__us_sid", (SID = rid("s")));
      ss("__us_seq", "0");
    }
  }
  function seq() {
    var n = parseInt(sg("__us_seq"), 10);
    n = n >= 0 ? n : 0;
    ss("__us_seq", "" + (n + 1));
    return n;
  }

  /* ---------- state ---------- */
  var REC = false, ok = !C.requireConsent, PV, gen = 0, ids = new WeakMap(), nid = 1, MO = null;
  var buf = [], tm = 0, mv = null, live = [], chain = Promise.resolve(), gone = false;
  var snapping = null, held = [], later = [], qb = 0, lost = { batches: 0, events: 0, bytes: 0 };
  var edits = new Map(), errs = new Map(), dA = new Map(), dT = new Set(), heat = new WeakMap();

  function push(e) {
    if (!REC) return;
    if (snapping) return void later.push(e);
    buf.push(e);
    if (buf.length >= 500 && !snapping) flush();
    else arm();
  }
  // Schedules a flush: after flushMs, or with flushMs 0 in a microtask, so the batch leaves
  // before the browser renders or runs another task.
  function arm() {
    if (tm) return;
    if (FMS) tm = setTimeout(safe(flush), FMS);
    else { tm = -1; Promise.resolve().then(safe(flush)); }
  }
  function on(t, ty, f, cap) {
    t.addEventListener(ty, function (e) { if (REC) try { f(e); } catch (x) {} }, { capture: cap !== false, passive: true });
  }

  /* ---------- serialisation ---------- */
  // Attribute name -> how its value is sent: 0 masked, 1 kept, 2 URL (origin+path), 3 `value`
  // (always masked). Cached; a page inventing names cannot grow the cache past 1000.
  var AK = new Map();
  function akind(k) {
    var c = AK.get(k), l;
    if (c === undefined) {
      l = k.toLowerCase();
      c = l === "value" ? 3 : /^(href|src|action|xlink:href)$/.test(l) ? 2 : KEEP.test(l) || (/^aria-/.test(l) && !ARIAX.test(l)) ? 1 : 0;
      if (AK.size < 1000) AK.set(k, c);
    }
    return c;
  }
  function av(k, v, um, el) {
    var c = akind(k);
    if (c === 3) return star(v);
    if (c === 2) return v[0] === "#" && el.namespaceURI === SVG ? v : url(v, el.baseURI);
    return um || c ? v : star(v);
  }
  // Whether element `n` itself opens an unmasked subtree.
  function unm(n) { return UNQ ? n.hasAttribute("data-understudy-unmask") : n.matches(UNS); }
  function tx(n, um) {
    var p = n.parentNode, t = p && p.localName, s = n.data;
    if (t === "style") return s;
    return !um || t === "textarea" || (p && p.isContentEditable) ? s.replace(/\S/g, "*") : s;
  }
  function fdoc(n) { try { return n.contentDocument; } catch (e) { return null; } }
  /* A subtree is serialised in two steps. walk() goes through the live tree in document
   * order, giving every node its id and noting where it hangs (child, shadow root, iframe
   * document, template content); it reads nothing else, so it is cheap. build() then reads
   * attributes and text and makes the objects. A snapshot runs both in time slices; the
   * changes the page makes meanwhile are held back and applied after the snapshot, so the
   * stream stays consistent. */
  // Starts a plan of the subtree at `root`; walk() does the work.
  function plan(root, um) {
    return { N: [], PI: [], SL: [], sn: [root], sp: [-1], sl: ["c"], f: nid, um: um, i: 0, o: [], u: [] };
  }
  /* Walks the planned tree until done (true) or past `until` (false; call again). Between
   * two calls the page may change the tree; the walk stays consistent with the changes held
   * meanwhile: a node's children are read when it is visited, and a node already visited
   * (moved under a parent visited later) is not visited twice, so every held change applies
   * to the tree as planned. */
  function walk(P, until) {
    var N = P.N, sn = P.sn, sp = P.sp, sl = P.sl, n, t, d, j, nm, c = 0;
    function put(x, slot) {
      sn.push(x);
      sp.push(j);
      sl.push(slot);
      // Roots are watched as soon as they are found: what happens inside them is held.
      if (slot !== "c") watch(x);
    }
    while (sn.length) {
      if ((++c & 1023) === 0 && performance.now() > until) return false;
      n = sn.pop();
      if (ids.has(n)) { sp.pop(); sl.pop(); continue; }
      j = N.length;
      N.push(n);
      P.PI.push(sp.pop());
      P.SL.push(sl.pop());
      ids.set(n, nid++);
      t = n.nodeType;
      if (t === 1) {
        nm = n.localName;
        if (nm === "script" || n.hasAttribute(EXA)) continue;
      } else if (t !== 9 && t !== 11) continue;
      // Last child first, so the first pops first: ids come out in document order.
      for (d = n.lastChild; d; d = d.previousSibling) put(d, "c");
      if (t === 1) {
        if (nm === "iframe" || nm === "frame") { hook(n); if ((d = fdoc(n))) put(d, "frame"); }
        if (nm === "template" && n.content) { tplOf.set(n.content, n); put(n.content, "tpl"); }
        if (n.shadowRoot) put(n.shadowRoot, "shadow");
      }
    }
    return true;
  }
  // The object for planned node `i`, without its children; notes whether it is unmasked.
  function make(P, i) {
    var n = P.N[i], t = n.nodeType, pi = P.PI[i], um = pi < 0 ? P.um : P.u[pi], o = { nt: t }, a, at, k, x, q;
    // Only a tree's root says its id; the others follow in document order (see the header).
    if (!i) o.id = P.f;
    if (t === 1) {
      o.tag = n.localName;
      if (n.namespaceURI === SVG) o.svg = true;
      at = n.attributes;
      if (at.length) {
        if (!um && unm(n)) um = true;
        a = o.a = {};
        for (k = 0; k < at.length; k++) { x = at[k]; a[x.name] = av(x.name, x.value, um, n); }
        if (n.hasAttribute(EXA)) { q = n.getBoundingClientRect(); o.excl = [rnd(q.width), rnd(q.height)]; }
      } else if (!um && !UNQ && unm(n)) um = true;
    } else if (t === 3 || t === 4 || t === 8) o.x = tx(n, um);
    else if (t === 10) o.tag = n.name;
    P.u[i] = um;
    return o;
  }
  // Builds the planned tree as objects (P.o[0] is the root).
  function build(P, until) {
    var O = P.o, o, par;
    for (; P.i < P.N.length; P.i++) {
      if ((P.i & 255) === 0 && performance.now() > until) return false;
      o = O[P.i] = make(P, P.i);
      if ((par = O[P.PI[P.i]])) {
        if (P.SL[P.i] === "c") (par.c || (par.c = [])).push(o);
        else par[P.SL[P.i]] = o;
      }
    }
    return true;
  }
  /* Builds the planned tree as JSON text, in slices like build() (a snapshot of 100 000 nodes
   * is megabytes: one JSON.stringify of it would be a long task of its own). Nodes come in
   * document order with their roots before their children, so text can be written as it
   * goes: a node stays open until a node that is not its descendant comes. */
  function text(P, until) {
    var T = P.T || (P.T = []), open = P.open || (P.open = []), top, s, slot;
    function close() { var e = open.pop(); T.push(e[1] ? "]}" : "}"); }
    for (; P.i < P.N.length; P.i++) {
      if ((P.i & 255) === 0 && performance.now() > until) return false;
      s = JSON.stringify(make(P, P.i));
      while (open.length && open[open.length - 1][0] !== P.PI[P.i]) close();
      if ((top = open[open.length - 1])) {
        slot = P.SL[P.i];
        if (slot !== "c") T.push(',"' + slot + '":');
        else if (top[1]) T.push(",");
        else { T.push(',"c":['); top[1] = 1; }
      }
      T.push(s.slice(0, -1));
      open.push([P.i, 0]);
    }
    while (open.length) close();
    return true;
  }
  function ser(n, um) { var P = plan(n, um); walk(P, 1 / 0); build(P, 1 / 0); return P.o[0]; }
  function forget(n) {
    ids.delete(n);
    if (n.shadowRoot) forget(n.shadowRoot);
    if (n.content && n.localName === "template") forget(n.content);
    for (var c = n.firstChild; c; c = c.nextSibling) forget(c);
  }
  function watch(root) {
    if (!MO) MO = new MutationObserver(safe(onMut));
    MO.observe(root, { childList: true, attributes: true, characterData: true, subtree: true });
  }
  // A new root under a recorded element: a shadow root attached now, or a document loaded
  // into an iframe. Mutations already queued go first, so the stream keeps its order.
  function newRoot(host, r) {
    var id = ids.get(host);
    if (!REC || broken || !id || !r || ids.has(r)) return;
    if (snapping) return void later.push(function () { newRoot(host, r); });
    if (MO) onMut(MO.takeRecords());
    push({ k: "mut", t: now(), roots: [{ id: id, node: ser(r, !!near(host, UNS)) }] });
    watch(r);
  }
  var hooked = new WeakSet();
  function hook(f) {
    if (hooked.has(f)) return;
    hooked.add(f);
    f.addEventListener("load", safe(function () { newRoot(f, fdoc(f)); }));
  }
  var AS = W.Element && Element.prototype.attachShadow;
  if (AS) Element.prototype.attachShadow = function () {
    var r = AS.apply(this, arguments);
    try { if (this.shadowRoot === r) newRoot(this, r); } catch (e) {}
    return r;
  };

  /* ---------- mutations ---------- */
  function hot(n, t) {
    var h = heat.get(n);
    if (!h || t - h[1] > 1000) heat.set(n, (h = [0, t]));
    return ++h[0] > 50;
  }
  // Nodes inside an excluded subtree never have ids, so only ids are checked here; whether a
  // node is unmasked is looked up once per parent.
  function attrsOf(M, first, out) {
    var memo = new Map();
    M.forEach(function (names, el) {
      var id = ids.get(el), a = {}, um, p;
      if (!id || id >= first) return;
      p = el.parentNode;
      um = unm(el) || (memo.has(p) ? memo.get(p) : (memo.set(p, (um = !!(p && near(p, UNS)))), um));
      names.forEach(function (k) { var v = el.getAttribute(k); a[k] = v == null ? null : av(k, v, um, el); });
      out.push({ id: id, a: a });
    });
    return out;
  }
  function textsOf(S, first, out) {
    S.forEach(function (n) {
      var id = ids.get(n);
      if (id && id < first) out.push({ id: id, x: tx(n, !!near(n, UNS)) });
    });
    return out;
  }
  function mut(adds, rems, at, tt) {
    var o = { k: "mut", t: now() };
    if (adds.length) o.adds = adds;
    if (rems.length) o.rems = rems;
    if (at.length) o.attrs = at;
    if (tt.length) o.texts = tt;
    return adds.length || rems.length || at.length || tt.length ? o : null;
  }
  // Circuit breaker: once recording DOM changes has cost more than BRK ms of main thread
  // (a fifth) within 5 s (or a snapshot has more than 200 000 changes waiting), DOM recording stops
  // for the page view and the stream says so ("$breaker"). Clicks, errors and the rest go on.
  var BRK = +C.breakerMs > 0 ? +C.breakerMs : 1000, bw = -1 / 0, bs = 0, broken = false;
  function trip(why) {
    broken = true;
    if (MO) MO.disconnect();
    dA.clear();
    dT.clear();
    held = [];
    push({ k: "custom", t: now(), name: "$breaker", data: why });
  }
  function onMut(rs) {
    if (!REC || !rs.length || broken) return;
    if (snapping) {
      held.push.apply(held, rs);
      return void (held.length > 200000 && trip({ held: held.length }));
    }
    var t0 = performance.now();
    if (t0 - bw > 5000) { bw = t0; bs = 0; }
    mutate(rs);
    if ((bs += performance.now() - t0) > BRK) trip({ ms: rnd(bs), records: rs.length });
  }
  function mutate(rs) {
    var t = now(), first = nid, A = new Map(), T = new Set(), cand = new Set(), rm = new Set(), adds = [], rems = [];
    rs.forEach(function (r) {
      var g = r.target, p, h, s;
      if (r.type === "childList") {
        // A parent with no id is new in this callback (its own add covers it) or is inside
        // an excluded subtree: nothing to do either way.
        if (!ids.has(g)) return;
        // Ids are forgotten only after all records: a node moved into a removed one later
        // in the same callback must still get its own `rem`.
        r.removedNodes.forEach(function (n) {
          var id = ids.get(n);
          if (!id || rm.has(n)) return;
          if ((p = ids.get(g)) && !rm.has(g)) rems.push({ p: p, id: id });
          rm.add(n);
        });
        r.addedNodes.forEach(function (n) { cand.add(n); });
      } else if (ids.has(g)) {
        h = hot(g, t);
        if (r.type === "attributes") {
          s = (h ? dA : A).get(g);
          if (!s) (h ? dA : A).set(g, (s = new Set()));
          s.add(r.attributeName);
        } else (h ? dT : T).add(g);
      }
    });
    rm.forEach(forget);
    cand.forEach(function (n) {
      // Climb to a recorded ancestor; none means the node is no longer in a recorded tree
      // (added, then taken out again). Template content is never "connected", so this is
      // not isConnected.
      if (ids.has(n)) return;
      var u = n, p = n.parentNode, l = [], s, nx, i, o, um, pid;
      while (p && !ids.has(p)) { u = p; p = p.parentNode; }
      if (!p || ids.has(u) || p.localName === "script" || near(p, EXS)) return;
      // u and its unknown following siblings, last first: each `n` is already known.
      for (s = u; s && !ids.has(s); s = s.nextSibling) l.push(s);
      nx = s ? ids.get(s) : 0;
      pid = ids.get(p);
      um = !!near(p, UNS);
      for (i = l.length - 1; i >= 0; i--) { o = ser(l[i], um); adds.push({ p: pid, n: nx, node: o }); nx = o.id; }
    });
    var m = mut(adds, rems, attrsOf(A, first, []), textsOf(T, first, []));
    if (m) push(m);
  }

  /* ---------- targets ---------- */
  var TIDS = ["data-testid", "data-test-id", "data-test"];
  function tida(e) { for (var i = 0; i < 3; i++) if (e.hasAttribute(TIDS[i])) return TIDS[i]; }
  function auto(id) { return !id || /\d{4}|:/.test(id) || id.length > 40; }
  function esc(s) { return W.CSS && CSS.escape ? CSS.escape(s) : s; }
  function cpath(e) {
    var p = [], i, s, k, a, more;
    for (i = 0; e && e.nodeType === 1 && i < 5; i++, e = e.parentElement) {
      if ((a = tida(e))) { p.unshift("[" + a + '="' + e.getAttribute(a).replace(/["\\]/g, "\\$&") + '"]'); break; }
      if (!auto((k = e.getAttribute("id")))) { p.unshift("#" + esc(k)); break; }
      s = e.localName;
      if (s === "body" || s === "html") { p.unshift(s); break; }
      for (k = 1, a = e.previousElementSibling; a; a = a.previousElementSibling) if (a.localName === s) k++;
      for (more = k > 1, a = e.nextElementSibling; a && !more; a = a.nextElementSibling) more = a.localName === s;
      p.unshift(more ? s + ":nth-of-type(" + k + ")" : s);
    }
    return p.join(">");
  }
  function hard(e) {
    var t = e.localName;
    return t === "a" ? e.hasAttribute("href")
      : /^(button|select|summary|label)$/.test(t) ||
        (t === "input" && /^(button|submit|reset|image|checkbox|radio)$/.test(e.type)) ||
        /^(button|link|tab|menuitem|checkbox|option)$/.test(e.getAttribute("role")) ||
        e.hasAttribute("onclick");
  }
  function ptr(e) { try { return getComputedStyle(e).cursor === "pointer"; } catch (x) { return false; } }
  function textish(e) { return e.localName === "input" && !/^(button|submit|reset|image|checkbox|radio|range|color|file|hidden)$/.test(e.type); }
  function role(e) {
    var r = e.getAttribute("role"), t = e.localName, y = e.type;
    if (r) return r;
    if (t === "a" || t === "area") return e.hasAttribute("href") ? "link" : null;
    if (t === "input") return /^(submit|button|reset|image)$/.test(y) ? "button" : /^(checkbox|radio)$/.test(y) ? y : TXT.test(y) ? "textbox" : y === "number" ? "spinbutton" : null;
    return { button: "button", select: "combobox", textarea: "textbox" }[t];
  }
  function txt(e) {
    var w = D.createTreeWalker(e, 4), s = "", n;
    // Never the text of fields or of contenteditable areas: that is what people typed.
    while ((n = w.nextNode()) && s.length < 400) if (!/^(script|style|textarea|select|option)$/.test(n.parentNode.localName) && !n.parentNode.isContentEditable) s += n.data;
    return s.replace(/\s+/g, " ").trim().slice(0, 60);
  }
  function aname(e) {
    var t = e.localName, v = e.getAttribute("aria-label"), i;
    if (!v && (v = e.getAttribute("aria-labelledby")))
      v = v.split(/\s+/).map(function (x) { x = D.getElementById(x); return x ? txt(x) : ""; }).join(" ");
    if (!v && t === "input" && /^(button|submit|reset)$/.test(e.type)) v = e.value;
    if (!v && t === "img") v = e.alt;
    if (!v && !FIELD.test(t) && !e.isContentEditable) v = txt(e) || ((i = e.querySelector("img[alt]")) && i.alt);
    return v ? v.replace(/\s+/g, " ").trim().slice(0, 60) : "";
  }
  function tgt(e) {
    var t = e.localName.toLowerCase(), a = tida(e), v, lb;
    var o = {
      tag: t, path: cpath(e), ia: !!(hard(e) || ptr(e)),
      quiet: /^(textarea|select|canvas)$/.test(t) || textish(e) || e.isContentEditable ||
        (t === "a" && (e.hasAttribute("download") || e.getAttribute("target") === "_blank"))
    };
    if (a) o.testid = e.getAttribute(a);
    if (!auto((v = e.getAttribute("id")))) o.eid = v;
    if ((v = role(e))) o.role = v;
    if ((v = e.getAttribute("name"))) o.field = v;
    if (t === "input" || t === "button") o.type = e.type;
    if ((t === "a" || t === "area") && (v = e.getAttribute("href")) != null) o.href = url(v);
    if (near(e, UNS)) {
      if ((v = aname(e))) o.name = v;
      lb = e.labels && e.labels[0];
      if (lb && near(lb, UNS) && (v = txt(lb))) o.label = v;
    }
    return o;
  }
  function el(e) {
    var p = e.composedPath && e.composedPath()[0], t = p && p.nodeType ? p : e.target;
    if (t && t.nodeType === 3) t = t.parentNode;
    return t && t.nodeType === 1 ? t : null;
  }
  function pick(e) {
    var x = near(e, EXS), c, i;
    if (x) return x;
    if (FIELD.test(e.localName) || e.isContentEditable) return e;
    for (c = e, i = 0; c && i < 6; c = c.parentElement, i++) if (hard(c)) return c;
    if (ptr(e)) for (i = 0; i < 5 && e.parentElement && ptr(e.parentElement); i++) e = e.parentElement;
    return e;
  }

  /* ---------- inputs ---------- */
  function isField(e) { return e && (FIELD.test(e.localName) || e.isContentEditable) && !near(e, EXS); }
  /* Luhn check: a card-shaped value is classed "card" (the class only; never the digits). */
  function luhn(w) {
    var s = 0, i, n, digits = w.replace(/\D/g, "");
    for (i = 0; i < digits.length; i++) {
      n = +digits[digits.length - 1 - i];
      if (i % 2) { n *= 2; if (n > 9) n -= 9; }
      s += n;
    }
    return s % 10 === 0;
  }
  function cls(e, v) {
    var y = e.type || "", w = v.trim(), d = (w.match(/\d/g) || []).length;
    if (y === "checkbox") return "toggle";
    if (y === "radio" || e.localName === "select") return "choice";
    if (!w) return "empty";
    if (/^(date|time|datetime-local|month|week)$/.test(y)) return "date";
    if (e.localName === "input" && !TXT.test(y) && y !== "number") return "other";
    if (/@/.test(w)) return /^[^\s@]+@[^\s@]+\.[^\s@.]{2,}$/.test(w) ? "email" : "bad_email";
    if (/^[-+]?\d*[.,]?\d+$/.test(w) && (y === "number" || d < 7)) return "number";
    if (d >= 12 && d <= 19 && /^[\d -]+$/.test(w) && luhn(w)) return "card";
    if (d >= 7 && /^[\d\s+().-]+$/.test(w)) return "phone";
    return w.split(/\s+/).length <= 3 && w.length <= 40 ? "short_text" : "long_text";
  }
  function settle(e, force) {
    var s = edits.get(e), v, o;
    if (!s) { if (!force) return; s = { k: 0, f: 0, l: 0, d: 0, p: false }; }
    edits.delete(e);
    v = String((FIELD.test(e.localName) ? e.value : e.textContent) || "");
    o = { k: "input", t: now(), id: ids.get(e) || 0, tgt: tgt(e), cls: cls(e, v), len: v.length, keys: s.k, dur: Math.max(0, s.l - s.f), dels: s.d, paste: s.p };
    if (o.cls === "toggle" || e.type === "radio") o.idx = e.checked ? 1 : 0;
    else if (o.cls === "choice") o.idx = e.selectedIndex;
    push(o);
  }
  function settleAll(form) {
    edits.forEach(function (s, e) { if (!form || e.form === form || form.contains(e)) settle(e); });
  }

  /* ---------- throttling ---------- */
  var TH = new WeakMap();
  function thr(key, ms, fn) {
    var s = TH.get(key), n = now();
    if (!s) TH.set(key, (s = { l: 0, h: 0 }));
    if (s.h) return;
    if (n - s.l >= ms) { s.l = n; fn(); }
    else s.h = setTimeout(safe(function () { s.h = 0; s.l = now(); if (REC) fn(); }), ms - n + s.l);
  }

  /* ---------- errors ---------- */
  function scrub(m) {
    return String(m)
      .replace(/[\w.+-]+@[\w-]+(\.[\w-]+)+/g, "<email>")
      .replace(/[?#][^\s"'`]*=[^\s"'`]*/g, "?\u2026")
      .replace(/'[^']*'|"[^"]*"|`[^`]*`/g, '"\u2026"')
      .replace(/\d+/g, "0")
      .slice(0, 300);
  }
  function err(k, m, f, l, c) {
    m = scrub(m);
    var n = errs.get(m) || 0, o;
    if (n >= 5 || (!n && errs.size >= 200)) return;
    errs.set(m, n + 1);
    o = { k: "err", t: now(), ek: k, msg: m, line: l >>> 0, col: c >>> 0 };
    if (f) o.src = url(f);
    push(o);
  }
  function emsg(a) { return a instanceof Error ? a.name + ": " + a.message : a && a.message ? a.message : String(a); }

  /* ---------- network ---------- */
  function hd(get) {
    var o = {}, k = 0;
    HDR.forEach(function (n) { var v; try { v = get(n); } catch (e) {} if (v != null) { o[n] = String(v).slice(0, 200); k = 1; } });
    return k ? o : null;
  }
  function net(via, m, u, st, t0, h) {
    var x = url(u), o;
    if (!x || x === EPU) return;
    o = { k: "net", t: now(), via: via, method: String(m || "GET").toUpperCase(), url: x, status: Math.min(st >>> 0, 999), dur: Math.max(0, now() - t0) };
    if (h) o.hdr = h;
    push(o);
  }

  /* ---------- transport ---------- */
  // A snapshot's tree arrives as JSON text (see text()); it is put in place after stringify.
  var RAW = "\u0001understudy-snap\u0001";
  function batch(ev) {
    var raw = null, s;
    ev = ev.map(function (e) {
      if (e.k !== "snap" || typeof e.node !== "string") return e;
      raw = e.node;
      return { k: e.k, t: e.t, node: RAW, sx: e.sx, sy: e.sy };
    });
    s = JSON.stringify({ v: SCHEMA, sid: SID, pvid: PV, seq: seq(), sent: now(), events: ev });
    return raw == null ? s : s.replace(JSON.stringify(RAW), function () { return raw; });
  }
  function gz(s) {
    return new Response(new Blob([s]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer();
  }
  function done(it) {
    var i = live.indexOf(it);
    if (i >= 0) { live.splice(i, 1); qb -= it.sz; }
  }
  function post(it, b) {
    if (it.x || !F) return;
    var ka = size(b) <= 60000;
    it.st = ka ? 1 : 2;
    F.call(W, EP, { method: "POST", body: b, keepalive: ka, mode: "cors", credentials: "omit", headers: { "Content-Type": "text/plain" } })
      .then(function (r) { if (r.status >= 500 || r.status === 429) retry(it); else done(it); }, function () { retry(it); });
  }
  // Exponential back-off from 1 s to 30 s, with ±25% jitter so pages do not retry in step.
  function retry(it) {
    if (it.x) return;
    it.st = 3;
    var d = Math.min(30000, 1000 * Math.pow(2, it.n++));
    it.h = setTimeout(safe(function () { post(it, it.b || it.s); }), d * (0.75 + Math.random() / 2));
  }
  function beacon(b) {
    try { return size(b) <= 65536 && navigator.sendBeacon(EP, new Blob([b], { type: "text/plain" })); } catch (e) { return false; }
  }
  // Past the queue bound, the oldest batches waiting for a retry are dropped and counted.
  function bound() {
    for (var i = 0, o; (qb > QB || live.length > 1000) && i < live.length - 1;) {
      o = live[i];
      if (o.st !== 3) { i++; continue; }
      o.x = 1;
      clearTimeout(o.h);
      done(o);
      lost.batches++;
      lost.events += o.ne;
      lost.bytes += o.sz;
      // A dropped batch that was itself reporting a loss hands its count on.
      if (o.lost) { lost.batches += o.lost.batches; lost.events += o.lost.events; lost.bytes += o.lost.bytes; }
      arm();
    }
  }
  // Queues a batch; unless `held`, compresses it (in order) and posts it.
  function ship(ev, held) {
    var s = batch(ev), it = { s: s, n: 0, st: 0, ne: ev.length, sz: s.length };
    if (typeof W.__understudyEmit === "function") { try { W.__understudyEmit(s); } catch (e) {} return; }
    ev.forEach(function (e) { if (e.name === "$lost") it.lost = e.data; });
    enqueue(it);
    if (held) it.st = 4;
    else send(it);
  }
  function enqueue(it) {
    live.push(it);
    qb += it.sz;
    bound();
  }
  function send(it) {
    var s = it.s;
    it.st = 0;
    chain = chain
      .then(function () { return W.CompressionStream && !it.x ? gz(s) : s; })
      .catch(function () { return s; })
      .then(function (b) {
        if (it.x) return;
        if (b !== s) { qb += b.byteLength - it.sz; it.sz = b.byteLength; it.b = b; it.s = null; }
        post(it, b);
      })
      .catch(function () {});
  }
  /* At page hide, keepalive requests may carry 64 KiB in all. What waits goes by beacon,
   * oldest first, while it fits. When the page is leaving, the rest is kept in
   * sessionStorage and sent by the session's next page view (the collector ignores a batch
   * it already has); when it is only hidden, the rest goes on as usual. */
  var STASH = "__us_stash";
  function hide(leaving) {
    var room = 65536, keep = [], n = 0, x = { batches: 0, events: 0, bytes: 0 };
    live.forEach(function (it) { if (it.st === 1) room -= it.sz; });
    live.slice().forEach(function (it) {
      if (it.st === 1) return;
      var b = it.b || it.s, z = size(b);
      if (z <= room && beacon(b)) { room -= z; it.x = 1; clearTimeout(it.h); done(it); }
      else if (!leaving) { if (it.st === 4) send(it); }
      else if ((n += z) <= 2e6) keep.push(it.b ? [1, latin1(new Uint8Array(it.b))] : [0, it.s]);
      else { x.batches++; x.events += it.ne; x.bytes += z; }
    });
    if (leaving && (keep.length || x.batches)) {
      try { sessionStorage.setItem(STASH, JSON.stringify({ q: keep, lost: x })); } catch (e) {}
    }
  }
  function latin1(u) {
    for (var s = "", i = 0; i < u.length; i += 8192) s += String.fromCharCode.apply(null, u.subarray(i, i + 8192));
    return s;
  }
  // Sends what the session's previous page view could not, and reports what it dropped.
  function unstash() {
    var v;
    try { v = JSON.parse(sessionStorage.getItem(STASH) || "null"); sessionStorage.removeItem(STASH); } catch (e) { return; }
    if (!v || !v.q) return;
    v.q.forEach(function (e) {
      var it = { s: e[0] ? null : String(e[1]), n: 0, st: 0, ne: 0, sz: String(e[1]).length }, u, i;
      if (e[0]) {
        u = new Uint8Array(e[1].length);
        for (i = 0; i < u.length; i++) u[i] = e[1].charCodeAt(i);
        it.b = u.buffer;
      }
      enqueue(it);
      post(it, it.b || it.s);
    });
    if (v.lost && v.lost.batches) ["batches", "events", "bytes"].forEach(function (k) { lost[k] += +v.lost[k] || 0; });
  }
  function flush(sync, leaving) {
    if (tm > 0) clearTimeout(tm);
    tm = 0;
    if (!REC) return;
    if (sync && snapping) { walk(snapping.P, 1 / 0); text(snapping.P, 1 / 0); endSnap(); }
    var m = mut([], [], attrsOf(dA, 1 / 0, []), textsOf(dT, 1 / 0, [])), ev, cur = [], sz = 0;
    dA.clear();
    dT.clear();
    if (m) buf.push(m);
    if (lost.batches) {
      buf.push({ k: "custom", t: now(), name: "$lost", data: lost });
      lost = { batches: 0, events: 0, bytes: 0 };
    }
    mv = null;
    ev = buf;
    buf = [];
    if (sync) {
      // Uncompressed (compression is asynchronous), in batches that fit a beacon.
      ev.forEach(function (e) {
        var l = size(JSON.stringify(e));
        if (cur.length && sz + l > 60000) { ship(cur, 1); cur = []; sz = 0; }
        cur.push(e);
        sz += l;
      });
      if (cur.length) ship(cur, 1);
      hide(leaving);
    } else if (ev.length) ship(ev);
  }

  /* ---------- lifecycle ---------- */
  function navType() {
    var e = performance.getEntriesByType && performance.getEntriesByType("navigation")[0], t = e && e.type;
    if (e && e.activationStart > 0) return "prerender";
    return /^(navigate|reload|back_forward|prerender)$/.test(t) ? t : "navigate";
  }
  function meta(load) {
    var r = D.referrer, o = {
      k: "meta", t: now(), url: url(L.href), load: load || navType(), w: innerWidth >>> 0, h: innerHeight >>> 0,
      dpr: +W.devicePixelRatio || 1, touch: !!(W.matchMedia && matchMedia("(pointer: coarse)").matches), script: VERSION
    };
    try { if (r && new URL(r).origin === L.origin) o.referrer = url(r); } catch (e) {}
    return o;
  }
  function begin(load) {
    var g = ++gen;
    if (MO) MO.disconnect();
    PV = rid("p");
    errs.clear();
    ids = new WeakMap();
    nid = 1;
    snapping = null;
    held = [];
    later = [];
    broken = false;
    bs = 0;
    push(meta(load));
    var snap = safe(function () {
      if (!REC || g !== gen) return;
      // From here every change is observed; it is held until the snapshot is out.
      snapping = { P: plan(D, false), g: g, t: now(), walked: false };
      watch(D);
      step();
    });
    if (D.readyState === "loading") D.addEventListener("DOMContentLoaded", snap, { once: true });
    else snap();
  }
  // The snapshot is walked and built in slices of SLICE ms; the page runs in between.
  var SLICE = 12, tick = (function () {
    var q = [], ch = W.MessageChannel && new MessageChannel();
    if (!ch) return function (f) { setTimeout(f, 0); };
    ch.port1.onmessage = function () { var f = q.shift(); if (f) f(); };
    return function (f) { q.push(f); ch.port2.postMessage(0); };
  })();
  var step = safe(function () {
    var j = snapping;
    if (!j) return;
    if (!REC || j.g !== gen) return void (snapping = null);
    var until = performance.now() + SLICE;
    if (!j.walked) j.walked = walk(j.P, until);
    if (j.walked && text(j.P, until)) endSnap();
    else tick(step);
  });
  function endSnap() {
    var j = snapping, h = held, l = later;
    snapping = null;
    held = [];
    later = [];
    push({ k: "snap", t: j.t, node: j.P.T.join(""), sx: rnd(W.scrollX), sy: rnd(W.scrollY) });
    onMut(h);
    l.forEach(function (e) { if (typeof e === "function") e(); else push(e); });
  }
  function start() {
    if (REC || !ok) return;
    REC = true;
    session();
    unstash();
    begin();
  }
  function stop() {
    ok = REC = false;
    gen++;
    if (MO) MO.disconnect();
    if (tm > 0) clearTimeout(tm);
    tm = 0;
    buf = [];
    mv = null;
    snapping = null;
    held = [];
    later = [];
    live.forEach(function (it) { it.x = 1; clearTimeout(it.h); });
    live = [];
    qb = 0;
    edits.clear();
    dA.clear();
    dT.clear();
  }

  /* ---------- listeners ---------- */
  on(D, "click", function (e) {
    var t = el(e);
    if (!t) return;
    t = pick(t);
    push({ k: "click", t: now(), id: ids.get(t) || 0, x: rnd(e.clientX), y: rnd(e.clientY), tgt: tgt(t), btn: e.button > 0 ? e.button & 255 : 0, trusted: e.isTrusted });
  });
  on(D, "input", function (e) {
    var t = el(e), s, n = now(), y = e.inputType || "";
    if (!isField(t)) return;
    if (!(s = edits.get(t))) edits.set(t, (s = { k: 0, f: n, d: 0, p: false }));
    s.k++;
    s.l = n;
    if (/^delete/.test(y)) s.d++;
    if (/^insertFrom(Paste|Drop)$/.test(y)) s.p = true;
  });
  on(D, "change", function (e) { var t = el(e); if (isField(t)) settle(t, 1); });
  on(D, "focusout", function (e) { var t = el(e); if (t) settle(t); });
  on(D, "submit", function (e) {
    var f = el(e);
    if (!f) return;
    settleAll(f);
    push({ k: "submit", t: now(), id: ids.get(f) || 0, tgt: tgt(f) });
  });
  on(D, "scroll", function (e) {
    var t = e.target, d = t === D || t === D.documentElement || t === D.scrollingElement, id = d ? 0 : ids.get(t);
    if (!d && !id) return;
    thr(t, 100, function () {
      push({ k: "scroll", t: now(), id: id, x: rnd(d ? W.scrollX : t.scrollLeft), y: rnd(d ? W.scrollY : t.scrollTop) });
    });
  });
  on(W, "resize", function () {
    thr(W, 250, function () { push({ k: "resize", t: now(), w: innerWidth >>> 0, h: innerHeight >>> 0 }); });
  });
  var ml = 0;
  on(D, "pointermove", function (e) {
    var n = now();
    if (n - ml < 50) return;
    ml = n;
    if (!mv || mv.pts.length >= 300) push((mv = { k: "move", t: n, pts: [] }));
    mv.pts.push([rnd(e.clientX), rnd(e.clientY), n - mv.t]);
  });
  on(D, "visibilitychange", function () {
    var h = D.visibilityState === "hidden";
    if (!gone) push({ k: "vis", t: now(), hidden: h });
    if (h) flush(1, false);
  });
  var lastU = url(L.href);
  function nav(k) {
    var u = url(L.href);
    if (k !== "replace" || u !== lastU) push({ k: "nav", t: now(), nav: k, url: u });
    lastU = u;
  }
  on(W, "popstate", function () { nav("pop"); });
  on(W, "hashchange", function () { nav("hash"); });
  function bye() {
    if (!gone) { settleAll(); nav("leave"); gone = true; }
    flush(1, true);
  }
  on(W, "pagehide", bye, false);
  // A CDP binding call made in pagehide is lost when a navigation commits: the simulator's
  // pages leave at beforeunload instead (real pages keep bfcache-friendly pagehide only).
  if (typeof W.__understudyEmit === "function") on(W, "beforeunload", bye, false);
  on(W, "pageshow", function (e) { gone = false; if (e.persisted) begin("back_forward"); }, false);
  on(W, "error", function (e) {
    if (e.target && e.target !== W) return;
    err("uncaught", e.message || (e.error && emsg(e.error)) || "Script error", e.filename, e.lineno, e.colno);
  }, false);
  on(W, "unhandledrejection", function (e) { err("rejection", emsg(e.reason)); }, false);

  /* ---------- patches ---------- */
  ["pushState", "replaceState"].forEach(function (m, i) {
    var f = history[m];
    if (f) history[m] = function () {
      var r = f.apply(this, arguments);
      try { if (REC) nav(i ? "replace" : "push"); } catch (e) {}
      return r;
    };
  });
  var ce = console.error, inErr = 0;
  if (ce) console.error = function () {
    if (REC && !inErr) {
      inErr = 1;
      try { err("console", [].map.call(arguments, emsg).join(" ")); } catch (e) {}
      inErr = 0;
    }
    return ce.apply(this, arguments);
  };
  if (F) W.fetch = function (i, o) {
    var t0 = now(), m, u, q, p;
    try {
      u = (i && i.url) || String(i);
      m = (o && o.method) || (i && i.method);
      if (HDR.length) q = new Headers((o && o.headers) || (i && i.headers) || undefined);
    } catch (e) {}
    p = F.apply(W, arguments);
    try {
      if (REC && u) p.then(safe(function (r) {
        net("fetch", m, u, r.status, t0, hd(function (n) { return (q && q.get(n)) || r.headers.get(n); }));
      }), safe(function () { net("fetch", m, u, 0, t0); }));
    } catch (e) {}
    return p;
  };
  var XP = W.XMLHttpRequest && XMLHttpRequest.prototype, XS = new WeakMap();
  if (XP) {
    var xo = XP.open, xs = XP.send, xh = XP.setRequestHeader;
    XP.open = function (m, u) {
      try { XS.set(this, { m: m, u: String(u), h: {}, t: 0, w: (XS.get(this) || {}).w }); } catch (e) {}
      return xo.apply(this, arguments);
    };
    XP.setRequestHeader = function (n, v) {
      try { var s = XS.get(this); n = String(n).toLowerCase(); if (s && HDR.indexOf(n) >= 0) s.h[n] = v; } catch (e) {}
      return xh.apply(this, arguments);
    };
    XP.send = function () {
      var x = this, s = XS.get(x);
      try {
        if (s && REC) {
          s.t = now();
          if (!s.w) {
            s.w = 1;
            x.addEventListener("loadend", safe(function () {
              var c = XS.get(x);
              if (c && c.t) net("xhr", c.m, c.u, x.status, c.t, hd(function (n) { return c.h[n] || x.getResponseHeader(n); }));
              if (c) c.t = 0;
            }));
          }
        }
      } catch (e) {}
      return xs.apply(this, arguments);
    };
  }

  /* ---------- page API ---------- */
  function api(c) {
    try {
      var a = [].slice.call(arguments, 1), o, d;
      if (c === "consent") { if (a[0]) { ok = true; start(); } else stop(); }
      else if (c === "flush") { flush(); return parseInt(sg("__us_seq"), 10) || 0; }
      else if (c === "identify") push({ k: "custom", t: now(), name: "identify", data: { user: String(a[0]).slice(0, 200) } });
      else if (c === "event" && a[0] != null) {
        o = { k: "custom", t: now(), name: String(a[0]).slice(0, 200) };
        try { d = JSON.stringify(a[1]); if (d && d.length <= 10000) o.data = JSON.parse(d); } catch (e) {}
        push(o);
      }
    } catch (e) {}
  }
  Object.defineProperty(api, "version", { value: VERSION, enumerable: true });
  W.understudy = api;

  function boot() {
    start();
    var q = old && old.q;
    if (q && q.forEach) q.forEach(function (c) { api.apply(null, c); });
  }
  if (D.prerendering) D.addEventListener("prerenderingchange", safe(boot), { once: true });
  else boot();
})();
