/* telemetry-mcp charts: draw a tool's structured result. Presentation only: every number shown is
   one the analytics already computed; nothing here queries or aggregates events.
   TM.render(element, kind, result) draws and returns {kind, marks, labels}; every call is also
   recorded in window.__tmRendered (what the browser tests read). */
(function () {
  "use strict";
  var TM = (window.TM = window.TM || {});
  window.__tmRendered = window.__tmRendered || [];

  function css(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }
  function palette() {
    return [
      css("--tm-series-1", "#2f6fdf"), css("--tm-series-2", "#e0731c"), css("--tm-series-3", "#2a9d5b"),
      css("--tm-series-4", "#a64dc9"), css("--tm-series-5", "#c9a227"), css("--tm-series-6", "#1aa3b5"),
      css("--tm-series-7", "#d6457a"), css("--tm-series-8", "#6b7a8f"),
    ];
  }
  function colors() {
    return {
      text: css("--color-text-primary", "#1b1f24"),
      muted: css("--color-text-secondary", "#5b6673"),
      grid: css("--color-border-secondary", "#e3e6ea"),
      danger: css("--color-text-danger", "#c62828"),
      band: css("--tm-band", "rgba(47,111,223,0.16)"),
    };
  }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  var SVG = "http://www.w3.org/2000/svg";
  function sv(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function num(v, digits) {
    if (v === null || v === undefined) return "–";
    var a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
    if (a >= 100 || Number.isInteger(v)) return Math.round(v).toLocaleString("en-US");
    return v.toFixed(digits === undefined ? 1 : digits);
  }
  function pct(v) {
    return v === null || v === undefined ? "–" : (v * 100).toFixed(1) + " %";
  }
  function secs(iso) {
    return Date.parse(iso) / 1000;
  }
  function day(iso) {
    return String(iso).slice(0, 10);
  }
  function width(root) {
    return Math.max(280, Math.min(root.clientWidth || 640, 1100));
  }
  function section(root, title) {
    var box = el("section", { class: "tm-chart" });
    if (title) box.appendChild(el("h3", {}, title));
    root.appendChild(box);
    return box;
  }
  function table(root, headers, rows) {
    var t = el("table", { class: "tm-table" });
    var tr = el("tr");
    headers.forEach(function (h) { tr.appendChild(el("th", {}, h)); });
    t.appendChild(tr);
    rows.forEach(function (r) {
      var row = el("tr");
      r.forEach(function (c) { row.appendChild(el("td", {}, c)); });
      t.appendChild(row);
    });
    root.appendChild(t);
    return t;
  }

  /* ---- uPlot wrappers: every tick label drawn is recorded, so a test can read the axes ---- */
  function axes(stats, xfmt, yfmt) {
    var c = colors();
    function rec(fmt) {
      var id = "axis" + stats.axisCount++;  // the labels an axis drew last (it redraws on resize)
      return function (u, splits) {
        var out = splits.map(function (v) { return v === null ? "" : fmt(v); });
        stats.axes[id] = out.filter(Boolean);
        return out;
      };
    }
    var style = { stroke: c.muted, grid: { stroke: c.grid, width: 1 }, ticks: { stroke: c.grid, width: 1 } };
    return [
      Object.assign({}, style, { values: rec(xfmt) }),
      Object.assign({}, style, { values: rec(yfmt || function (v) { return num(v); }), size: 56 }),
    ];
  }
  function plot(box, stats, opts, data) {
    opts.width = width(box);
    opts.height = opts.height || 240;
    opts.legend = opts.legend || { show: true, live: false };
    var u = new uPlot(opts, data, box);
    stats.plots.push(u);
    return u;
  }
  function timeFmt(v) {
    return new Date(v * 1000).toISOString().slice(5, 10);
  }
  function hourFmt(v) {
    var iso = new Date(v * 1000).toISOString();
    return iso.slice(11, 13) === "00" ? iso.slice(5, 10) : iso.slice(11, 16);
  }
  function fmtFor(interval) {
    return interval === "hour" || interval === "minute" ? hourFmt : timeFmt;
  }
  function line(color, label, extra) {
    return Object.assign({ label: label, stroke: color, width: 2, points: { show: true, size: 4 } }, extra || {});
  }

  /* ---- horizontal grouped bars in SVG (categories read better down the side than under bars) ---- */
  function niceTicks(max, n) {
    if (!(max > 0)) return [0];
    var raw = max / n, mag = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / mag;
    var step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag, out = [];
    for (var v = 0; v <= max * 1.0001 + step; v += step) { out.push(v); if (v >= max) break; }
    return out;
  }
  function hbars(box, stats, keys, defs, opts) {
    opts = opts || {};
    var c = colors();
    var W = width(box), labelW = Math.min(170, W * 0.28), barH = 9, rowH = defs.length * (barH + 2) + 10;
    var plotW = W - labelW - 70, H = keys.length * rowH + 34;
    var max = 0;
    defs.forEach(function (d) { d.values.forEach(function (v) { if (v !== null && v > max) max = v; }); });
    if (opts.max) max = opts.max;
    var ticks = niceTicks(max, 5), top = ticks[ticks.length - 1] || 1, fmt = opts.fmt || num;
    function X(v) { return labelW + (v / top) * plotW; }
    var svg = sv("svg", { width: W, height: H, class: "tm-bars", role: "img" });
    ticks.forEach(function (t) {
      svg.appendChild(sv("line", { x1: X(t), x2: X(t), y1: 0, y2: H - 20, stroke: c.grid }));
      svg.appendChild(sv("text", { x: X(t), y: H - 6, fill: c.muted, "text-anchor": "middle", class: "tm-note" }, fmt(t)));
      stats.labels.push(fmt(t));
    });
    keys.forEach(function (k, i) {
      var y = i * rowH + 4;
      svg.appendChild(sv("text", { x: labelW - 6, y: y + rowH / 2, fill: opts.flag && opts.flag[i] ? c.danger : c.text,
        "text-anchor": "end", class: "tm-label" }, String(k).slice(0, 24)));
      stats.labels.push(String(k));
      defs.forEach(function (d, j) {
        var v = d.values[i];
        if (v === null || v === undefined) return;
        var r = sv("rect", { x: labelW, y: y + j * (barH + 2), width: Math.max(1, X(v) - labelW), height: barH, fill: d.color, class: "tm-mark" });
        r.appendChild(sv("title", {}, k + " " + d.label + ": " + fmt(v)));
        svg.appendChild(r);
        stats.marks += 1;
        if (j === defs.length - 1 || defs.length === 1) {
          svg.appendChild(sv("text", { x: X(v) + 4, y: y + j * (barH + 2) + barH, fill: c.muted, class: "tm-note" }, fmt(v)));
        }
      });
    });
    box.appendChild(svg);
    var legend = el("div", { class: "tm-legend" });
    defs.forEach(function (d) {
      var item = el("span", {}, d.label);
      item.style.setProperty("--swatch", d.color);
      legend.appendChild(item);
    });
    if (defs.length > 1) box.appendChild(legend);
  }

  /* ---- collect_metrics: events / errors / users over time (one line per group when grouped) ---- */
  function metrics(root, d, stats) {
    var pal = palette(), c = colors();
    var series = d.series || [];
    if (d.interval === "total" || !series.length) {
      var keys = series.map(function (r) { return r.group === null ? "all" : String(r.group); });
      var box0 = section(root, "Events by " + (d.group_by || "range"));
      hbars(box0, stats, keys, [
        { label: "events", color: pal[0], values: series.map(function (r) { return r.count; }) },
        { label: "errors", color: c.danger, values: series.map(function (r) { return r.error_count; }) },
      ]);
    } else if (d.group_by) {
      var groups = [], times = [], byKey = {};
      series.forEach(function (r) {
        var g = String(r.group), t = secs(r.bucket_start);
        if (groups.indexOf(g) < 0) groups.push(g);
        if (times.indexOf(t) < 0) times.push(t);
        byKey[g + "|" + t] = r.count;
      });
      times.sort(function (a, b) { return a - b; });
      groups = groups.slice(0, 8);
      var data = [times].concat(groups.map(function (g) {
        return times.map(function (t) { var v = byKey[g + "|" + t]; return v === undefined ? null : v; });
      }));
      var box = section(root, "Events per " + d.interval + " by " + d.group_by);
      plot(box, stats, {
        scales: { x: { time: true } }, axes: axes(stats, fmtFor(d.interval)),
        series: [{}].concat(groups.map(function (g, i) { return line(pal[i % pal.length], g); })),
      }, data);
      stats.marks += series.length;
    } else {
      var ts = series.map(function (r) { return secs(r.bucket_start); });
      var box2 = section(root, "Events per " + d.interval);
      plot(box2, stats, {
        scales: { x: { time: true } }, axes: axes(stats, fmtFor(d.interval)),
        series: [{ label: "bucket" }, line(pal[0], "events"), line(pal[2], "users"), line(c.danger, "errors")],
      }, [ts, series.map(function (r) { return r.count; }), series.map(function (r) { return r.unique_users; }),
        series.map(function (r) { return r.error_count; })]);
      stats.marks += series.length;
      var withP = series.filter(function (r) { return r.p95 !== null && r.p95 !== undefined; });
      if (withP.length) {
        var box3 = section(root, (d.metric || "duration_ms") + " p50 / p95 (" + (d.unit || "") + ")");
        plot(box3, stats, {
          height: 180, scales: { x: { time: true } }, axes: axes(stats, fmtFor(d.interval)),
          series: [{}, line(pal[1], "p50"), line(pal[3], "p95")],
        }, [withP.map(function (r) { return secs(r.bucket_start); }), withP.map(function (r) { return r.p50; }),
          withP.map(function (r) { return r.p95; })]);
      }
    }
    if (d.components && d.components.length) {
      var box4 = section(root, "Components");
      table(box4, ["component", "events", "loads", "errors", "avg load ms", "users"], d.components.slice(0, 10).map(function (r) {
        return [r.component, num(r.events), num(r.loads), num(r.errors), num(r.avg_load_ms), num(r.unique_users)];
      }));
    }
  }

  /* ---- analyze_performance: p50/p95/p99 per group; regressions baseline vs candidate p95 ---- */
  function performance(root, d, stats) {
    var pal = palette(), c = colors();
    var groups = (d.groups || []).slice(0, 15);
    var keys = groups.map(function (g) { return g.key; });
    var unit = d.unit ? " (" + d.unit + ")" : "";
    var box = section(root, d.metric + " percentiles by " + d.group_by + unit +
      (d.direction === "higher_is_better" ? " — higher is better" : ""));
    hbars(box, stats, keys, [
      { label: "p50", color: pal[0], values: groups.map(function (g) { return g.p50; }) },
      { label: "p95", color: pal[1], values: groups.map(function (g) { return g.p95; }) },
      { label: "p99", color: pal[3], values: groups.map(function (g) { return g.p99; }) },
    ]);
    var regs = (d.regressions || []).slice(0, 15);
    if (regs.length) {
      var cmp = d.compare || {};
      var box2 = section(root, "p95 " + (cmp.baseline || "baseline") + " → " + (cmp.candidate || "candidate") + " (regressed: " +
        regs.filter(function (r) { return r.regressed; }).length + " of " + regs.length + ")");
      hbars(box2, stats, regs.map(function (r) { return (r.regressed ? "▲ " : "") + r.key; }), [
        { label: "baseline p95", color: pal[7], values: regs.map(function (r) { return r.baseline_p95; }) },
        { label: "candidate p95", color: c.danger, values: regs.map(function (r) { return r.candidate_p95; }) },
      ], { flag: regs.map(function (r) { return r.regressed; }) });
      table(box2, ["group", "baseline p95", "candidate p95", "change", "regressed"], regs.map(function (r) {
        return [r.key, num(r.baseline_p95), num(r.candidate_p95), r.change_pct === null ? "–" : r.change_pct.toFixed(1) + " %", r.regressed ? "yes" : "no"];
      }));
    }
  }

  /* ---- funnel (and dropoff): one bar per step, width = users, with the drop-off between steps ---- */
  function funnel(root, d, stats) {
    var pal = palette(), c = colors();
    var steps = d.steps || [];
    var box = section(root, "Funnel — overall conversion " + pct(d.overall_conversion));
    var W = width(box), rowH = 46, labelW = Math.min(220, W * 0.32), barW = W - labelW - 110;
    var svg = sv("svg", { width: W, height: steps.length * rowH + 8, class: "tm-funnel", role: "img" });
    var top = steps.length ? steps[0].users || 1 : 1;
    steps.forEach(function (s, i) {
      var y = i * rowH + 4, w = Math.max(2, (barW * (s.users || 0)) / top);
      svg.appendChild(sv("text", { x: 0, y: y + 18, fill: c.text, class: "tm-label" }, (i + 1) + ". " + s.label));
      svg.appendChild(sv("rect", { x: labelW, y: y + 4, width: w, height: 22, rx: 3, fill: pal[0], class: "tm-mark" }));
      svg.appendChild(sv("text", { x: labelW + w + 6, y: y + 20, fill: c.text, class: "tm-label" },
        num(s.users) + " · " + pct(s.conversion_from_start)));
      if (i > 0 && s.dropoff) {
        svg.appendChild(sv("text", { x: labelW, y: y + 40, fill: c.danger, class: "tm-note" },
          "−" + num(s.dropoff) + " (" + pct(1 - (s.conversion_from_previous || 0)) + " lost from step " + i + ")"));
      }
    });
    box.appendChild(svg);
    stats.marks += steps.length;
    stats.labels = stats.labels.concat(steps.map(function (s) { return s.label; }));
    var who = d.dropoff || d.dropoffs || null;
    if (Array.isArray(who) && who.length) {
      var box2 = section(root, "What those who stopped did next");
      table(box2, ["stopped at", "users", "next events"], who.map(function (r) {
        var next = (r.next_events || r.top_next || []).slice(0, 3).map(function (n) {
          return (n.event || n.event_type || n.label || "") + (n.name ? " " + n.name : "") + " (" + num(n.users || n.count) + ")";
        }).join(", ");
        return [r.label || String(r.step), num(r.users || r.stopped), next];
      }));
    }
  }

  /* ---- retention: the cohort triangle, cell shade = rate ---- */
  function retention(root, d, stats) {
    var cohorts = d.cohorts || [];
    var n = cohorts.reduce(function (m, r) { return Math.max(m, (r.rates || []).length); }, 0);
    var box = section(root, "Retention by " + (d.retention_period || "period") + " cohort");
    var t = el("table", { class: "tm-table tm-triangle" });
    var head = el("tr");
    ["cohort", "size"].concat(Array.from({ length: n }, function (_, i) { return String(i); })).forEach(function (h) {
      head.appendChild(el("th", {}, h));
    });
    t.appendChild(head);
    function row(label, size, rates) {
      var tr = el("tr");
      tr.appendChild(el("td", {}, label));
      tr.appendChild(el("td", {}, size));
      for (var i = 0; i < n; i++) {
        var r = rates[i];
        var td = el("td", { class: r === undefined || r === null ? "tm-empty" : "tm-cell tm-mark" }, r === undefined || r === null ? "" : pct(r));
        if (r !== undefined && r !== null) td.style.setProperty("--rate", String(r));
        tr.appendChild(td);
        if (r !== undefined && r !== null) stats.marks += 1;
      }
      t.appendChild(tr);
    }
    cohorts.forEach(function (r) { row(day(r.cohort_start), num(r.size), r.rates || []); });
    if (d.average_rates) row("average", "", d.average_rates);
    box.appendChild(t);
    stats.labels = stats.labels.concat(cohorts.map(function (r) { return day(r.cohort_start); }));
  }

  /* ---- journeys: a flow (sankey-like) of the transitions, columns = steps ---- */
  function journeys(root, d, stats) {
    var pal = palette(), c = colors();
    var tr = d.transitions || [];
    var box = section(root, "Journeys by " + (d.journey_node || "node") + " — " + num(d.journey_sessions) + " sessions");
    var cols = {}, maxCol = 0;
    function node(col, name) {
      var key = col + "|" + name;
      cols[col] = cols[col] || {};
      if (!cols[col][key]) cols[col][key] = { key: key, name: name, col: col, inn: 0, out: 0 };
      maxCol = Math.max(maxCol, col);
      return cols[col][key];
    }
    tr.forEach(function (t) {
      var a = node(t.step - 1, t.source), b = node(t.step, t.target);
      a.out += t.count; b.inn += t.count;
    });
    var W = width(box), H = 300, colW = 120, gap = 8;
    var step = maxCol > 0 ? (W - colW) / maxCol : 0;
    var total = 0;
    Object.keys(cols).forEach(function (k) {
      var sum = 0;
      Object.values(cols[k]).forEach(function (n) { sum += Math.max(n.inn, n.out); });
      total = Math.max(total, sum + gap * Object.keys(cols[k]).length);
    });
    var scale = total ? (H - 20) / total : 1;
    var svg = sv("svg", { width: W, height: H, class: "tm-flow", role: "img" });
    var names = [];
    Object.keys(cols).forEach(function (k) {
      var y = 4;
      Object.values(cols[k]).sort(function (a, b) { return Math.max(b.inn, b.out) - Math.max(a.inn, a.out); }).forEach(function (n) {
        n.h = Math.max(3, Math.max(n.inn, n.out) * scale);
        n.x = n.col * step; n.y = y; n.inY = y; n.outY = y; y += n.h + gap;
        if (names.indexOf(n.name) < 0) names.push(n.name);
      });
    });
    tr.slice().sort(function (a, b) { return b.count - a.count; }).forEach(function (t) {
      var a = cols[t.step - 1][(t.step - 1) + "|" + t.source], b = cols[t.step][t.step + "|" + t.target];
      var w = Math.max(1, t.count * scale), x0 = a.x + 10, x1 = b.x, y0 = a.outY + w / 2, y1 = b.inY + w / 2;
      a.outY += w; b.inY += w;
      var color = pal[names.indexOf(t.source) % pal.length];
      var p = sv("path", {
        d: "M" + x0 + "," + y0 + " C" + (x0 + x1) / 2 + "," + y0 + " " + (x0 + x1) / 2 + "," + y1 + " " + x1 + "," + y1,
        stroke: color, "stroke-width": w, fill: "none", "stroke-opacity": 0.45, class: "tm-mark",
      });
      p.appendChild(sv("title", {}, t.source + " → " + t.target + ": " + t.count));
      svg.appendChild(p);
      stats.marks += 1;
    });
    Object.keys(cols).forEach(function (k) {
      Object.values(cols[k]).forEach(function (n) {
        svg.appendChild(sv("rect", { x: n.x, y: n.y, width: 10, height: n.h, fill: pal[names.indexOf(n.name) % pal.length] }));
        svg.appendChild(sv("text", { x: n.x + 14, y: n.y + Math.min(n.h / 2 + 4, n.h + 10), fill: c.text, class: "tm-label" }, n.name));
        stats.labels.push(n.name);
      });
    });
    box.appendChild(svg);
    if ((d.paths || []).length) {
      table(section(root, "Top paths"), ["path", "sessions"], d.paths.slice(0, 8).map(function (p) {
        return [p.nodes.join(" → "), num(p.count)];
      }));
    }
  }

  /* ---- engagement: DAU / WAU / MAU per period ---- */
  function engagement(root, d, stats) {
    var pal = palette();
    var rows = d.engagement || [];
    var box = section(root, "Active users per " + (d.engagement_period || "period"));
    plot(box, stats, {
      scales: { x: { time: true } }, axes: axes(stats, timeFmt),
      series: [{}, line(pal[0], "DAU (mean)"), line(pal[1], "WAU"), line(pal[2], "MAU")],
    }, [rows.map(function (r) { return secs(r.period_start); }), rows.map(function (r) { return r.dau; }),
      rows.map(function (r) { return r.wau; }), rows.map(function (r) { return r.mau; })]);
    stats.marks += rows.length * 3;
  }

  /* ---- milestones: share reaching each milestone and its median time ---- */
  function milestones(root, d, stats) {
    var pal = palette();
    var ms = d.milestones || [];
    var keys = ms.map(function (m) { return m.label; });
    var box = section(root, "Milestones — efficiency " + (d.efficiency_score === null || d.efficiency_score === undefined ? "–" : d.efficiency_score));
    hbars(box, stats, keys, [{ label: "share reached", color: pal[0], values: ms.map(function (m) { return m.share; }) }],
      { max: 1, fmt: pct });
    table(box, ["milestone", "actors", "median s", "p90 s"], ms.map(function (m) {
      return [m.label, num(m.actors), num(m.median_seconds, 2), num(m.p90_seconds, 2)];
    }));
  }

  function behavior(root, d, stats) {
    var a = d.analysis;
    if (a === "funnel" || a === "dropoff") return funnel(root, d, stats);
    if (a === "retention") return retention(root, d, stats);
    if (a === "journeys") return journeys(root, d, stats);
    if (a === "engagement") return engagement(root, d, stats);
    if (a === "milestones") return milestones(root, d, stats);
  }

  /* ---- analyze_feature_adoption: adoption rate per period, one line per feature ---- */
  function adoption(root, d, stats) {
    var pal = palette();
    var feats = (d.features || []).slice(0, 8);
    var times = (d.periods || []).map(function (p) { return secs(p.period_start); });
    var box = section(root, "Adoption per " + d.period + " (share of active users)");
    var data = [times].concat(feats.map(function (f) {
      var by = {};
      (f.series || []).forEach(function (s) { by[secs(s.period_start)] = s.adoption_rate; });
      return times.map(function (t) { return by[t] === undefined ? null : by[t]; });
    }));
    plot(box, stats, {
      height: 260, scales: { x: { time: true }, y: { range: [0, 1] } }, axes: axes(stats, timeFmt, pct),
      series: [{}].concat(feats.map(function (f, i) {
        return line(pal[i % pal.length], f.feature + (f.trend === "up" ? " ↑" : f.trend === "down" ? " ↓" : ""),
          f.deprecation_candidate ? { dash: [6, 4] } : {});
      })),
    }, data);
    stats.marks += feats.length;
    table(box, ["feature", "users", "adoption", "trend", "deprecation?"], feats.map(function (f) {
      return [f.feature, num(f.users), pct(f.adoption_rate), f.trend + (f.trend_change_pct === null ? "" : " (" + f.trend_change_pct + " %)"),
        f.deprecation_candidate ? "candidate" : ""];
    }));
  }

  /* ---- detect_anomalies: each anomaly against its expected band ---- */
  function anomalies(root, d, stats) {
    var c = colors(), pal = palette();
    var list = d.anomalies || [];
    var box = section(root, list.length + " anomal" + (list.length === 1 ? "y" : "ies") + " in " + d.metric + (d.stat ? " " + d.stat : ""));
    var W = width(box), rowH = 34, labelW = Math.min(260, W * 0.38), plotW = W - labelW - 90;
    var svg = sv("svg", { width: W, height: Math.max(1, list.length) * rowH + 20, class: "tm-bands", role: "img" });
    list.forEach(function (a, i) {
      var lo = Math.min(a.lower, a.observed, a.expected), hi = Math.max(a.upper, a.observed, a.expected);
      var pad = (hi - lo) * 0.1 || 1;
      lo -= pad; hi += pad;
      function X(v) { return labelW + ((v - lo) / (hi - lo)) * plotW; }
      var y = i * rowH + 6;
      svg.appendChild(sv("text", { x: 0, y: y + 15, fill: c.text, class: "tm-label" },
        (a.group ? a.group + " · " : "") + day(a.bucket_start) + (a.buckets > 1 ? " (" + a.buckets + ")" : "")));
      svg.appendChild(sv("rect", { x: X(a.lower), y: y + 3, width: Math.max(1, X(a.upper) - X(a.lower)), height: 16, fill: c.band, class: "tm-band" }));
      svg.appendChild(sv("line", { x1: X(a.expected), x2: X(a.expected), y1: y, y2: y + 22, stroke: pal[0], "stroke-width": 2 }));
      svg.appendChild(sv("circle", { cx: X(a.observed), cy: y + 11, r: 5, fill: c.danger, class: "tm-mark" }));
      svg.appendChild(sv("text", { x: labelW + plotW + 8, y: y + 15, fill: c.muted, class: "tm-note" },
        num(a.observed) + " vs " + num(a.expected)));
      stats.marks += 1;
      stats.labels.push(day(a.bucket_start));
    });
    if (!list.length) svg.appendChild(sv("text", { x: 0, y: 14, fill: c.muted, class: "tm-note" }, "no anomaly in range"));
    box.appendChild(svg);
    if ((d.new_errors || []).length) {
      table(section(root, "New errors"), ["name", "component", "first seen", "count", "users"], d.new_errors.slice(0, 8).map(function (e) {
        return [e.name, e.component || "", day(e.first_seen), num(e.count), num(e.users)];
      }));
    }
  }

  var KINDS = { metrics: metrics, performance: performance, behavior: behavior, funnel: funnel, retention: retention,
    journeys: journeys, adoption: adoption, anomalies: anomalies, engagement: engagement, milestones: milestones };
  TM.kinds = Object.keys(KINDS);
  TM.fmt = { num: num, pct: pct, day: day };
  TM.el = el;
  TM.table = table;
  TM.section = section;
  TM.plot = plot;
  TM.axes = axes;
  TM.line = line;
  TM.hbars = hbars;
  TM.palette = palette;
  TM.timeFmt = fmtFor;

  /** Draw `result` (a tool's structuredContent) of `kind` into `root`; returns what was drawn. */
  TM.render = function (root, kind, result) {
    var stats = { kind: kind, marks: 0, labels: [], plots: [], axes: {}, axisCount: 0 };
    root.textContent = "";
    if (result && result.summary) root.appendChild(el("p", { class: "tm-summary" }, result.summary));
    var draw = KINDS[kind];
    if (!draw) throw new Error("unknown view kind " + kind);
    draw(root, result || {}, stats);
    var out = {
      kind: kind, analysis: result && result.analysis, marks: stats.marks, plots: stats.plots.length,
      get labels() {
        return Object.keys(stats.axes).reduce(function (all, k) { return all.concat(stats.axes[k]); }, stats.labels.slice());
      },
    };
    window.__tmRendered.push(out);
    return out;
  };
})();
