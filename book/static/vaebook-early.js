// Loaded on every page, before the theme's scripts (priority 100 in _config.yml).
// The theme's FontAwesome script would otherwise replace the <i> icons that ipywidgets' buttons keep references to
// (clicking Play would then throw); "nest" puts the SVG inside the <i> instead.
window.FontAwesomeConfig = { autoReplaceSvg: "nest" };
