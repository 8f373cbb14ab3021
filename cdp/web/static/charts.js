// Draws every Plotly figure on the page: each chart is a <div data-figure="{...figure JSON...}">.
// Kept in a file (not inline) so the explorer can forbid inline scripts (Content-Security-Policy).
(function () {
  function draw() {
    if (typeof Plotly === "undefined") { return; }
    document.querySelectorAll("[data-figure]").forEach(function (el) {
      var figure = JSON.parse(el.getAttribute("data-figure"));
      Plotly.newPlot(el, figure.data, figure.layout, {displaylogo: false, responsive: true});
      el.setAttribute("data-drawn", "true");
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
