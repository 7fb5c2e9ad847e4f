(function () {
  "use strict";
  var images = JSON.parse(document.getElementById("fp-data").textContent).images;
  var box = document.getElementById("lightbox");
  var img = document.getElementById("lb-img");
  var title = document.getElementById("lb-title");
  var meta = document.getElementById("lb-meta");
  var counter = document.getElementById("lb-count");
  var prompt = document.getElementById("lb-prompt");
  var mgid = document.getElementById("lb-mgid");
  var copyBtn = document.getElementById("lb-copy");
  var openLink = document.getElementById("lb-open");
  var current = -1;
  var opener = null;

  function visible() {
    var list = [];
    document.querySelectorAll("a.thumb[data-i]").forEach(function (a) {
      if (a.offsetParent !== null) { list.push(Number(a.getAttribute("data-i"))); }
    });
    return list;
  }

  function show(i) {
    var item = images[i];
    if (!item || !item.src) { return; }
    current = i;
    img.src = item.src;
    img.alt = item.title;
    title.textContent = item.title;
    meta.textContent = [
      item.size,
      item.seed === null ? "" : "seed " + item.seed,
      item.model || "",
      item.status
    ].filter(Boolean).join(" · ");
    prompt.textContent = item.prompt || "";
    mgid.textContent = item.mgid || "";
    copyBtn.hidden = !item.mgid;
    copyBtn.setAttribute("data-copy", item.mgid || "");
    openLink.href = item.src;
    var order = visible();
    var pos = order.indexOf(i);
    counter.textContent = (pos + 1) + " / " + order.length;
    var next = images[order[(pos + 1) % order.length]];
    if (next && next.src) { (new Image()).src = next.src; }
  }

  function open(i, from) {
    opener = from || null;
    box.hidden = false;
    document.body.classList.add("lb-open");
    show(i);
    box.querySelector(".lb-close").focus();
  }

  function close() {
    box.hidden = true;
    document.body.classList.remove("lb-open");
    img.removeAttribute("src");
    current = -1;
    if (opener) { opener.focus(); }
  }

  function step(delta) {
    var order = visible();
    if (!order.length) { return; }
    var pos = order.indexOf(current);
    show(order[(pos + delta + order.length) % order.length]);
  }

  document.addEventListener("click", function (e) {
    var copy = e.target.closest("button.copy");
    if (copy) { copyText(copy); return; }
    var a = e.target.closest("a.thumb[data-i]");
    if (a && !e.metaKey && !e.ctrlKey && !e.shiftKey && e.button === 0) {
      e.preventDefault();
      open(Number(a.getAttribute("data-i")), a);
    }
  });
  box.querySelector(".lb-close").addEventListener("click", close);
  box.querySelector(".lb-prev").addEventListener("click", function () { step(-1); });
  box.querySelector(".lb-next").addEventListener("click", function () { step(1); });
  box.addEventListener("click", function (e) { if (e.target === box) { close(); } });
  document.addEventListener("keydown", function (e) {
    if (box.hidden) { return; }
    if (e.key === "Escape") { close(); } else if (e.key === "ArrowRight") { step(1); } else if (e.key === "ArrowLeft") { step(-1); } else { return; }
    e.preventDefault();
  });

  function copyText(btn) {
    var text = btn.getAttribute("data-copy") || "";
    function done(ok) {
      var label = btn.textContent;
      btn.textContent = ok ? "Copied" : "Select it";
      btn.classList.toggle("copied", ok);
      setTimeout(function () { btn.textContent = label; btn.classList.remove("copied"); }, 1200);
    }
    function fallback() {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
      document.body.removeChild(area);
      done(ok);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, fallback);
    } else {
      fallback();
    }
  }

  var stepSelect = document.getElementById("f-step");
  var statusButtons = document.querySelectorAll("[data-filter-status]");
  var count = document.getElementById("f-count");
  var filter = { step: "", status: "" };

  // Other parts of the page (reviewer.js) add filters here and call apply() again.
  var extraFilters = [];

  function apply() {
    var shown = 0;
    document.querySelectorAll("section.step").forEach(function (section) {
      var stepOk = !filter.step || section.getAttribute("data-step") === filter.step;
      var any = false;
      section.querySelectorAll(".fi").forEach(function (el) {
        var ok = stepOk && (!filter.status || el.getAttribute("data-status") === filter.status) &&
          extraFilters.every(function (f) { return f(el); });
        el.hidden = !ok;
        if (ok) { any = true; if (el.classList.contains("card")) { shown += 1; } }
      });
      section.querySelectorAll("[data-scope]").forEach(function (scope) {
        scope.hidden = !scope.querySelector(".fi:not([hidden])");
      });
      section.hidden = !any;
    });
    count.textContent = shown + " of " + images.length + " images";
  }

  window.flowpipeReport = {
    apply: apply,
    filters: extraFilters,
    open: open,
    current: function () { return box.hidden ? -1 : current; },
    visible: visible
  };

  stepSelect.addEventListener("change", function () { filter.step = stepSelect.value; apply(); });
  statusButtons.forEach(function (btn) {
    btn.addEventListener("click", function () {
      filter.status = btn.getAttribute("data-filter-status");
      statusButtons.forEach(function (b) { b.setAttribute("aria-pressed", String(b === btn)); });
      apply();
    });
  });
})();
