/* Understudy Outfitters: page behaviour, shared by every build. Controls are found by their
 * data-testid, never by class, so the refactored markup runs the same code. Build switches
 * come from window.SHOP (set inline by the server). */
(function () {
  "use strict";
  var S = window.SHOP || {};
  function $(id) { return document.querySelector('[data-testid="' + id + '"]'); }
  function money(c) { return "$" + (c / 100).toFixed(2); }
  function api(method, path, body) {
    return fetch(path, {
      method: method, credentials: "same-origin",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined
    }).then(function (r) {
      return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || r.status); return j; });
    });
  }
  function setCount(n) { var b = $("cart-count"); if (b) b.textContent = String(n); }
  function refreshCount() { api("GET", "/api/cart").then(function (c) { setCount(c.count); }, function () {}); }
  // A page restored from the back/forward cache shows a stale badge: refresh it.
  addEventListener("pageshow", function (e) { if (e.persisted) refreshCount(); });

  /* Header menu (only the moved-cart build has one). */
  var tog = $("menu-toggle"), menu = $("menu");
  if (tog && menu) tog.addEventListener("click", function () {
    var open = menu.hidden;
    menu.hidden = !open;
    tog.setAttribute("aria-expanded", String(open));
  });

  /* Product page: add to cart. */
  var add = $("add-to-cart");
  if (add) add.addEventListener("click", function () {
    var id = +add.getAttribute("data-product"), label = add.textContent, note = $("added");
    add.disabled = true;
    add.textContent = "Adding…";
    api("POST", "/api/cart", { add: id }).then(function (c) {
      setCount(c.count);
      add.textContent = label;
      add.disabled = false;
      if (note) note.hidden = false;
    }, function () {
      add.textContent = label;
      add.disabled = false;
    });
  });

  /* Cart page: remove a line. */
  Array.prototype.forEach.call(document.querySelectorAll('[data-testid^="remove-"]'), function (b) {
    b.addEventListener("click", function () {
      var id = +b.getAttribute("data-product");
      b.disabled = true;
      api("POST", "/api/cart", { remove: id }).then(function (c) {
        var row = $("cart-item-" + id);
        if (row) row.parentNode.removeChild(row);
        setCount(c.count);
        var t = $("cart-total");
        if (t) t.textContent = money(c.total_cents);
        if (!c.count) {
          var co = $("checkout"), empty = $("cart-empty");
          if (co) co.hidden = true;
          if (empty) empty.hidden = false;
        }
      }, function () { b.disabled = false; });
    });
  });

  /* Checkout: validate, pay, confirm. */
  var form = $("checkout-form");
  if (form) {
    var pay = $("pay"), err = $("form-error"), spin = $("paying");
    // flaky-checkout's bug: on some page loads the new double-submit guard starts out
    // "locked", and from then on every submit is swallowed without a word.
    var locked = S.payFlake > 0 && Math.random() < S.payFlake;
    var fail = function (field, msg) {
      err.textContent = msg;
      err.hidden = false;
      if (field) { field.setAttribute("aria-invalid", "true"); field.focus(); }
    };
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (locked) return;
      var name = form.elements.name, email = form.elements.email, card = form.elements.card;
      [name, email, card].forEach(function (f) { f.removeAttribute("aria-invalid"); });
      var digits = card.value.replace(/[\s-]/g, "");
      if (!name.value.trim()) return fail(name, "Please enter your name.");
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email.value.trim())) return fail(email, "Please enter a valid e-mail address.");
      if (!/^\d{12,19}$/.test(digits)) return fail(card, "Please enter a valid card number.");
      err.hidden = true;
      pay.disabled = true;
      spin.hidden = false;
      api("POST", "/api/pay", { name: name.value.trim(), email: email.value.trim(), card: digits })
        .then(function (r) { location.href = "/confirm?order=" + r.order; }, function (x) {
          spin.hidden = true;
          pay.disabled = false;
          fail(null, "Payment failed: " + x.message);
        });
    });
  }
})();
