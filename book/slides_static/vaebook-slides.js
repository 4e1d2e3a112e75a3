// The chapter decks (book/slides.py): start reveal.js and fit every slide into the screen.
(function () {
  var WIDTH = 1280, HEIGHT = 720;
  // A slide whose content (text, maths, a figure, an explorer) is taller than the slide is scaled down to fit.
  // Measured when the slide is shown, after MathJax has typeset it and the explorers have rendered.
  function fit(slide) {
    if (!slide) return;
    var box = slide.querySelector(":scope > .fit");
    if (!box) return;
    box.style.transform = "";
    var height = box.scrollHeight, width = box.scrollWidth;
    // Wide content (a long equation, a wide figure or table) can overflow the slide sideways: measure its right edge.
    var outer = box.getBoundingClientRect(), k = outer.width / Math.max(box.offsetWidth, 1);
    box.querySelectorAll("mjx-math, img, table, .widget-subarea").forEach(function (el) {
      var r = el.getBoundingClientRect();
      if (r.width > 0) width = Math.max(width, (r.right - outer.left) / k);
    });
    var scale = Math.min(1, HEIGHT / Math.max(height, 1), WIDTH / Math.max(width, 1));
    if (scale < 0.999) box.style.transform = "scale(" + scale.toFixed(3) + ")";
    slide.dataset.fitScale = scale.toFixed(3);
  }
  window.vaebookFit = fit;
  Reveal.initialize({
    hash: true,
    center: false,
    width: WIDTH,
    height: HEIGHT,
    margin: 0.04,
    transition: "none",
    slideNumber: "c/t",
    plugins: [RevealNotes],
  }).then(function () {
    fit(Reveal.getCurrentSlide());
    Reveal.on("slidechanged", function (event) { fit(event.currentSlide); });
    var mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) mj.startup.promise.then(function () { fit(Reveal.getCurrentSlide()); });
    // Explorers render after the page has loaded: fit again once they appear.
    var pending = null;
    new MutationObserver(function () {
      if (pending) return;
      pending = setTimeout(function () { pending = null; fit(Reveal.getCurrentSlide()); }, 100);
    }).observe(document.querySelector(".reveal .slides"), { childList: true, subtree: true });
  });
})();
