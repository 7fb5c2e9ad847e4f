(function () {
  "use strict";
  // The reviewer's parts (issue 14): pick states, filters, search, zoom, download and,
  // when `flowpipe review` serves the page, picking (click, or P / X / N and arrows).
  var data = JSON.parse(document.getElementById("fp-data").textContent);
  var images = data.images;
  var nodes = data.nodes || {};
  var review = data.review;
  var picks = data.picks || {};
  var picksYaml = data.picks_yaml || "";
  var report = window.flowpipeReport;
  var cards = Array.prototype.slice.call(document.querySelectorAll("article.card[data-i]"));
  var status = document.getElementById("pick-status");
  var copyPicks = document.getElementById("copy-picks");
  var lbImg = document.getElementById("lb-img");
  var lbPick = document.getElementById("lb-pick");
  var download = document.getElementById("lb-download");
  var zoom = document.getElementById("lb-zoom");
  var box = document.getElementById("lightbox");
  var cursor = -1;

  function own(obj, key) { return Object.prototype.hasOwnProperty.call(obj, key); }

  function stateOf(i) {
    var item = images[i];
    var p = own(picks, item.node) ? picks[item.node] : null;
    if (!p) { return "none"; }
    if (p.image === item.index) { return p.sha256 === item.sha ? "picked" : "stale"; }
    var key = String(item.index);
    if (p.rejected && own(p.rejected, key) && p.rejected[key] === item.sha) { return "rejected"; }
    return "none";
  }

  var LABELS = { picked: "picked", rejected: "rejected", stale: "stale pick", none: "" };

  function badge(el, state) {
    el.textContent = LABELS[state];
    el.hidden = state === "none";
    el.setAttribute("data-pick", state);
  }

  function paint() {
    var counts = { picked: 0, rejected: 0, stale: 0 };
    cards.forEach(function (card) {
      var state = stateOf(Number(card.getAttribute("data-i")));
      card.setAttribute("data-pick", state);
      badge(card.querySelector(".pick-badge"), state);
      if (own(counts, state)) { counts[state] += 1; }
    });
    document.querySelectorAll("[data-note-for]").forEach(function (el) {
      var node = el.getAttribute("data-note-for");
      var note = own(picks, node) && picks[node].note ? picks[node].note : "";
      el.textContent = note ? "Note: " + note : "";
      el.hidden = !note;
    });
    copyPicks.setAttribute("data-copy", picksYaml);
    copyPicks.disabled = !picksYaml;
    document.getElementById("pick-count").textContent =
      counts.picked + " picked · " + counts.rejected + " rejected" +
      (counts.stale ? " · " + counts.stale + " stale" : "");
    lightboxState();
    report.apply();
  }

  // -- filters and search -------------------------------------------------------------
  var want = { model: "", ratio: "", pick: "", text: "" };

  function factsOf(el) {
    var node = el.getAttribute("data-node");
    return own(nodes, node) ? nodes[node] : { prompt: "", model: "", ratio: "" };
  }

  report.filters.push(function (el) {
    var facts = factsOf(el);
    if (want.model && facts.model !== want.model) { return false; }
    if (want.ratio && facts.ratio !== want.ratio) { return false; }
    if (want.text && facts.prompt.toLowerCase().indexOf(want.text) < 0 &&
        el.getAttribute("data-node").toLowerCase().indexOf(want.text) < 0) { return false; }
    if (want.pick) {
      if (!el.classList.contains("card")) { return false; }
      return stateOf(Number(el.getAttribute("data-i"))) === want.pick;
    }
    return true;
  });

  [["f-model", "model"], ["f-ratio", "ratio"], ["f-pick", "pick"]].forEach(function (pair) {
    var select = document.getElementById(pair[0]);
    select.addEventListener("change", function () { want[pair[1]] = select.value; report.apply(); });
  });
  var search = document.getElementById("f-search");
  search.addEventListener("input", function () {
    want.text = search.value.trim().toLowerCase();
    report.apply();
  });

  // -- the image view: zoom, download, pick state ---------------------------------------
  function lightboxState() {
    var i = report.current();
    if (i < 0) { return; }
    badge(lbPick, stateOf(i));
    var item = images[i];
    download.href = item.src || "#";
    download.setAttribute("download", (item.node + "-" + item.index + "." +
      String(item.src || "").split(".").pop()).replace(/[^A-Za-z0-9._=,-]+/g, "_"));
  }

  lbImg.addEventListener("load", lightboxState);
  function toggleZoom() {
    var actual = !box.classList.contains("zoom-actual");
    box.classList.toggle("zoom-actual", actual);
    zoom.setAttribute("aria-pressed", String(actual));
    zoom.textContent = actual ? "Fit" : "1:1";
  }
  zoom.addEventListener("click", toggleZoom);

  // -- picking (review mode) ----------------------------------------------------------
  function say(text) { status.textContent = text; }

  function send(body) {
    if (!review) {
      say("Read-only: run `flowpipe review OUT` to pick.");
      return Promise.resolve();
    }
    return fetch(review.api, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (r) {
      return r.json().then(function (answer) {
        if (!r.ok) { throw new Error(answer.error || ("HTTP " + r.status)); }
        picks = answer.picks;
        picksYaml = answer.yaml;
        paint();
        say("Saved to " + review.file + ".");
      });
    }).catch(function (err) { say("Not saved: " + err.message); });
  }

  function refresh() {
    if (!review) { return; }
    fetch(review.api, { cache: "no-store", credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (answer) {
      if (answer) { picks = answer.picks; picksYaml = answer.yaml; paint(); }
    });
  }

  var noteEditor = document.getElementById("note-editor");
  var noteText = document.getElementById("note-text");
  var noteFor = null;

  function act(what, i) {
    var item = images[i];
    if (!item) { return; }
    if (what === "note") {
      if (!review) { say("Read-only: run `flowpipe review OUT` to write notes."); return; }
      noteFor = item.node;
      document.getElementById("note-node").textContent = item.node;
      noteText.value = own(picks, item.node) && picks[item.node].note ? picks[item.node].note : "";
      noteEditor.hidden = false;
      noteText.focus();
      return;
    }
    var state = stateOf(i);
    var action = what;
    if (what === "pick" && state === "picked") { action = "unpick"; }
    if (what === "reject" && state === "rejected") { action = "unreject"; }
    send({ action: action, node: item.node, image: item.index, sha256: item.sha });
  }

  function editing() { return noteEditor !== null && !noteEditor.hidden; }

  if (noteEditor) {  // only the review page has one; the static report is read-only
    document.getElementById("note-save").addEventListener("click", function () {
      noteEditor.hidden = true;
      if (noteFor !== null) { send({ action: "note", node: noteFor, note: noteText.value }); }
    });
    document.getElementById("note-cancel").addEventListener("click", function () {
      noteEditor.hidden = true;
    });
  }

  document.addEventListener("click", function (e) {
    var btn = e.target.closest("[data-act]");
    if (btn) {
      var card = btn.closest("article.card");
      setCursor(Number(card.getAttribute("data-i")));
      act(btn.getAttribute("data-act"), Number(card.getAttribute("data-i")));
      return;
    }
    var lb = e.target.closest("[data-lb-act]");
    if (lb) { act(lb.getAttribute("data-lb-act"), report.current()); }
  });

  // -- the keyboard ---------------------------------------------------------------------
  function setCursor(i) {
    cards.forEach(function (c) { c.classList.remove("cur"); });
    cursor = i;
    var card = document.querySelector('article.card[data-i="' + i + '"]');
    if (card) {
      card.classList.add("cur");
      card.scrollIntoView({ block: "nearest" });
    }
  }

  function move(key) {
    var order = report.visible();
    if (!order.length) { return; }
    var pos = order.indexOf(cursor);
    if (pos < 0) { setCursor(order[0]); return; }
    if (key === "ArrowRight" || key === "ArrowLeft") {
      setCursor(order[(pos + (key === "ArrowRight" ? 1 : -1) + order.length) % order.length]);
      return;
    }
    var here = document.querySelector('article.card[data-i="' + cursor + '"]').getBoundingClientRect();
    var best = null;
    var bestScore = Infinity;
    order.forEach(function (i) {
      var r = document.querySelector('article.card[data-i="' + i + '"]').getBoundingClientRect();
      var dy = key === "ArrowDown" ? r.top - here.top : here.top - r.top;
      if (dy <= 1) { return; }
      var score = dy * 4 + Math.abs(r.left - here.left);
      if (score < bestScore) { bestScore = score; best = i; }
    });
    if (best !== null) { setCursor(best); }
  }

  document.addEventListener("keydown", function (e) {
    if (e.metaKey || e.ctrlKey || e.altKey) { return; }
    var tag = (e.target && e.target.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || editing()) {
      if (e.key === "Escape" && editing()) { noteEditor.hidden = true; }
      return;
    }
    var open = !box.hidden;
    var key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    var target = open ? report.current() : cursor;
    if (key === "z" && open) { toggleZoom(); } else if (key === "p" || key === "x" || key === "n") {
      if (target < 0) { return; }
      act(key === "p" ? "pick" : key === "x" ? "reject" : "note", target);
    } else if (!open && key.indexOf("Arrow") === 0) {
      move(key);
    } else if (!open && key === "Enter" && cursor >= 0) {
      report.open(cursor, document.querySelector('a.thumb[data-i="' + cursor + '"]'));
    } else { return; }
    e.preventDefault();
  });

  window.addEventListener("focus", refresh);
  paint();
  refresh();
})();
