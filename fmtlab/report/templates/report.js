// fmtlab report: the interactive parts.  Every picture is a matplotlib SVG written by fmtlab;
// this script only shows the detail a reader asks for (inflating it with the browser's own
// DecompressionStream), writes the heatmap's tooltips and sorts and filters the table.
"use strict";
(function () {
  var pending = 0;  // work still running (a detail being inflated); the page is ready at 0
  function ready() { if (pending === 0) document.body.setAttribute("data-report-ready", "yes"); }
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

  // A detail is gzip-compressed HTML in base64 (fmtlab.report.page.packed).
  function inflate(text) {
    var bytes = Uint8Array.from(atob(text), function (character) { return character.charCodeAt(0); });
    return new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).text();
  }

  var shown = -1;
  function showDetail(details, index) {
    var body = document.getElementById("detail-body");
    if (!body || index < 0 || index >= details.length || index === shown) return;
    shown = index;
    pending += 1;
    document.querySelectorAll(".heatmap tr.selected").forEach(function (row) { row.classList.remove("selected"); });
    var row = document.querySelector('.heatmap tr[data-tensor-index="' + index + '"]');
    if (row) row.classList.add("selected");
    inflate(details[index]).then(function (html) {
      if (shown === index) {
        body.innerHTML = html;
        document.getElementById("detail-hint").hidden = true;
      }
    }).catch(function (error) {
      body.textContent = "this browser could not inflate the detail (" + error + "); the page needs DecompressionStream";
    }).then(function () { pending -= 1; ready(); });
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

  function buildTable(data, details) {
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
      var kept = entries.filter(function (entry) { return words.every(function (word) { return entry.text.indexOf(word) >= 0; }); });
      if (sortColumn >= 0) {
        kept.sort(function (a, b) {
          var left = a.values[sortColumn], right = b.values[sortColumn];
          if (typeof left === "number") { left = isNaN(left) ? -Infinity : left; right = isNaN(right) ? -Infinity : right; }
          return (left < right ? -1 : left > right ? 1 : 0) * direction;
        });
      }
      var fragment = document.createDocumentFragment();
      kept.forEach(function (entry) {
        var line = element("tr", {"data-tensor-index": entry.index});
        entry.values.forEach(function (value, column) {
          var text = typeof value === "number" ? (value === Infinity ? "∞" : isNaN(value) ? "nan" : column >= 9 ? value.toPrecision(3).replace(/\.?0+$/, "") : column === 6 || column === 8 ? value.toFixed(2) : String(value)) : value;
          line.appendChild(element("td", typeof value === "number" ? {"class": "number"} : {}, text));
        });
        fragment.appendChild(line);
      });
      body.textContent = "";
      body.appendChild(fragment);
      document.getElementById("table-count").textContent = kept.length + " of " + entries.length + " rows";
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
      if (line) showDetail(details, Number(line.getAttribute("data-tensor-index")));
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
    var details = JSON.parse(document.getElementById("sweep-details").textContent);
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
      if (row) showDetail(details, Number(row.getAttribute("data-tensor-index")));
    });
    buildTable(data, details);
    var parameters = hashParameters();
    if (parameters.tensor !== undefined) {
      var index = data.tensors.findIndex(function (tensor) { return tensor.name === parameters.tensor; });
      if (index >= 0) showDetail(details, index);
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
  ready();
})();
