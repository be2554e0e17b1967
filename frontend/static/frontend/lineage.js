/* The lineage page's graph: fetch GET /api/v1/lineage/graph with the session (same origin) and draw it
 * with Cytoscape.js. The form (#lineage-controls) holds direction, depth, columns and "as of" (UTC); htmx
 * re-renders the server-side lists when it changes, this script redraws the graph and keeps the address in
 * step. Data flows left to right: dataset boxes coloured by classification, jobs as diamonds between them,
 * with columns on, each dataset's columns as rows inside its box. Clicking a dataset opens its page. */
(function () {
  "use strict";

  var LEVEL_COLOURS = { C1: "#2e7d32", C2: "#1565c0", C3: "#8a5200", C4: "#b3261e" };
  var UNKNOWN_COLOUR = "#8a93a5";
  var RANK_WIDTH = 190; // horizontal distance between a dataset and its job, or a job and its dataset
  var GAP = 34; // vertical room between two nodes of one rank
  var BOX = { width: 40, height: 24 }; // a dataset without columns shown
  var COLUMN = { width: 150, height: 16, step: 19, top: 10 };

  var STYLE = [
    {
      selector: "node",
      style: {
        label: "data(label)",
        "font-size": 12,
        color: "#1d2433",
        "text-valign": "bottom",
        "text-margin-y": 4,
        "text-wrap": "ellipsis",
        "text-max-width": 170,
        "text-background-color": "#ffffff",
        "text-background-opacity": 0.8,
        "text-background-padding": 1,
        "min-zoomed-font-size": 7,
      },
    },
    {
      selector: 'node[kind = "dataset"]',
      style: {
        shape: "round-rectangle",
        width: "data(w)",
        height: "data(h)",
        "background-color": "data(colour)",
        "border-width": 1,
        "border-color": "#1d2433",
        "z-index": 1,
      },
    },
    {
      selector: 'node[kind = "dataset"][columns > 0]',
      style: {
        "background-opacity": 0.22,
        "border-width": 2,
        "border-color": "data(colour)",
        "text-valign": "top",
        "text-margin-y": -4,
      },
    },
    {
      selector: 'node[kind = "job"]',
      style: {
        shape: "diamond",
        width: 20,
        height: 20,
        "background-color": "#5b6475",
        "font-size": 11,
        color: "#5b6475",
        "z-index": 2,
      },
    },
    {
      selector: 'node[kind = "column"]',
      style: {
        shape: "round-rectangle",
        width: COLUMN.width,
        height: COLUMN.height,
        "background-color": "#ffffff",
        "border-width": 1,
        "border-color": "#9aa3b5",
        "font-size": 10,
        "font-family": "ui-monospace, Menlo, monospace",
        "text-valign": "center",
        "text-margin-y": 0,
        "text-max-width": COLUMN.width - 8,
        "text-background-opacity": 0,
        "z-index": 3,
      },
    },
    { selector: "node.root", style: { "border-width": 4, "border-color": "#182338", "font-weight": "bold" } },
    { selector: "node.picked", style: { "overlay-color": "#1565c0", "overlay-opacity": 0.25, "overlay-padding": 6 } },
    { selector: "node.match", style: { "border-width": 4, "border-color": "#6a1b9a", "font-weight": "bold" } },
    { selector: ".faded", style: { opacity: 0.15 } },
    {
      selector: "edge.path",
      style: { width: 3, "line-color": "#6a1b9a", "target-arrow-color": "#6a1b9a", "line-style": "solid", "z-index": 9 },
    },
    { selector: "node.path", style: { "border-width": 3, "border-color": "#6a1b9a" } },
    {
      selector: "edge",
      style: {
        width: 1.5,
        "curve-style": "bezier",
        "target-arrow-shape": "triangle",
        "line-color": "#9aa3b5",
        "target-arrow-color": "#9aa3b5",
      },
    },
    {
      selector: 'edge[kind = "column"]',
      style: {
        width: 1,
        "line-style": "dashed",
        "line-color": "#b26a00",
        "target-arrow-color": "#b26a00",
        "arrow-scale": 0.7,
        "z-index": 4,
      },
    },
  ];

  var box = document.getElementById("lineage-graph");
  var form = document.getElementById("lineage-controls");
  var status = document.getElementById("lineage-status");
  if (!box || !form) return;

  var cy = null;
  var latest = 0;

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle("error", !!isError);
  }

  // The form's "as of" is a datetime-local value, meant as UTC.
  function asOf(value) {
    value = (value || "").trim();
    if (!value) return "";
    if (/[zZ]$|[+-]\d\d:\d\d$/.test(value)) return value;
    if (value.length === 16) value += ":00";
    return value + "Z";
  }

  function controls() {
    var data = new FormData(form);
    return {
      direction: data.get("direction") || "both",
      depth: data.get("depth") || "3",
      columns: data.get("columns") ? "1" : "",
      at: (data.get("at") || "").trim(),
    };
  }

  function keepAddress(c) {
    var page = new URLSearchParams();
    page.set("direction", c.direction);
    page.set("depth", c.depth);
    if (c.columns) page.set("columns", "1");
    if (c.at) page.set("at", c.at);
    try {
      history.replaceState(history.state, "", window.location.pathname + "?" + page.toString());
    } catch (e) {
      /* not important */
    }
  }

  function byName(a, b) {
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  }

  /* Positions for a left-to-right layered drawing. Ranks come from a walk out of the root: one rank to the
   * right along an edge, one to the left against it (a dataset, its job and the next dataset are one rank
   * apart). Within a rank nodes are ordered by where their neighbours already are (fewer crossings), and a
   * dataset's columns are stacked inside its box. */
  function positions(graph, columnsOf) {
    var nodes = {};
    var main = graph.nodes.filter(function (n) {
      return n.kind !== "column";
    });
    main.forEach(function (n) {
      nodes[n.id] = n;
    });
    var next = {};
    var prev = {};
    graph.edges.forEach(function (e) {
      if (e.kind === "column" || !nodes[e.source] || !nodes[e.target]) return;
      (next[e.source] = next[e.source] || []).push(e.target);
      (prev[e.target] = prev[e.target] || []).push(e.source);
    });
    var rank = {};
    var queue = [];
    if (nodes[graph.root]) {
      rank[graph.root] = 0;
      queue.push(graph.root);
    }
    while (queue.length) {
      var id = queue.shift();
      (next[id] || []).forEach(function (t) {
        if (!(t in rank)) {
          rank[t] = rank[id] + 1;
          queue.push(t);
        }
      });
      (prev[id] || []).forEach(function (s) {
        if (!(s in rank)) {
          rank[s] = rank[id] - 1;
          queue.push(s);
        }
      });
    }
    // Datasets not linked to the root here (their link runs through a dataset you may not see) go last.
    var ranks = Object.keys(rank).map(function (k) {
      return rank[k];
    });
    var loose = Math.max.apply(null, ranks.concat([0])) + 2;
    main.forEach(function (n) {
      if (!(n.id in rank)) rank[n.id] = loose;
    });

    var layers = {};
    main.forEach(function (n) {
      (layers[rank[n.id]] = layers[rank[n.id]] || []).push(n);
    });
    var order = Object.keys(layers)
      .map(Number)
      .sort(function (a, b) {
        return a - b;
      });
    var height = function (n) {
      if (n.kind === "job") return 20;
      var cols = (columnsOf[n.id] || []).length;
      return cols ? COLUMN.top * 2 + cols * COLUMN.step : BOX.height;
    };
    var place = {};
    var rootIndex = order.indexOf(0);
    // Place the root's layer, then outwards both ways, each layer ordered by its placed neighbours.
    var sequence = [0].concat(
      order.filter(function (r) {
        return r > 0;
      }),
      order
        .filter(function (r) {
          return r < 0;
        })
        .reverse()
    );
    if (rootIndex < 0) sequence = order;
    sequence.forEach(function (r) {
      var layer = (layers[r] || []).slice().sort(byName);
      var weight = function (n) {
        var ys = (next[n.id] || []).concat(prev[n.id] || []).filter(function (o) {
          return o in place;
        });
        if (!ys.length) return null;
        return (
          ys.reduce(function (sum, o) {
            return sum + place[o].y;
          }, 0) / ys.length
        );
      };
      var weights = {};
      layer.forEach(function (n) {
        weights[n.id] = weight(n);
      });
      layer.sort(function (a, b) {
        var wa = weights[a.id];
        var wb = weights[b.id];
        if (wa === null && wb === null) return byName(a, b);
        if (wa === null) return 1;
        if (wb === null) return -1;
        return wa - wb || byName(a, b);
      });
      // Each node as near its neighbours' height as the ones above it allow, then the layer shifted so that,
      // on average, nodes sit where their neighbours are (a layer with no placed neighbours is centred).
      var cursor = null;
      var shift = [];
      layer.forEach(function (n) {
        var h = height(n);
        var want = weights[n.id] === null ? null : weights[n.id] - h / 2;
        var top = cursor === null ? (want === null ? 0 : want) : Math.max(want === null ? -Infinity : want, cursor + GAP);
        place[n.id] = { x: r * RANK_WIDTH, y: top + h / 2 };
        if (want !== null) shift.push(top - want);
        cursor = top + h;
      });
      var first = layer.length ? place[layer[0].id].y - height(layer[0]) / 2 : 0;
      var by = shift.length
        ? shift.reduce(function (a, b) {
            return a + b;
          }, 0) / shift.length
        : first + (cursor - first) / 2;
      layer.forEach(function (n) {
        place[n.id].y -= by;
      });
    });
    // Columns: rows inside their dataset's box.
    Object.keys(columnsOf).forEach(function (datasetId) {
      var at = place[datasetId];
      if (!at) return;
      var cols = columnsOf[datasetId];
      var top = at.y - height(nodes[datasetId]) / 2 + COLUMN.top;
      cols.forEach(function (c, i) {
        place[c.id] = { x: at.x, y: top + COLUMN.step * i + COLUMN.step / 2 };
      });
    });
    return place;
  }

  function edgeId(e) {
    return "edge:" + e.kind + ":" + e.source + ">" + e.target;
  }

  function elements(graph, withColumns) {
    var ids = {};
    var columnsOf = {};
    graph.nodes.forEach(function (n) {
      ids[n.id] = true;
    });
    graph.nodes.forEach(function (n) {
      if (withColumns && n.kind === "column" && ids[n.dataset]) {
        (columnsOf[n.dataset] = columnsOf[n.dataset] || []).push(n);
      }
    });
    Object.keys(columnsOf).forEach(function (k) {
      columnsOf[k].sort(byName);
    });
    var out = [];
    graph.nodes.forEach(function (n) {
      if (n.kind === "column" && !(withColumns && ids[n.dataset])) return;
      var data = {};
      Object.keys(n).forEach(function (k) {
        data[k] = n[k];
      });
      data.label = n.hidden ? "(hidden)" : n.name;
      if (n.kind === "dataset") {
        // The level it had at the graph's instant ("as of"), as the API answers it.
        if (!n.hidden && n.classification) data.label = n.name + " · " + n.classification;
        var cols = (columnsOf[n.id] || []).length;
        data.colour = LEVEL_COLOURS[n.classification] || UNKNOWN_COLOUR;
        data.columns = cols;
        data.w = cols ? COLUMN.width + 14 : BOX.width;
        data.h = cols ? COLUMN.top * 2 + cols * COLUMN.step : BOX.height;
      }
      out.push({ group: "nodes", data: data, classes: n.id === graph.root ? "root" : "", grabbable: n.kind !== "column" });
    });
    var seen = {};
    graph.edges.forEach(function (e) {
      if (!ids[e.source] || !ids[e.target]) return;
      if (e.kind === "column" && !withColumns) return;
      var id = edgeId(e);
      if (seen[id]) return;
      seen[id] = true;
      out.push({ group: "edges", data: { id: id, source: e.source, target: e.target, kind: e.kind, job: e.job } });
    });
    return { elements: out, positions: positions(graph, columnsOf) };
  }

  function draw(graph, withColumns) {
    if (cy) cy.destroy();
    var built = elements(graph, withColumns);
    cy = window.cytoscape({
      container: box,
      elements: built.elements,
      style: STYLE,
      layout: {
        name: "preset",
        positions: function (node) {
          return built.positions[node.id()] || { x: 0, y: 0 };
        },
        fit: true,
        padding: 30,
      },
      minZoom: 0.05,
      maxZoom: 3,
      boxSelectionEnabled: false,
      // Hundreds of nodes: draw a still picture while panning and zooming.
      hideEdgesOnViewport: graph.nodes.length > 300,
      textureOnViewport: graph.nodes.length > 300,
    });
    shown = { graph: graph, columns: withColumns };
    pick(null);
    if (cy.zoom() < 0.6 && cy.nodes().length > 1) {
      // Many nodes: start readable around the root rather than fitting everything in a dot-sized drawing.
      cy.zoom(0.6);
      cy.center(cy.getElementById(graph.root));
    }
    // A dataset box drags its column rows with it.
    cy.on("grab", 'node[kind = "dataset"]', function (event) {
      event.target.scratch("_last", Object.assign({}, event.target.position()));
    });
    cy.on("drag", 'node[kind = "dataset"]', function (event) {
      var node = event.target;
      var last = node.scratch("_last");
      var now = node.position();
      if (!last) return;
      var dx = now.x - last.x;
      var dy = now.y - last.y;
      cy.nodes('[kind = "column"]')
        .filter(function (c) {
          return c.data("dataset") === node.id();
        })
        .positions(function (c) {
          return { x: c.position("x") + dx, y: c.position("y") + dy };
        });
      node.scratch("_last", { x: now.x, y: now.y });
    });
    cy.on("tap", 'node[kind = "dataset"]', function (event) {
      pick(event.target);
    });
    cy.on("dbltap", 'node[kind = "dataset"]', function (event) {
      openDataset(event.target);
    });
    cy.on("tap", 'node[kind = "column"]', function (event) {
      columnPath(event.target);
    });
    cy.on("tap", function (event) {
      if (event.target === cy) pick(null);
    });
    cy.on("mouseover", 'node[kind = "dataset"], node[kind = "column"]', function () {
      box.style.cursor = "pointer";
    });
    cy.on("mouseout", "node", function () {
      box.style.cursor = "";
    });
    var count = function (kind) {
      return graph.nodes.filter(function (n) {
        return n.kind === kind;
      }).length;
    };
    var datasets = count("dataset");
    var jobs = count("job");
    say(
      datasets <= 1
        ? "No lineage within these hops."
        : datasets +
            " datasets, " +
            jobs +
            " job" +
            (jobs === 1 ? "" : "s") +
            (withColumns ? ", " + count("column") + " columns" : "") +
            (graph.at ? " as of " + graph.at : "") +
            (graph.truncated ? " (the nearest " + graph.limit + " datasets only: fewer hops show the rest)" : "") +
            ". Scroll or use + and − to zoom, drag to move; select a dataset to expand or collapse its neighbours.",
      false
    );
  }

  function problem(response) {
    return response
      .json()
      .catch(function () {
        return {};
      })
      .then(function (body) {
        return "Error " + response.status + ": " + (body.detail || response.statusText || "the graph could not load");
      });
  }

  /* ---- Explorer: select, expand, collapse, find, column paths, fit/zoom/reset ---- */
  var toolbar = document.getElementById("lineage-toolbar");
  var finder = document.getElementById("lineage-search");
  var shown = null; // the graph as fetched, for Reset
  var picked = null;
  var expansions = 0;

  function button(action) {
    return toolbar ? toolbar.querySelector('[data-action="' + action + '"]') : null;
  }

  function enable(action, on) {
    var b = button(action);
    if (b) b.disabled = !on;
  }

  function pick(node) {
    if (cy) cy.nodes(".picked").removeClass("picked");
    picked = node && node.nonempty() ? node : null;
    var visible = !!(picked && picked.data("dataset_id"));
    if (picked) picked.addClass("picked");
    enable("expand", visible);
    enable("collapse", visible);
    enable("open", visible);
    if (picked) say("Selected " + picked.data("label") + ".", false);
  }

  function openDataset(node) {
    var id = node && node.data("dataset_id");
    if (id) window.location.href = box.dataset.datasetUrl.replace(box.dataset.zero, id);
  }

  function clearMarks() {
    if (!cy) return;
    cy.elements().removeClass("faded path match");
    enable("clear", false);
  }

  function spotlight(keep) {
    cy.elements().addClass("faded");
    keep.removeClass("faded");
    enable("clear", true);
  }

  // A column's path end to end: every column upstream and downstream along column edges, their jobs and datasets.
  function columnPath(column) {
    clearMarks();
    var nodes = column;
    var edges = cy.collection();
    [
      ["incomers", "source"],
      ["outgoers", "target"],
    ].forEach(function (way) {
      var frontier = column;
      while (frontier.nonempty()) {
        var step = frontier[way[0]]('edge[kind = "column"]').difference(edges);
        edges = edges.union(step);
        var next = step.map(function (e) {
          return e[way[1]]();
        });
        frontier = cy.collection(next).difference(nodes);
        nodes = nodes.union(frontier);
      }
    });
    var owners = nodes.map(function (c) {
      return cy.getElementById(c.data("dataset"));
    });
    var jobs = edges.map(function (e) {
      return cy.getElementById(e.data("job") || "");
    });
    var keep = nodes.union(edges).union(cy.collection(owners)).union(cy.collection(jobs));
    spotlight(keep);
    nodes.addClass("path");
    edges.addClass("path");
    cy.fit(keep, 40);
    say(
      "Path of column " + column.data("name") + ": " + nodes.length + " columns in " + owners.length + " place(s) along " + edges.length + " column edge(s).",
      false
    );
  }

  function find(text) {
    if (!cy) return;
    clearMarks();
    var q = (text || "").trim().toLowerCase();
    if (!q) {
      say("Type a name to find it in the graph.", false);
      return;
    }
    var hits = cy.nodes().filter(function (n) {
      return !n.data("hidden") && String(n.data("name") || "").toLowerCase().indexOf(q) !== -1;
    });
    if (hits.empty()) {
      say("Nothing in this graph is named like “" + text.trim() + "”.", true);
      return;
    }
    var owners = hits.map(function (n) {
      return n.data("kind") === "column" ? cy.getElementById(n.data("dataset")) : n;
    });
    spotlight(hits.union(cy.collection(owners)));
    hits.addClass("match");
    cy.fit(hits.union(cy.collection(owners)), 60);
    if (cy.zoom() > 1.5) cy.zoom({ level: 1.5, position: hits[0].position() });
    if (hits[0].data("kind") === "dataset") pick(hits[0]);
    say(hits.length + " node" + (hits.length === 1 ? "" : "s") + " match “" + text.trim() + "”.", false);
  }

  function zoomBy(factor) {
    if (!cy) return;
    var level = Math.max(cy.minZoom(), Math.min(cy.maxZoom(), cy.zoom() * factor));
    cy.zoom({ level: level, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } });
  }

  // Neighbours one hop away (both ways) of the selected dataset, fetched and placed beside it.
  function expand(node) {
    var c = controls();
    var query = new URLSearchParams({
      namespace: node.data("namespace"),
      name: node.data("name"),
      direction: "both",
      depth: "1",
      columns: c.columns ? "true" : "false",
    });
    if (c.at) query.set("at", asOf(c.at));
    var tag = "@" + ++expansions;
    say("Expanding " + node.data("label") + "…", false);
    fetch(box.dataset.graphUrl + "?" + query.toString(), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) return problem(response).then(function (text) { say(text, true); });
        return response.json().then(function (graph) {
          if (!cy || node.cy() !== cy || node.removed()) return;
          var rename = function (id) {
            return /^(hidden|job:hidden):/.test(id) ? id + tag : id;
          };
          var added = 0;
          var origin = node.position();
          var slots = { left: 0, right: 0 };
          var side = {};
          graph.edges.forEach(function (e) {
            if (e.kind === "input" && rename(e.target) && e.source === node.id()) side[rename(e.target)] = 1;
            if (e.kind === "output" && e.target === node.id()) side[rename(e.source)] = -1;
          });
          graph.edges.forEach(function (e) {
            if (e.kind === "input" && side[rename(e.target)] === -1) side[rename(e.source)] = -2;
            if (e.kind === "output" && side[rename(e.source)] === 1) side[rename(e.target)] = 2;
          });
          var els = [];
          graph.nodes.forEach(function (n) {
            var id = rename(n.id);
            if (n.kind === "column" && (!c.columns || cy.getElementById(n.dataset).empty())) return;
            if (cy.getElementById(id).nonempty()) return;
            var data = {};
            Object.keys(n).forEach(function (k) {
              data[k] = n[k];
            });
            data.id = id;
            data.label = n.hidden ? "(hidden)" : n.classification ? n.name + " · " + n.classification : n.name;
            if (n.kind === "dataset") {
              data.colour = LEVEL_COLOURS[n.classification] || UNKNOWN_COLOUR;
              data.columns = 0;
              data.w = BOX.width;
              data.h = BOX.height;
            }
            var s = side[id] || 2;
            var key = s < 0 ? "left" : "right";
            var y = origin.y + (slots[key]++ - 1) * GAP;
            els.push({ group: "nodes", data: data, position: { x: origin.x + s * RANK_WIDTH, y: y } });
            added++;
          });
          cy.add(els);
          var edges = [];
          graph.edges.forEach(function (e) {
            var edge = { kind: e.kind, job: e.job, source: rename(e.source), target: rename(e.target) };
            edge.id = edgeId(edge);
            if (cy.getElementById(edge.id).nonempty()) return;
            if (cy.getElementById(edge.source).empty() || cy.getElementById(edge.target).empty()) return;
            edges.push({ group: "edges", data: edge });
          });
          cy.add(edges);
          say(added ? "Added " + added + " node(s) around " + node.data("label") + "." : node.data("label") + " has no neighbours beyond those shown.", false);
        });
      })
      .catch(function () {
        say("The neighbours could not load (network error).", true);
      });
  }

  // Hide what hangs off the selected dataset: whatever the graph's root reaches only through it (its jobs
  // and datasets on the far side), keeping its own way back to the root.
  function collapse(node) {
    var root = cy.getElementById(shown.graph.root);
    var keep = {};
    keep[node.id()] = true;
    if (root.nonempty() && root.id() !== node.id()) {
      var queue = [root];
      keep[root.id()] = true;
      while (queue.length) {
        var here = queue.shift();
        here.neighborhood('node[kind != "column"]').forEach(function (n) {
          if (keep[n.id()]) return;
          keep[n.id()] = true;
          queue.push(n);
        });
      }
    }
    var gone = cy.nodes().filter(function (n) {
      var owner = n.data("kind") === "column" ? n.data("dataset") : n.id();
      return !keep[owner];
    });
    cy.remove(gone);
    say(
      gone.length
        ? "Hid " + gone.length + " node(s) beyond " + node.data("label") + "; Expand or Reset shows them again."
        : "Nothing hangs off " + node.data("label") + " alone.",
      false
    );
  }

  if (toolbar) {
    toolbar.addEventListener("click", function (event) {
      var b = event.target.closest("button[data-action]");
      if (!b || !cy) return;
      var action = b.dataset.action;
      if (action === "fit") cy.fit(undefined, 30);
      else if (action === "zoom-in") zoomBy(1.25);
      else if (action === "zoom-out") zoomBy(0.8);
      else if (action === "reset" && shown) draw(shown.graph, shown.columns);
      else if (action === "expand" && picked) expand(picked);
      else if (action === "collapse" && picked) collapse(picked);
      else if (action === "open" && picked) openDataset(picked);
      else if (action === "clear") clearMarks();
    });
  }
  if (finder) {
    finder.addEventListener("submit", function (event) {
      event.preventDefault();
      find(finder.elements.q.value);
    });
  }

  // Lets the browser tests (and the curious) look at the drawing.
  window.stewardLineage = {
    graph: function () {
      return cy;
    },
  };

  function refresh() {
    var c = controls();
    keepAddress(c);
    var depthInput = form.elements.depth;
    var depth = Number(c.depth);
    var most = Number(depthInput && depthInput.max) || 10;
    if (!/^\d+$/.test(String(c.depth)) || depth < 1 || depth > most) {
      say("Depth must be a whole number between 1 and " + most + ".", true);
      return;
    }
    if (typeof window.cytoscape !== "function") {
      say("The graph could not load; the lists below show the same lineage.", true);
      return;
    }
    var query = new URLSearchParams({
      namespace: box.dataset.namespace,
      name: box.dataset.name,
      direction: c.direction,
      depth: c.depth,
      columns: c.columns ? "true" : "false",
    });
    if (c.at) query.set("at", asOf(c.at));
    var mine = ++latest;
    box.setAttribute("aria-busy", "true");
    say("Loading the graph…", false);
    fetch(box.dataset.graphUrl + "?" + query.toString(), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (mine !== latest) return null;
        if (!response.ok) {
          return problem(response).then(function (text) {
            if (mine !== latest) return;
            if (cy) {
              cy.destroy();
              cy = null;
            }
            say(text, true);
          });
        }
        return response.json().then(function (graph) {
          if (mine === latest) draw(graph, !!c.columns);
        });
      })
      .catch(function () {
        if (mine === latest) say("The graph could not load (network error).", true);
      })
      .then(function () {
        if (mine === latest) box.removeAttribute("aria-busy");
      });
  }

  // htmx re-renders the lists (and cancels the submit); without htmx the browser loads the page again.
  form.addEventListener("change", refresh);
  form.addEventListener("submit", refresh);
  refresh();
})();
