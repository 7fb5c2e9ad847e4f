(function () {
  "use strict";
  // The overlay of each image pair: a slider wipes between old and new; Blink flips them.
  document.querySelectorAll("figure.pair").forEach(function (pair) {
    var over = pair.querySelector(".overlay .over");
    var slider = pair.querySelector("[data-slider]");
    var blink = pair.querySelector("[data-blink]");
    if (!over || !slider || !blink) { return; }
    var timer = null;
    function wipe() { over.style.clipPath = "inset(0 0 0 " + slider.value + "%)"; }
    slider.addEventListener("input", function () {
      if (timer) { clearInterval(timer); timer = null; blink.textContent = "Blink"; }
      wipe();
    });
    blink.addEventListener("click", function () {
      if (timer) { clearInterval(timer); timer = null; blink.textContent = "Blink"; wipe(); return; }
      var shown = true;
      blink.textContent = "Stop";
      over.style.clipPath = "none";
      timer = setInterval(function () {
        shown = !shown;
        over.style.clipPath = shown ? "none" : "inset(0 0 0 100%)";
      }, 600);
    });
  });
})();
