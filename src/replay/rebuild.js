/* understudy rebuild.js: rebuilds a recorded DOM from capture.js's `snap` and `mut` events.
 *
 * The player runs it against the document of an <iframe sandbox="allow-same-origin"> (no
 * scripts run there); the fidelity tests run the same code and compare `canon` strings of the
 * rebuilt and the live DOM. Wire format: src/event.rs (Node, Mutation).
 *
 * Attributes that would make the rebuilt page load or navigate on its own (an iframe's
 * `src`/`srcdoc`, `<meta http-equiv>`) are kept under a `data-understudy-was-` prefix;
 * `canon` reads them back under their own names, and ignores iframe `src`/`srcdoc` on both
 * sides (an iframe's recorded document is rebuilt in place instead).
 */
(function (G) {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg", WAS = "data-understudy-was-";

  function Rebuilder(doc) {
    this.doc = doc;
    this.map = new Map();
  }
  function neutral(tag, name) {
    var l = name.toLowerCase();
    return ((tag === "iframe" || tag === "frame") && (l === "src" || l === "srcdoc")) || (tag === "meta" && l === "http-equiv");
  }
  function setAttr(el, name, v) {
    var tag = el.localName;
    if (neutral(tag, name)) name = WAS + name;
    try {
      if (v == null) el.removeAttribute(name);
      else el.setAttribute(name, v);
    } catch (e) { /* a name the DOM refuses; the recording keeps it, the rebuild cannot */ }
  }
  function clear(p) { while (p.firstChild) p.removeChild(p.firstChild); }

  /* Makes the DOM node for `o` in document `doc`; children are filled in by fill(). */
  Rebuilder.prototype.make = function (o, doc) {
    var n, k;
    switch (o.nt) {
      case 1:
        n = o.svg ? doc.createElementNS(SVG, o.tag) : doc.createElement(o.tag);
        for (k in o.a || {}) setAttr(n, k, o.a[k]);
        break;
      case 3: case 4: n = doc.createTextNode(o.x || ""); break;
      case 8: n = doc.createComment(o.x || ""); break;
      case 10: n = doc.implementation.createDocumentType(o.tag || "html", "", ""); break;
      default: return null;
    }
    this.map.set(o.id, n);
    return n;
  };
  /* Builds `o`'s children, shadow root and template content into `n`. Iframe documents are
   * filled once the iframe is connected (`frames`), since only then does it have one. */
  Rebuilder.prototype.fill = function (o, n, frames) {
    var doc = n.ownerDocument || n, i, c, m, r;
    if (o.shadow && n.attachShadow) {
      try { r = n.shadowRoot || n.attachShadow({ mode: "open" }); } catch (e) { r = null; }
      if (r) this.root(o.shadow, r, frames);
    }
    if (o.tpl && n.content) this.root(o.tpl, n.content, frames);
    if (o.frame) frames.push([n, o.frame]);
    for (i = 0; o.c && i < o.c.length; i++) {
      c = o.c[i];
      m = this.make(c, doc);
      if (!m) continue;
      n.appendChild(m);
      this.fill(c, m, frames);
    }
  };
  /* Puts recorded root `o` (a document, shadow root or template content) into `r`. */
  Rebuilder.prototype.root = function (o, r, frames) {
    clear(r);
    this.map.set(o.id, r);
    this.fill(o, r, frames);
  };
  Rebuilder.prototype.frames = function (frames) {
    var f, d;
    while ((f = frames.shift())) {
      try { d = f[0].contentDocument; } catch (e) { d = null; }
      if (d) this.root(f[1], d, frames);
    }
  };
  Rebuilder.prototype.subtree = function (o, doc, frames) {
    var n = this.make(o, doc);
    if (n) this.fill(o, n, frames);
    return n;
  };

  /* On the wire only a tree's root carries `id`; the others follow in document order (the
   * node, its shadow root, template content, iframe document, then children). */
  function number(o) {
    var next = o.id, st = [o], n;
    while ((n = st.pop())) {
      if (n.id == null || n.id === 0) n.id = next;
      next = n.id + 1;
      for (var i = (n.c || []).length - 1; i >= 0; i--) st.push(n.c[i]);
      if (n.frame) st.push(n.frame);
      if (n.tpl) st.push(n.tpl);
      if (n.shadow) st.push(n.shadow);
    }
  }

  Rebuilder.prototype.apply = function (ev) {
    var self = this, frames = [];
    if (!ev) return;
    if (ev.k === "snap") number(ev.node);
    (ev.adds || []).concat(ev.roots || []).forEach(function (a) { if (a.node) number(a.node); });
    if (ev.k === "snap") {
      this.map = new Map();
      this.root(ev.node, this.doc, frames);
    } else if (ev.k === "mut") {
      (ev.rems || []).forEach(function (r) {
        var n = self.map.get(r.id);
        if (n && n.parentNode) n.parentNode.removeChild(n);
      });
      (ev.adds || []).forEach(function (a) {
        var p = self.map.get(a.p), nx = a.n ? self.map.get(a.n) : null, n;
        if (!p) return;
        n = self.subtree(a.node, p.ownerDocument || p, frames);
        if (!n) return;
        try { p.insertBefore(n, nx && nx.parentNode === p ? nx : null); } catch (e) { return; }
        self.frames(frames);
      });
      (ev.roots || []).forEach(function (r) {
        var h = self.map.get(r.id), t = null;
        if (!h) return;
        if (r.node.nt === 11 && h.attachShadow) {
          try { t = h.shadowRoot || h.attachShadow({ mode: "open" }); } catch (e) { t = null; }
        } else if (r.node.nt === 9) {
          try { t = h.contentDocument; } catch (e) { t = null; }
        }
        if (t) self.root(r.node, t, frames);
      });
      (ev.attrs || []).forEach(function (c) {
        var n = self.map.get(c.id), k;
        if (n && n.nodeType === 1) for (k in c.a) setAttr(n, k, c.a[k]);
      });
      (ev.texts || []).forEach(function (c) {
        var n = self.map.get(c.id);
        if (n && n.nodeType !== 1) n.data = c.x;
      });
    }
    this.frames(frames);
  };
  Rebuilder.prototype.node = function (id) { return this.map.get(id) || null; };

  /* ---------- canonical form ---------- */

  function star(v) { return v.replace(/[\s\S]/g, "*"); }
  // capture.js's URL rule: origin + path for http(s), the scheme alone otherwise.
  function url(v, base) {
    try {
      var x = new URL(v, base);
      return /^https?:$/.test(x.protocol) ? x.origin + x.pathname : x.protocol;
    } catch (e) { return ""; }
  }
  /* One line per node, indented by depth. Options:
   *   live:  apply capture.js's unconditional rules to a live DOM (`value` masked, URLs cut
   *          to origin+path, textarea and contenteditable text masked);
   *   mask:  every text and attribute value replaced by "*" of its length (compare shape only);
   * Always: <script> children, the inside of [data-understudy-exclude] and iframe src/srcdoc
   * are left out, since capture.js never records them. */
  function canon(node, opt) {
    opt = opt || {};
    var out = [];
    function text(n, s) {
      var p = n.parentNode;
      if (opt.mask) return s.replace(/\S/g, "*");
      if (opt.live && p && (p.localName === "textarea" || p.isContentEditable) && p.localName !== "style") return s.replace(/\S/g, "*");
      return s;
    }
    function attrs(n) {
      var a = [], i, x, k, v, l, tag = n.localName;
      for (i = 0; i < n.attributes.length; i++) {
        x = n.attributes[i];
        k = x.name.indexOf(WAS) === 0 ? x.name.slice(WAS.length) : x.name;
        l = k.toLowerCase();
        if ((tag === "iframe" || tag === "frame") && (l === "src" || l === "srcdoc")) continue;
        v = x.value;
        if (opt.live) {
          if (l === "value") v = star(v);
          else if (/^(href|src|action|xlink:href)$/.test(l) && !(v[0] === "#" && n.namespaceURI === SVG)) v = url(v, n.baseURI);
        }
        if (opt.mask) v = star(v);
        a.push(k + "=" + JSON.stringify(v));
      }
      return a.sort().join(" ");
    }
    function walk(n, d) {
      var pad = new Array(d + 1).join("  "), t = n.nodeType, c, s, fd;
      if (t === 1) {
        s = attrs(n);
        out.push(pad + "<" + (n.namespaceURI === SVG ? "svg:" : "") + n.localName + (s ? " " + s : "") + ">");
        if (n.hasAttribute("data-understudy-exclude") || n.localName === "script") return;
        if (n.shadowRoot) { out.push(pad + "  #shadow-root"); kids(n.shadowRoot, d + 2); }
        if (n.localName === "template" && n.content) { out.push(pad + "  #template-content"); kids(n.content, d + 2); }
        if (n.localName === "iframe" || n.localName === "frame") {
          try { fd = n.contentDocument; } catch (e) { fd = null; }
          if (fd) { out.push(pad + "  #frame"); kids(fd, d + 2); }
        }
        kids(n, d + 1);
      } else if (t === 3 || t === 4) out.push(pad + "#text " + JSON.stringify(text(n, n.data)));
      else if (t === 8) out.push(pad + "#comment " + JSON.stringify(text(n, n.data)));
      else if (t === 10) out.push(pad + "#doctype " + n.name);
      else { out.push(pad + "#" + (t === 9 ? "document" : "fragment")); kids(n, d + 1); }
      function kids(p, dd) { for (c = p.firstChild; c; c = c.nextSibling) walk(c, dd); }
    }
    walk(node, 0);
    return out.join("\n");
  }

  G.UnderstudyRebuild = { Rebuilder: Rebuilder, canon: canon };
})(typeof window !== "undefined" ? window : this);
