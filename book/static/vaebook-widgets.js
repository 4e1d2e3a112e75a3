// Loaded on pages with widgets, after require.js and before the widget manager (nb_ipywidgets_js in _config.yml).
// Everything resolves to copies served by the book itself (issue 5: no CDN, no request to another host).
(function () {
  var script = document.currentScript;
  // .../_static/vaebook-widgets.js -> .../_static/vendor/
  var vendor = script.src.replace(/[^/]*$/, "") + "vendor/";
  var manager = vendor + "html-manager/";
  window.requirejs.config({
    paths: {
      // anywidget's AMD module, copied from the installed anywidget package (share/jupyter/nbextensions/anywidget).
      anywidget: vendor + "anywidget/index",
      // embed-amd.js defines these modules itself. Their webpack runtimes locate their fonts relative to the
      // module's URL, which require.js derives from these paths: point them at the folder holding the fonts.
      "@jupyter-widgets/html-manager/dist": manager.slice(0, -1),
      "@jupyter-widgets/html-manager": manager + "index",
      "@jupyter-widgets/base": manager + "base",
      "@jupyter-widgets/controls": manager + "controls",
    },
  });
  window.__jupyter_widgets_assets_path__ = manager;
  // The widget manager falls back to a CDN for modules it cannot find. Point that fallback at the book itself, so
  // a missing module is a local 404 (which the browser tests report) and never a request to another host.
  script.setAttribute("data-jupyter-widgets-cdn", vendor + "cdn-fallback-disabled/");

  // ipywidgets' controls typeset their LaTeX labels with MathJax 2's API (MathJax.Hub.Queue); the book loads
  // MathJax 3. Bridge the one call they make once MathJax 3 has replaced its configuration object (deferred
  // scripts run before DOMContentLoaded; the widgets render after the load event).
  document.addEventListener("DOMContentLoaded", function () {
    var mj = window.MathJax;
    if (!mj || mj.Hub || !mj.startup) return;
    mj.Hub = {
      Queue: function (job) {
        var element = job && job[2];
        if (!element) return;
        // The book's MathJax reads \( \) and \[ \] only (MyST converts $ $ at build time): convert the label's.
        if (element.childElementCount === 0 && element.textContent.indexOf("$") !== -1) {
          element.textContent = element.textContent
            .replace(/\$\$([^$]+)\$\$/g, "\\[$1\\]")
            .replace(/\$([^$]+)\$/g, "\\($1\\)");
        }
        mj.startup.promise
          .then(function () { return mj.typesetPromise([element]); })
          .catch(function (err) { console.error("MathJax typesetting of a widget label failed:", err); });
      },
    };
  });

  // Accessible names for ipywidgets' controls (axe-core's audit of the pages relies on them).
  // ipywidgets' sliders (noUiSlider) expose role="slider" handles without an accessible name. Name each handle after
  // its widget's description label, so that screen readers announce it (and axe-core's audit passes).
  function nameSliderHandles(root) {
    root.querySelectorAll(".noUi-handle:not([aria-label]):not([aria-labelledby])").forEach(function (handle) {
      var widget = handle.closest(".jupyter-widgets");
      var label = widget && widget.querySelector(".widget-label");
      var text = label && (label.textContent || label.getAttribute("title") || "").trim();
      // A LaTeX description ("$\\mu$") is read out without its markup ("mu").
      if (text) handle.setAttribute("aria-label", text.replace(/\$|\\[()[\]]?/g, "").trim() || text);
    });
  }
  // Icon-only buttons (the Play widget's play, pause, stop and repeat) have no text: name them after their title or
  // their FontAwesome icon.
  var ICON_NAMES = { play: "Play", pause: "Pause", stop: "Stop", retweet: "Repeat", repeat: "Repeat" };
  function nameIconButtons(root) {
    root.querySelectorAll(".jupyter-widgets button:not([aria-label])").forEach(function (button) {
      if (button.textContent.trim()) return;
      var name = button.getAttribute("title");
      var icon = button.querySelector("i[class*='fa-']");
      if (!name && icon) {
        var match = /\bfa-([a-z-]+)/.exec(icon.className);
        name = match && (ICON_NAMES[match[1]] || match[1].replace(/-/g, " "));
      }
      if (name) button.setAttribute("aria-label", name);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    new MutationObserver(function () { nameSliderHandles(document); nameIconButtons(document); })
      .observe(document.body, { childList: true, subtree: true });
  });
})();
