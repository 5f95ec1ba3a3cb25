/* distillguard: time charts drawn as SVG from JSON blocks in the page.
 *
 * <div class="chart" data-chart="stacked|shares" data-source="ID"> reads the
 * <script type="application/json" id="ID"> block (never executed) and draws:
 * - stacked: exchanges per hour, one area per series, with release markers;
 * - shares: per hour, the share of traffic on a new model, one line per series.
 * Labels are set with textContent only.
 */
(function () {
  "use strict";

  var NS = "http://www.w3.org/2000/svg";
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }

  function text(parent, x, y, content, attrs) {
    var node = el("text", Object.assign({x: x, y: y}, attrs || {}), parent);
    node.textContent = content;
    return node;
  }

  function compact(v) {
    if (v >= 1e6) { return (v / 1e6).toFixed(v >= 1e7 ? 0 : 1) + "M"; }
    if (v >= 1e3) { return (v / 1e3).toFixed(v >= 1e4 ? 0 : 1) + "k"; }
    return String(Math.round(v * 100) / 100);
  }

  function day(t) {
    var d = new Date(t);
    return MONTHS[d.getUTCMonth()] + " " + d.getUTCDate();
  }

  function hourLabel(t) {
    var d = new Date(t);
    return day(t) + " " + String(d.getUTCHours()).padStart(2, "0") + ":00 UTC";
  }

  function niceMax(v) {
    if (v <= 0) { return 1; }
    var p = Math.pow(10, Math.floor(Math.log10(v))), m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  function frame(box, height) {
    var width = Math.max(box.clientWidth, 320);
    var svg = el("svg", {viewBox: "0 0 " + width + " " + height, role: "img"});
    box.textContent = "";
    box.appendChild(svg);
    var tip = document.createElement("div");
    tip.className = "tooltip";
    box.appendChild(tip);
    return {svg: svg, width: width, height: height, tip: tip,
            left: 52, right: width - 16, top: 18, bottom: height - 26};
  }

  function axes(f, times, yMax, yFormat) {
    var t0 = times[0], t1 = times[times.length - 1] || t0 + 1;
    var x = function (t) { return f.left + (f.right - f.left) * (t - t0) / Math.max(t1 - t0, 1); };
    var y = function (v) { return f.bottom - (f.bottom - f.top) * v / yMax; };
    var grid = el("g", {"class": "grid"}, f.svg), axis = el("g", {"class": "axis"}, f.svg);
    for (var i = 0; i <= 4; i++) {
      var v = yMax * i / 4;
      el("line", {x1: f.left, x2: f.right, y1: y(v), y2: y(v)}, grid);
      text(axis, f.left - 8, y(v) + 4, yFormat(v), {"text-anchor": "end"});
    }
    var dayMs = 86400000, span = t1 - t0, every = Math.max(1, Math.ceil(span / dayMs / 10));
    for (var t = Math.ceil(t0 / dayMs) * dayMs; t <= t1; t += every * dayMs) {
      el("line", {x1: x(t), x2: x(t), y1: f.bottom, y2: f.bottom + 4}, axis);
      text(axis, x(t), f.bottom + 17, day(t), {"text-anchor": "middle"});
    }
    el("line", {x1: f.left, x2: f.right, y1: f.bottom, y2: f.bottom}, axis);
    return {x: x, y: y, t0: t0, t1: t1};
  }

  function releases(f, scale, list) {
    (list || []).forEach(function (r) {
      var t = Date.parse(r.released_at);
      if (t < scale.t0 || t > scale.t1) { return; }
      var g = el("g", {"class": "release"}, f.svg);
      el("line", {x1: scale.x(t), x2: scale.x(t), y1: f.top - 6, y2: f.bottom}, g);
      text(g, scale.x(t) + 4, f.top - 8, r.model + " released", {});
    });
  }

  function hover(f, scale, times, describe) {
    var cursor = el("line", {y1: f.top, y2: f.bottom, stroke: "#151b2c", "stroke-opacity": 0,
                             "stroke-width": 1}, f.svg);
    f.svg.addEventListener("mousemove", function (ev) {
      var rect = f.svg.getBoundingClientRect(), px = (ev.clientX - rect.left) * f.width / rect.width;
      var t = scale.t0 + (px - f.left) / (f.right - f.left) * (scale.t1 - scale.t0), best = 0;
      for (var i = 1; i < times.length; i++) {
        if (Math.abs(times[i] - t) < Math.abs(times[best] - t)) { best = i; }
      }
      cursor.setAttribute("x1", scale.x(times[best]));
      cursor.setAttribute("x2", scale.x(times[best]));
      cursor.setAttribute("stroke-opacity", 0.25);
      f.tip.textContent = describe(best);
      f.tip.style.display = "block";
      f.tip.style.left = Math.min(ev.clientX - rect.left + 12, rect.width - 220) + "px";
      f.tip.style.top = "8px";
    });
    f.svg.addEventListener("mouseleave", function () {
      f.tip.style.display = "none";
      cursor.setAttribute("stroke-opacity", 0);
    });
  }

  /* spec: {hours: [iso], series: {name: [n]}, order: [name], colors: {}, labels: {}, releases} */
  function stacked(box, spec) {
    var f = frame(box, 240), times = spec.hours.map(Date.parse), order = spec.order;
    if (!times.length) { box.textContent = "No traffic."; return; }
    var totals = times.map(function (_, i) {
      return order.reduce(function (s, name) { return s + (spec.series[name] || [])[i] || 0; }, 0);
    });
    var scale = axes(f, times, niceMax(Math.max.apply(null, totals)), compact);
    var base = times.map(function () { return 0; });
    order.forEach(function (name) {
      var values = spec.series[name] || [], top = base.map(function (b, i) { return b + (values[i] || 0); });
      var d = "M" + times.map(function (t, i) { return scale.x(t) + "," + scale.y(top[i]); }).join("L");
      for (var i = times.length - 1; i >= 0; i--) { d += "L" + scale.x(times[i]) + "," + scale.y(base[i]); }
      el("path", {d: d + "Z", fill: spec.colors[name], "fill-opacity": 0.85, stroke: "none"}, f.svg);
      base = top;
    });
    releases(f, scale, spec.releases);
    hover(f, scale, times, function (i) {
      return hourLabel(times[i]) + ": " + order.map(function (name) {
        return spec.labels[name] + " " + ((spec.series[name] || [])[i] || 0).toLocaleString("en-US");
      }).join(", ");
    });
  }

  /* spec: {hours: [iso], lines: [{label, color, values: [share|null]}], releases} */
  function shares(box, spec) {
    var f = frame(box, 200), times = spec.hours.map(Date.parse);
    if (!times.length) { box.textContent = "No traffic in this window."; return; }
    var scale = axes(f, times, 1, function (v) { return Math.round(v * 100) + "%"; });
    spec.lines.forEach(function (line) {
      var d = "", pen = false;
      line.values.forEach(function (v, i) {
        if (v === null || v === undefined) { pen = false; return; }
        d += (pen ? "L" : "M") + scale.x(times[i]) + "," + scale.y(v);
        pen = true;
      });
      el("path", {d: d, fill: "none", stroke: line.color, "stroke-width": 2,
                  "stroke-linejoin": "round"}, f.svg);
    });
    releases(f, scale, spec.releases);
    hover(f, scale, times, function (i) {
      return hourLabel(times[i]) + ": " + spec.lines.map(function (line) {
        var v = line.values[i];
        return line.label + " " + (v === null || v === undefined ? "-" : Math.round(v * 100) + "%");
      }).join(", ");
    });
  }

  function drawAll() {
    document.querySelectorAll("[data-chart]").forEach(function (box) {
      var source = document.getElementById(box.getAttribute("data-source"));
      if (!source) { return; }
      var spec = JSON.parse(source.textContent);
      (box.getAttribute("data-chart") === "stacked" ? stacked : shares)(box, spec);
      box.setAttribute("data-drawn", "1");
    });
  }

  /* Legend swatches name their colour in data-color (inline styles are outside the
   * page's Content Security Policy); only #rgb / #rrggbb values are taken. */
  function colorSwatches() {
    document.querySelectorAll(".swatch[data-color]").forEach(function (swatch) {
      var color = swatch.getAttribute("data-color");
      if (/^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$/.test(color)) { swatch.style.background = color; }
    });
  }

  var pending = null;
  window.addEventListener("resize", function () {
    window.clearTimeout(pending);
    pending = window.setTimeout(drawAll, 150);
  });
  colorSwatches();
  drawAll();
})();
