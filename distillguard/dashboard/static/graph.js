/* distillguard: a campaign's accounts as a force-directed graph on a canvas.
 *
 * Nodes are accounts (colour: verdict; size: exchanges), edges the ties between
 * them (colour: kind). The layout is Fruchterman-Reingold with a cooling
 * temperature and a grid for repulsion (so a few thousand accounts settle in a
 * second or two), started from the positions the server computed. Wheel zooms,
 * dragging the background pans, dragging a node moves it, a click opens the
 * account. Text from the data is only ever drawn on the canvas or set as
 * textContent: nothing is parsed as HTML.
 */
(function () {
  "use strict";

  var KIND_COLORS = {content: "#2f5bea", payment_fingerprint: "#c7362f", main_ip: "#23804a",
                     main_client_fingerprint: "#b7791f", created_together: "#6b4fd8"};
  var SPARE = ["#0f8b8d", "#d0488f", "#7a8699", "#8c6d1f", "#3d7dd8"];
  var VERDICT_COLORS = {extraction: "#c7362f", review: "#e0a030"};

  function kindColor(kind, i) { return KIND_COLORS[kind] || SPARE[i % SPARE.length]; }

  function ForceGraph(box, graph, options) {
    this.box = box;
    this.options = options || {};
    this.canvas = document.createElement("canvas");
    this.status = document.createElement("div");
    this.status.className = "status";
    this.tooltip = document.createElement("div");
    this.tooltip.className = "tooltip";
    box.appendChild(this.canvas);
    box.appendChild(this.status);
    box.appendChild(this.tooltip);
    this.ctx = this.canvas.getContext("2d");
    this.kinds = Object.keys(graph.kinds || {});
    this.visible = {};
    var self = this;
    this.kinds.forEach(function (k) { self.visible[k] = true; });
    var index = {};
    // Smaller nodes in large graphs, so that thousands of accounts stay apart.
    var shrink = Math.max(0.3, Math.min(1, Math.sqrt(300 / Math.max(1, graph.nodes.length))));
    this.nodes = graph.nodes.map(function (n, i) {
      index[n.id] = i;
      return {id: n.id, verdict: n.verdict, exchanges: n.exchanges || 0, x: n.x, y: n.y,
              vx: 0, vy: 0, fixed: false, degree: 0,
              r: (3 + Math.min(7, Math.log10(1 + (n.exchanges || 0)) * 1.6)) * shrink};
    });
    this.edges = [];
    graph.edges.forEach(function (e) {
      var s = index[e[0]], t = index[e[1]];
      if (s === undefined || t === undefined || s === t) { return; }
      self.edges.push({s: s, t: t, kind: e[2], detail: e[3]});
      self.nodes[s].degree += 1;
      self.nodes[t].degree += 1;
    });
    this.total = graph.edges_total || this.edges.length;
    this.view = {scale: 1, dx: 0, dy: 0};
    this.resize();
    this.placeFromServer();
    this.temperature = this.width / 12;
    this.bind();
    this.run();
  }

  ForceGraph.prototype.resize = function () {
    var ratio = window.devicePixelRatio || 1;
    this.width = this.box.clientWidth || 800;
    this.height = this.box.clientHeight || 500;
    this.canvas.width = Math.round(this.width * ratio);
    this.canvas.height = Math.round(this.height * ratio);
    this.ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  };

  ForceGraph.prototype.placeFromServer = function () {
    var pad = 30, w = this.width - 2 * pad, h = this.height - 2 * pad;
    this.nodes.forEach(function (n, i) {
      var x = typeof n.x === "number" ? n.x : (i * 0.618) % 1;
      var y = typeof n.y === "number" ? n.y : (i * 0.382) % 1;
      n.x = pad + x * w;
      n.y = pad + y * h;
    });
  };

  /* One Fruchterman-Reingold step: repulsion within 2k (grid cells of 2k), attraction
   * along visible edges, gravity to the centre, moves capped by the temperature. */
  ForceGraph.prototype.step = function () {
    var nodes = this.nodes, n = nodes.length;
    if (!n) { return; }
    var k = Math.sqrt((this.width * this.height) / n) * 0.75;
    var cell = 2 * k, grid = {}, i, j, a, b, dx, dy, d2, d, f;
    for (i = 0; i < n; i++) {
      a = nodes[i];
      a.vx = 0;
      a.vy = 0;
      var key = Math.floor(a.x / cell) + ":" + Math.floor(a.y / cell);
      (grid[key] = grid[key] || []).push(i);
    }
    for (i = 0; i < n; i++) {
      a = nodes[i];
      var gx = Math.floor(a.x / cell), gy = Math.floor(a.y / cell);
      for (var ox = -1; ox <= 1; ox++) {
        for (var oy = -1; oy <= 1; oy++) {
          var bucket = grid[(gx + ox) + ":" + (gy + oy)];
          if (!bucket) { continue; }
          for (j = 0; j < bucket.length; j++) {
            if (bucket[j] === i) { continue; }
            b = nodes[bucket[j]];
            dx = a.x - b.x;
            dy = a.y - b.y;
            d2 = dx * dx + dy * dy;
            if (d2 > cell * cell) { continue; }
            if (d2 < 0.01) { dx = (i % 7) - 3 + 0.1; dy = (i % 5) - 2 + 0.1; d2 = dx * dx + dy * dy; }
            f = (k * k) / d2;
            a.vx += dx * f;
            a.vy += dy * f;
          }
        }
      }
    }
    var visible = this.visible;
    this.edges.forEach(function (e) {
      if (!visible[e.kind]) { return; }
      a = nodes[e.s];
      b = nodes[e.t];
      dx = a.x - b.x;
      dy = a.y - b.y;
      d = Math.sqrt(dx * dx + dy * dy) || 0.01;
      f = d / k;
      a.vx -= dx * f;
      a.vy -= dy * f;
      b.vx += dx * f;
      b.vy += dy * f;
    });
    var cx = this.width / 2, cy = this.height / 2, t = this.temperature;
    for (i = 0; i < n; i++) {
      a = nodes[i];
      if (a.fixed) { continue; }
      a.vx += (cx - a.x) * 0.02 * (1 + a.degree * 0.05);
      a.vy += (cy - a.y) * 0.02 * (1 + a.degree * 0.05);
      d = Math.sqrt(a.vx * a.vx + a.vy * a.vy) || 1;
      a.x += (a.vx / d) * Math.min(d, t);
      a.y += (a.vy / d) * Math.min(d, t);
    }
    this.temperature *= 0.96;
  };

  ForceGraph.prototype.run = function () {
    var self = this;
    var perFrame = this.nodes.length > 1500 ? 1 : 3;
    function frame() {
      for (var i = 0; i < perFrame && self.temperature > 0.5; i++) { self.step(); }
      self.draw();
      if (self.temperature > 0.5) {
        window.requestAnimationFrame(frame);
      } else {
        self.box.setAttribute("data-state", "settled");
      }
    }
    this.box.setAttribute("data-state", "running");
    window.requestAnimationFrame(frame);
  };

  ForceGraph.prototype.reheat = function () {
    var wasCold = this.temperature <= 0.5;
    this.temperature = Math.max(this.temperature, this.width / 30);
    if (wasCold) { this.run(); }
  };

  ForceGraph.prototype.draw = function () {
    var ctx = this.ctx, v = this.view, nodes = this.nodes, self = this, drawn = 0, ties = 0;
    ctx.save();
    ctx.clearRect(0, 0, this.width, this.height);
    ctx.translate(v.dx, v.dy);
    ctx.scale(v.scale, v.scale);
    ctx.lineWidth = 1 / v.scale;
    this.kinds.forEach(function (kind, i) {
      if (!self.visible[kind]) { return; }
      ctx.strokeStyle = kindColor(kind, i);
      ctx.globalAlpha = kind === "content" ? 0.28 : 0.6;
      ctx.beginPath();
      self.edges.forEach(function (e) {
        if (e.kind !== kind) { return; }
        ctx.moveTo(nodes[e.s].x, nodes[e.s].y);
        ctx.lineTo(nodes[e.t].x, nodes[e.t].y);
        ties += 1;
      });
      ctx.stroke();
    });
    ctx.globalAlpha = 1;
    nodes.forEach(function (n) {
      ctx.beginPath();
      ctx.arc(n.x, n.y, n.r, 0, 2 * Math.PI);
      ctx.fillStyle = VERDICT_COLORS[n.verdict] || "#8a94a6";
      ctx.fill();
      ctx.strokeStyle = n === self.hover ? "#151b2c" : "#ffffff";
      ctx.lineWidth = (n === self.hover ? 2.5 : 1) / v.scale;
      ctx.stroke();
      drawn += 1;
    });
    ctx.restore();
    this.box.setAttribute("data-rendered-nodes", String(drawn));
    this.box.setAttribute("data-rendered-edges", String(ties));
    this.status.textContent = drawn.toLocaleString("en-US") + " accounts \u00b7 " +
      ties.toLocaleString("en-US") + " ties shown" + (this.total > this.edges.length ?
        " (each account's strongest of " + this.total.toLocaleString("en-US") + ")" : "");
  };

  ForceGraph.prototype.toGraph = function (px, py) {
    return {x: (px - this.view.dx) / this.view.scale, y: (py - this.view.dy) / this.view.scale};
  };

  ForceGraph.prototype.nodeAt = function (px, py) {
    var p = this.toGraph(px, py), best = null, bestD = Infinity;
    this.nodes.forEach(function (n) {
      var dx = n.x - p.x, dy = n.y - p.y, d = dx * dx + dy * dy;
      if (d < bestD && d <= (n.r + 3) * (n.r + 3)) { best = n; bestD = d; }
    });
    return best;
  };

  ForceGraph.prototype.bind = function () {
    var self = this, canvas = this.canvas, drag = null, moved = false;
    function point(ev) {
      var rect = canvas.getBoundingClientRect();
      return {x: ev.clientX - rect.left, y: ev.clientY - rect.top};
    }
    canvas.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var p = point(ev), factor = ev.deltaY < 0 ? 1.15 : 1 / 1.15, v = self.view;
      v.dx = p.x - (p.x - v.dx) * factor;
      v.dy = p.y - (p.y - v.dy) * factor;
      v.scale *= factor;
      self.draw();
    }, {passive: false});
    canvas.addEventListener("mousedown", function (ev) {
      var p = point(ev), node = self.nodeAt(p.x, p.y);
      drag = {node: node, x: p.x, y: p.y, dx: self.view.dx, dy: self.view.dy};
      moved = false;
      if (node) { node.fixed = true; }
    });
    window.addEventListener("mousemove", function (ev) {
      var p = point(ev);
      if (drag) {
        moved = moved || Math.abs(p.x - drag.x) + Math.abs(p.y - drag.y) > 3;
        if (drag.node) {
          var g = self.toGraph(p.x, p.y);
          drag.node.x = g.x;
          drag.node.y = g.y;
          self.reheat();
        } else {
          self.view.dx = drag.dx + p.x - drag.x;
          self.view.dy = drag.dy + p.y - drag.y;
        }
        self.draw();
        return;
      }
      if (ev.target !== canvas) { return; }
      var node = self.nodeAt(p.x, p.y);
      if (node !== self.hover) {
        self.hover = node;
        self.draw();
      }
      if (node) {
        self.tooltip.textContent = node.id + " \u00b7 " + node.verdict + " \u00b7 " +
          node.exchanges.toLocaleString("en-US") + " exchanges \u00b7 " + node.degree + " ties";
        self.tooltip.style.left = (p.x + 14) + "px";
        self.tooltip.style.top = (p.y + 10) + "px";
        self.tooltip.style.display = "block";
        canvas.style.cursor = self.options.accountUrl ? "pointer" : "default";
      } else {
        self.tooltip.style.display = "none";
        canvas.style.cursor = "grab";
      }
    });
    window.addEventListener("mouseup", function () {
      if (drag && drag.node && !moved && self.options.accountUrl) {
        window.location.href = self.options.accountUrl + encodeURIComponent(drag.node.id);
      }
      if (drag && drag.node) { drag.node.fixed = false; }
      drag = null;
    });
    canvas.addEventListener("mouseleave", function () { self.tooltip.style.display = "none"; });
  };

  ForceGraph.prototype.setVisible = function (kind, on) {
    this.visible[kind] = on;
    this.reheat();
    this.draw();
  };

  function legend(container, graph, fg) {
    Object.keys(graph.kinds || {}).forEach(function (kind, i) {
      var label = document.createElement("label");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.checked = true;
      box.setAttribute("data-kind", kind);
      box.addEventListener("change", function () { fg.setVisible(kind, box.checked); });
      var swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = kindColor(kind, i);
      var count = graph.edges.filter(function (e) { return e[2] === kind; }).length;
      label.appendChild(box);
      label.appendChild(swatch);
      label.appendChild(document.createTextNode(graph.kinds[kind] + " (" +
        count.toLocaleString("en-US") + ")"));
      container.appendChild(label);
    });
    [["extraction", "extraction"], ["review", "review"]].forEach(function (v) {
      var item = document.createElement("span");
      var swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = VERDICT_COLORS[v[0]];
      swatch.style.borderRadius = "50%";
      item.appendChild(swatch);
      item.appendChild(document.createTextNode("account: " + v[1]));
      container.appendChild(item);
    });
  }

  function start(box) {
    var show = function (graph) {
      var fg = new ForceGraph(box, graph, {accountUrl: box.getAttribute("data-account-url")});
      var legendBox = document.getElementById(box.getAttribute("data-legend"));
      if (legendBox) { legend(legendBox, graph, fg); }
    };
    var inline = box.getAttribute("data-graph");
    if (inline) {
      show(JSON.parse(document.getElementById(inline).textContent));
      return;
    }
    fetch(box.getAttribute("data-src"), {credentials: "same-origin"})
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(show)
      .catch(function (err) {
        box.setAttribute("data-state", "failed");
        box.textContent = "The graph could not be loaded: " + err.message;
      });
  }

  document.querySelectorAll(".graphbox").forEach(start);
})();
