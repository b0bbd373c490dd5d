// fmtlab report: the interactive parts, drawn from the page's own JSON (no library, no network).
"use strict";
(function () {
  var SVG = "http:" + "//www.w3.org/2000/svg";  // the SVG namespace name (an identifier, never fetched)
  window.addEventListener("error", function (event) {
    var box = document.getElementById("js-errors") || document.body.appendChild(document.createElement("pre"));
    box.id = "js-errors";
    box.textContent += "script error: " + event.message + "\n";
  });

  function element(name, attributes, text) {
    var node = document.createElement(name);
    Object.keys(attributes || {}).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svgElement(name, attributes, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attributes || {}).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function number(value) { return value === "inf" ? Infinity : value === "-inf" ? -Infinity : value === "nan" ? NaN : value; }
  function decibels(value) {
    value = number(value);
    return value === Infinity ? "∞" : isNaN(value) ? "nan" : value.toFixed(2);
  }
  function percent(value) {
    value = number(value);
    return isNaN(value) ? "nan" : (100 * value).toPrecision(3).replace(/\.?0+$/, "");
  }
  function hashParameters() {
    var found = {};
    window.location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var pair = part.split("=");
      if (pair[0]) found[decodeURIComponent(pair[0])] = decodeURIComponent(pair.slice(1).join("="));
    });
    return found;
  }

  // ---- a small axis chart: x and y ranges, ticks, and a plot area ----
  function chart(width, height, xRange, yRange, xLabel, yLabel) {
    var margin = {left: 48, right: 12, top: 10, bottom: 34};
    var svg = svgElement("svg", {width: width, height: height, viewBox: "0 0 " + width + " " + height, "class": "chart"});
    var plotWidth = width - margin.left - margin.right, plotHeight = height - margin.top - margin.bottom;
    function x(value) { return margin.left + (value - xRange[0]) / (xRange[1] - xRange[0] || 1) * plotWidth; }
    function y(value) { return margin.top + plotHeight - (value - yRange[0]) / (yRange[1] - yRange[0] || 1) * plotHeight; }
    svg.appendChild(svgElement("rect", {x: margin.left, y: margin.top, width: plotWidth, height: plotHeight, fill: "none", stroke: "#999"}));
    function ticks(range, count) {
      var step = Math.pow(10, Math.floor(Math.log10((range[1] - range[0]) / count || 1)));
      [1, 2, 5, 10].some(function (factor) { if ((range[1] - range[0]) / (step * factor) <= count) { step *= factor; return true; } return false; });
      var values = [];
      for (var value = Math.ceil(range[0] / step) * step; value <= range[1] + 1e-9; value += step) values.push(Math.round(value * 1e6) / 1e6);
      return values;
    }
    ticks(xRange, 8).forEach(function (value) {
      svg.appendChild(svgElement("line", {x1: x(value), x2: x(value), y1: margin.top + plotHeight, y2: margin.top + plotHeight + 4, stroke: "#666"}));
      svg.appendChild(svgElement("text", {x: x(value), y: margin.top + plotHeight + 15, "text-anchor": "middle"}, String(value)));
    });
    ticks(yRange, 5).forEach(function (value) {
      svg.appendChild(svgElement("line", {x1: margin.left - 4, x2: margin.left + plotWidth, y1: y(value), y2: y(value), stroke: "#e6e6e6"}));
      svg.appendChild(svgElement("text", {x: margin.left - 6, y: y(value) + 4, "text-anchor": "end"}, String(value)));
    });
    svg.appendChild(svgElement("text", {x: margin.left + plotWidth / 2, y: height - 4, "text-anchor": "middle"}, xLabel));
    svg.appendChild(svgElement("text", {x: 12, y: margin.top + plotHeight / 2, "text-anchor": "middle", transform: "rotate(-90 12 " + (margin.top + plotHeight / 2) + ")"}, yLabel));
    return {svg: svg, x: x, y: y, top: margin.top, bottom: margin.top + plotHeight, left: margin.left, right: margin.left + plotWidth};
  }

  var COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

  function histogramChart(tensor, groups) {
    var histogram = tensor.histogram;
    var ranged = groups.filter(function (group) { return group.range && group.rounding === groups[0].rounding; });
    // The x axis covers the values and 6 binades either side (a format's band is cut at the
    // edges: bf16's range spans 270 binades and would squeeze the bars to nothing).
    var hasValues = histogram && histogram.counts.length;
    var low = hasValues ? histogram.low - 6 : -20, high = hasValues ? histogram.low + histogram.counts.length + 6 : 20;
    function clip(value) { return Math.min(high, Math.max(low, value)); }
    var peak = histogram && histogram.counts.length ? Math.max.apply(null, histogram.counts) : 1;
    var bandHeight = 14, height = 230 + bandHeight * ranged.length;
    var drawn = chart(620, height, [low, high], [0, peak * (1 + 0.12 * ranged.length)], "floor(log2 |x|): bars; bands: each format\u2019s range (light: subnormal), at its best bias", "values");
    ranged.forEach(function (group, index) {
      var top = drawn.top + index * bandHeight, colour = COLOURS[group.c % COLOURS.length];
      var sub = clip(group.range[0]), normal = clip(group.range[1]), top_ = clip(group.range[2] + 1);
      drawn.svg.appendChild(svgElement("rect", {x: drawn.x(sub), y: top, width: drawn.x(normal) - drawn.x(sub), height: bandHeight - 2, fill: colour, "fill-opacity": 0.18, "class": "range-band"}));
      drawn.svg.appendChild(svgElement("rect", {x: drawn.x(normal), y: top, width: drawn.x(top_) - drawn.x(normal), height: bandHeight - 2, fill: colour, "fill-opacity": 0.45, "class": "range-band"}));
      var label = group.format + (group.configurable ? " (bias " + group.best_bias + ")" : "") + (group.range[2] + 1 > high || group.range[0] < low ? " →" : "");
      drawn.svg.appendChild(svgElement("text", {x: top_ < high - 8 ? drawn.x(top_) + 3 : drawn.x(normal) + 3, y: top + 10, fill: "#222", style: "font-size:10px"}, label));
    });
    if (histogram && histogram.counts.length) {
      histogram.counts.forEach(function (count, index) {
        if (!count) return;
        var left = drawn.x(histogram.low + index), right = drawn.x(histogram.low + index + 1);
        var bar = svgElement("rect", {x: left, y: drawn.y(count), width: Math.max(1, right - left - 1), height: drawn.bottom - drawn.y(count), fill: "#333", "class": "histogram-bar"});
        bar.appendChild(svgElement("title", {}, "2^" + (histogram.low + index) + " ≤ |x| < 2^" + (histogram.low + index + 1) + ": " + count.toLocaleString() + " values"));
        drawn.svg.appendChild(bar);
      });
    } else {
      drawn.svg.appendChild(svgElement("text", {x: (drawn.left + drawn.right) / 2, y: (drawn.top + drawn.bottom) / 2, "text-anchor": "middle"}, "no histogram recorded"));
    }
    return drawn.svg;
  }

  // A curve is {from: b0, sqnr: [...]} (biases b0, b0 + 1, ...) or {bias: [...], sqnr: [...]}.
  function curvePoints(curve) {
    return curve.sqnr.map(function (value, index) { return [curve.bias ? curve.bias[index] : curve.from + index, value]; });
  }

  function biasChart(groups) {
    var curved = groups.filter(function (group) { return group.curve; });
    if (!curved.length) return null;
    var biases = [], sqnrs = [];
    curved.forEach(function (group) {
      curvePoints(group.curve).forEach(function (point) { biases.push(point[0]); var value = number(point[1]); if (isFinite(value)) sqnrs.push(value); });
    });
    var yRange = sqnrs.length ? [Math.floor(Math.min.apply(null, sqnrs)), Math.ceil(Math.max.apply(null, sqnrs)) + 1] : [0, 1];
    var drawn = chart(520, 260, [Math.min.apply(null, biases), Math.max.apply(null, biases)], yRange, "bias", "SQNR (dB)");
    curved.forEach(function (group, index) {
      var colour = COLOURS[group.c % COLOURS.length], path = "", pen = "M";
      curvePoints(group.curve).forEach(function (point) {
        var value = number(point[1]);
        if (!isFinite(value)) { pen = "M"; return; }
        path += pen + drawn.x(point[0]).toFixed(1) + " " + drawn.y(value).toFixed(1) + " ";
        pen = "L";
      });
      drawn.svg.appendChild(svgElement("path", {d: path, fill: "none", stroke: colour, "stroke-width": 1.6, "stroke-dasharray": group.rounding === "nearest_even" ? "" : "4 3", "class": "bias-curve"}));
      var best = number(group.best_sqnr);
      if (isFinite(best)) drawn.svg.appendChild(svgElement("circle", {cx: drawn.x(group.best_bias), cy: drawn.y(best), r: 4, fill: colour}));
      var rule = number(group.rule_sqnr);
      if (isFinite(rule)) drawn.svg.appendChild(svgElement("circle", {cx: drawn.x(group.rule_bias), cy: drawn.y(rule), r: 7, fill: "none", stroke: colour}));
      drawn.svg.appendChild(svgElement("text", {x: drawn.left + 6, y: drawn.bottom + 46 + 14 * index, fill: colour}, group.format + " · " + group.rounding + ": dot best bias " + group.best_bias + ", ring amax-rule bias " + group.rule_bias));
    });
    drawn.svg.setAttribute("height", 260 + 14 * curved.length + 24);
    drawn.svg.setAttribute("viewBox", "0 0 520 " + (260 + 14 * curved.length + 24));
    return drawn.svg;
  }

  function showDetail(data, index) {
    var tensor = data.tensors[index], body = document.getElementById("detail-body");
    if (!tensor || !body) return;
    body.textContent = "";
    document.querySelectorAll(".heatmap tr.selected").forEach(function (row) { row.classList.remove("selected"); });
    var row = document.querySelector('.heatmap tr[data-tensor-index="' + index + '"]');
    if (row) row.classList.add("selected");
    var histogram = tensor.histogram;
    var facts = tensor.name + " — " + tensor.kind + (tensor.depth === null ? "" : ", layer " + tensor.depth) + "; " +
      tensor.n.toLocaleString() + " values, amax " + tensor.amax;
    if (histogram) facts += "; " + histogram.zeros.toLocaleString() + " zeros, " + histogram.nonfinite.toLocaleString() + " non-finite";
    body.appendChild(element("h3", {id: "detail-title"}, facts));
    var charts = body.appendChild(element("div", {"class": "charts"}));
    charts.appendChild(histogramChart(tensor, tensor.groups));
    var bias = biasChart(tensor.groups);
    if (bias) charts.appendChild(bias);
    var table = body.appendChild(element("table", {"class": "results counts"}));
    var head = table.appendChild(element("thead")).appendChild(element("tr"));
    ["format", "rounding", "bits", "best bias", "SQNR dB", "rule bias", "rule SQNR dB", "overflow %", "underflow %", "Inf/NaN out %"].forEach(function (title) { head.appendChild(element("th", {}, title)); });
    var rows = table.appendChild(element("tbody"));
    tensor.groups.forEach(function (group) {
      var line = rows.appendChild(element("tr"));
      [group.format, group.rounding, group.bits, group.configurable ? group.best_bias : "-", decibels(group.best_sqnr),
       group.configurable ? group.rule_bias : "-", group.configurable ? decibels(group.rule_sqnr) : "-",
       percent(group.overflow), percent(group.underflow), percent(group.nonfinite)].forEach(function (value, column) {
        line.appendChild(element("td", column > 1 ? {"class": "number"} : {}, String(value)));
      });
    });
    document.getElementById("detail-hint").hidden = true;
  }

  // ---- the sortable, filterable table of every (tensor, format, rounding) ----
  var COLUMNS = [
    ["tensor", function (t) { return t.name; }], ["layer kind", function (t) { return t.kind; }],
    ["format", function (t, g) { return g.format; }], ["rounding", function (t, g) { return g.rounding; }],
    ["bits", function (t, g) { return number(g.bits); }],
    ["best bias", function (t, g) { return g.best_bias; }], ["SQNR dB", function (t, g) { return number(g.best_sqnr); }],
    ["rule bias", function (t, g) { return g.rule_bias; }], ["gap dB", function (t, g) { return number(g.gap); }],
    ["overflow %", function (t, g) { return 100 * number(g.overflow); }],
    ["underflow %", function (t, g) { return 100 * number(g.underflow); }]];

  function buildTable(data) {
    var table = document.getElementById("results");
    if (!table) return;
    var entries = [];
    data.tensors.forEach(function (tensor, index) {
      tensor.groups.forEach(function (group) {
        var values = COLUMNS.map(function (column) { return column[1](tensor, group); });
        entries.push({index: index, values: values, text: values.join(" ").toLowerCase()});
      });
    });
    var head = table.tHead.appendChild(element("tr")), body = table.tBodies[0], sortColumn = -1, direction = 1;
    function render() {
      var words = document.getElementById("filter").value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = entries.filter(function (entry) { return words.every(function (word) { return entry.text.indexOf(word) >= 0; }); });
      if (sortColumn >= 0) {
        shown.sort(function (a, b) {
          var left = a.values[sortColumn], right = b.values[sortColumn];
          if (typeof left === "number") { left = isNaN(left) ? -Infinity : left; right = isNaN(right) ? -Infinity : right; }
          return (left < right ? -1 : left > right ? 1 : 0) * direction;
        });
      }
      var fragment = document.createDocumentFragment();
      shown.forEach(function (entry) {
        var line = element("tr", {"data-tensor-index": entry.index});
        entry.values.forEach(function (value, column) {
          var text = typeof value === "number" ? (value === Infinity ? "∞" : isNaN(value) ? "nan" : column >= 9 ? value.toPrecision(3).replace(/\.?0+$/, "") : column === 6 || column === 8 ? value.toFixed(2) : String(value)) : value;
          line.appendChild(element("td", typeof value === "number" ? {"class": "number"} : {}, text));
        });
        fragment.appendChild(line);
      });
      body.textContent = "";
      body.appendChild(fragment);
      document.getElementById("table-count").textContent = shown.length + " of " + entries.length + " rows";
    }
    COLUMNS.forEach(function (column, index) {
      var cell = head.appendChild(element("th", {"data-column": index}, column[0]));
      cell.addEventListener("click", function () {
        direction = sortColumn === index ? -direction : 1;
        sortColumn = index;
        head.querySelectorAll("th").forEach(function (other) { other.className = ""; });
        cell.className = direction > 0 ? "sorted-up" : "sorted-down";
        render();
      });
    });
    document.getElementById("filter").addEventListener("input", render);
    body.addEventListener("click", function (event) {
      var line = event.target.closest("tr");
      if (line) showDetail(data, Number(line.getAttribute("data-tensor-index")));
    });
    var parameters = hashParameters();
    if (parameters.filter) document.getElementById("filter").value = parameters.filter;
    if (parameters.sort) {
      var wanted = COLUMNS.findIndex(function (column) { return column[0] === parameters.sort; });
      if (wanted >= 0) { sortColumn = wanted; direction = parameters.order === "down" ? -1 : 1; head.children[wanted].className = direction > 0 ? "sorted-up" : "sorted-down"; }
    }
    render();
  }

  function startSweep() {
    var source = document.getElementById("sweep-data");
    if (!source) return;
    var data = JSON.parse(source.textContent);
    document.querySelectorAll(".heatmap button.toggle").forEach(function (button) {
      button.addEventListener("click", function () {
        var open = button.getAttribute("aria-expanded") !== "true";
        button.setAttribute("aria-expanded", open ? "true" : "false");
        button.closest("tbody").querySelectorAll("tr.tensor-row").forEach(function (row) { row.classList.toggle("collapsed", !open); });
      });
    });
    document.querySelector(".heatmap").addEventListener("mouseover", function (event) {
      var cell = event.target.closest("td.cell");
      if (!cell || cell.title) return;
      var tensor = data.tensors[Number(cell.parentNode.getAttribute("data-tensor-index"))];
      var column = Number(cell.getAttribute("data-c"));
      var group = tensor.groups.filter(function (candidate) { return candidate.c === column; })[0];
      cell.title = tensor.name + " · " + group.format + " · " + group.rounding + ": " + decibels(group.best_sqnr) + " dB" +
        (group.configurable ? ", best bias " + group.best_bias + " (amax rule " + group.rule_bias + ")" : "") +
        "; overflow " + percent(group.overflow) + "%, underflow " + percent(group.underflow) + "%";
    });
    document.querySelector(".heatmap").addEventListener("click", function (event) {
      var row = event.target.closest("tr.tensor-row");
      if (row) showDetail(data, Number(row.getAttribute("data-tensor-index")));
    });
    buildTable(data);
    var parameters = hashParameters();
    if (parameters.tensor !== undefined) {
      var index = data.tensors.findIndex(function (tensor) { return tensor.name === parameters.tensor; });
      if (index >= 0) showDetail(data, index);
    }
  }

  // Any other table with class "sortable": click a heading to sort by it.
  function startSortable() {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      var direction = 1, last = -1;
      table.tHead.querySelectorAll("th").forEach(function (cell, index) {
        cell.addEventListener("click", function () {
          direction = last === index ? -direction : 1;
          last = index;
          var rows = Array.prototype.slice.call(table.tBodies[0].rows);
          rows.sort(function (a, b) {
            var left = a.cells[index].getAttribute("data-value") || a.cells[index].textContent;
            var right = b.cells[index].getAttribute("data-value") || b.cells[index].textContent;
            var leftNumber = parseFloat(left), rightNumber = parseFloat(right);
            if (!isNaN(leftNumber) && !isNaN(rightNumber)) { left = leftNumber; right = rightNumber; }
            return (left < right ? -1 : left > right ? 1 : 0) * direction;
          });
          rows.forEach(function (row) { table.tBodies[0].appendChild(row); });
        });
      });
    });
  }

  startSweep();
  startSortable();
  document.body.setAttribute("data-report-ready", "yes");
})();
