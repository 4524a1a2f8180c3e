// gapbench viewer: the prompt table (filter, sort, pages) and each prompt's samples, decoded when opened.
// Every text from a run is put on the page with textContent, never as HTML.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("gb-data").textContent);
  var runs = data.runs, rows = data.rows, PAGE = 50;
  var state = { verifier: "", group: "", outcome: "", text: "", sort: null, desc: false, page: 0, open: {} };
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function f3(x) { return x === null || x === undefined ? "n/a" : (Math.round(x * 1000) / 1000).toFixed(3); }

  rows.forEach(function (r, i) {
    r.i = i;
    r.search = [r.id, r.q, r.t, r.ans].join(" ").toLowerCase();
    r.flipped = r.flip.some(function (f) { return f !== 0; });
    r.differs = (r.pd || []).some(function (x) { return x; });
  });

  var methods = [];
  runs.forEach(function (run) { run.methods.forEach(function (m) { if (methods.indexOf(m) < 0) methods.push(m); }); });
  methods.forEach(function (m) { var o = el("option", m); o.value = m; $("f-verifier").appendChild(o); });
  state.verifier = methods[0] || "";
  var groups = [];
  data.groupKeys.forEach(function (k) {
    var seen = {};
    rows.forEach(function (r) { var v = r.grp[k]; if (v !== undefined && !seen[v]) { seen[v] = 1; groups.push([k, v]); } });
  });
  groups.forEach(function (kv) { var o = el("option", kv[0] + " = " + kv[1]); o.value = kv[0] + "\u0000" + kv[1]; $("f-group").appendChild(o); });
  if (!groups.length) $("f-group").parentNode.style.display = "none";

  function num(r, k, field) {
    var x = r.r[k];
    if (field === "J") return x.J;
    var v = x[field][state.verifier];
    return v === undefined ? null : v;
  }
  var columns = [
    { name: "doc", key: function (r) { return r.id; } },
    { name: "question", key: function (r) { return r.q; } }
  ];
  if (data.groupKeys.length) columns.push({ name: data.groupKeys.join(", "), key: function (r) { return data.groupKeys.map(function (k) { return r.grp[k]; }).join(" "); } });
  runs.forEach(function (run, k) {
    var tag = runs.length > 1 ? " [" + (k + 1) + "]" : "";
    columns.push({ name: "J(f|x)" + tag, key: function (r) { return num(r, k, "J"); }, num: true });
    columns.push({ name: "J(f[w]|x)" + tag, key: function (r) { return num(r, k, "w"); }, num: true });
    columns.push({ name: "kept-wrong" + tag, key: function (r) { return num(r, k, "kw"); }, count: true });
    columns.push({ name: "dropped-right" + tag, key: function (r) { return num(r, k, "dr"); }, count: true });
  });
  if (runs.length > 1) columns.push({ name: "flip", key: function (r) { return r.flipped ? 0 : 1; }, show: function (r) {
    return r.flip.map(function (f) { return f > 0 ? "\u2197" : f < 0 ? "\u2198" : "\u00b7"; }).join(" "); } });

  function visible() {
    var out = rows.filter(function (r) {
      if (state.group) { var kv = state.group.split("\u0000"); if (String(r.grp[kv[0]]) !== kv[1]) return false; }
      if (state.outcome === "flip" && !r.flipped) return false;
      if (state.outcome === "pd" && !r.differs) return false;
      if (state.outcome === "kw" || state.outcome === "dr") {
        var any = false;
        for (var k = 0; k < runs.length; k++) if ((num(r, k, state.outcome) || 0) > 0) any = true;
        if (!any) return false;
      }
      return !state.text || r.search.indexOf(state.text) >= 0;
    });
    if (state.sort !== null) {
      var c = columns[state.sort], sign = state.desc ? -1 : 1;
      out.sort(function (a, b) {
        var x = c.key(a), y = c.key(b);
        if (x === y) return a.i - b.i;
        if (x === null) return 1;
        if (y === null) return -1;
        return (x < y ? -1 : 1) * sign;
      });
    } else if (runs.length > 1) {
      out.sort(function (a, b) { return (b.flipped - a.flipped) || (a.i - b.i); });
    }
    return out;
  }

  function head() {
    var tr = el("tr");
    columns.forEach(function (c, j) {
      var th = el("th", c.name + (state.sort === j ? (state.desc ? " \u25bc" : " \u25b2") : ""));
      th.className = "sortable";
      th.addEventListener("click", function () {
        if (state.sort === j) state.desc = !state.desc; else { state.sort = j; state.desc = false; }
        state.page = 0; draw();
      });
      tr.appendChild(th);
    });
    var thead = document.querySelector("#prompts thead");
    thead.textContent = "";
    thead.appendChild(tr);
  }

  function draw() {
    head();
    var list = visible(), pages = Math.max(1, Math.ceil(list.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    var body = document.querySelector("#prompts tbody");
    body.textContent = "";
    list.slice(state.page * PAGE, (state.page + 1) * PAGE).forEach(function (r) {
      var tr = el("tr", null, "prompt" + (r.flipped ? " flipped" : "") + (r.differs ? " pdiff" : ""));
      tr.dataset.doc = r.id;
      columns.forEach(function (c) {
        var v = c.show ? c.show(r) : c.key(r);
        var td = el("td", c.num ? f3(v) : (v === null ? "n/a" : v), c.num || c.count ? "n" : (c.name === "question" ? "q" : ""));
        tr.appendChild(td);
      });
      tr.addEventListener("click", function () { toggle(r, tr); });
      body.appendChild(tr);
      if (state.open[r.i]) toggle(r, tr, true);
    });
    $("count").textContent = list.length + " of " + rows.length + " prompts";
    $("page").textContent = "page " + (state.page + 1) + " of " + pages;
    $("prev").disabled = state.page === 0;
    $("next").disabled = state.page >= pages - 1;
  }

  function unpack(id) {
    var text = document.getElementById(id).textContent, bin = atob(text), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text().then(JSON.parse);
  }

  function toggle(r, tr, reopen) {
    var next = tr.nextSibling;
    if (!reopen && next && next.classList && next.classList.contains("detail")) {
      next.parentNode.removeChild(next); delete state.open[r.i]; return;
    }
    state.open[r.i] = true;
    var dtr = el("tr", null, "detail"), td = el("td");
    td.colSpan = columns.length;
    dtr.appendChild(td);
    tr.parentNode.insertBefore(dtr, tr.nextSibling);
    var q = el("div", null, "question");
    q.appendChild(el("h4", "Question " + r.id));
    q.appendChild(el("pre", r.q || "(not available)"));
    q.appendChild(el("p", "Reference answer: " + (r.t || "(not available)")));
    td.appendChild(q);
    var grid = el("div", null, "side");
    td.appendChild(grid);
    runs.forEach(function (run, k) {
      var col = el("div", null, "runcol");
      grid.appendChild(col);
      if (runs.length > 1) col.appendChild(el("h4", "Run " + (k + 1) + ": " + run.label));
      unpack("d" + k + "-" + r.i).then(function (d) {
        if (d.gp) col.appendChild(generationPrompt(run, d.gp));
        else col.appendChild(el("p", "Prompts not shown: " + (run.pnote || "not rebuilt for this prompt") + ".", "note"));
        var byHead = {}, order = [];
        run.methods.forEach(function (m) {
          var h = run.vhead[m];
          if (h === undefined || h < 0) return;
          if (!byHead[h]) { byHead[h] = []; order.push(h); }
          byHead[h].push(m);
        });
        order.forEach(function (h) { col.appendChild(headBlock(run, h, byHead[h].join(", ") + " verification prompts: the few-shot head they all start with")); });
        col.appendChild(samples(run, d));
        Object.keys(d.tp || {}).forEach(function (m) {
          var det = el("details", null, "prompt-list");
          det.appendChild(el("summary", m + ": " + d.tp[m].length + " verification prompt" + (d.tp[m].length > 1 ? "s" : "") + " of pairs of samples" + (d.tp[m].some(function (p) { return p.st === "differs"; }) ? " (some DIFFER from what the model read)" : "")));
          d.tp[m].forEach(function (p) { det.appendChild(verificationPrompt(run, m, p, "prompt")); });
          col.appendChild(det);
        });
      }).catch(function (e) {
        col.appendChild(el("p", "could not decode this prompt's samples: " + e, "note"));
      });
    });
  }

  var STATUS = {
    ok: "\u2713 the text the model read (its digest matches the one the run stored)",
    differs: "\u2717 DIFFERS from the text the model read",
    unchecked: "not checked: the run stored no digest of this prompt"
  };
  function statusText(p) {
    var t = STATUS[p.st] || String(p.st);
    if (p.st === "differs") t += " (stored digest " + p.was + ", this text " + p.now + "): what is shown is today's prompt, not the one the model saw";
    return t;
  }
  function headBlock(run, h, label) {
    var det = el("details", null, "head");
    det.appendChild(el("summary", label + " (" + run.heads[h].length + " characters)"));
    det.appendChild(el("pre", run.heads[h]));
    return det;
  }
  function generationPrompt(run, p) {
    var box = el("div", null, "prompt gen " + p.st);
    box.appendChild(el("h4", "Generation prompt"));
    box.appendChild(el("div", statusText(p), "status"));
    if (p.h >= 0) box.appendChild(headBlock(run, p.h, "few-shot head"));
    box.appendChild(el("pre", p.t, "tail"));
    return box;
  }
  function verificationPrompt(run, m, p, label) {
    var det = el("details", null, "prompt ver " + p.st);
    det.dataset.method = m;
    det.appendChild(el("summary", label + " " + (p.st === "ok" ? "\u2713" : p.st === "differs" ? "\u2717 DIFFERS from what the model read" : "(not checked)")));
    det.appendChild(el("div", statusText(p), "status"));
    if (p.k) det.appendChild(el("div", "request" + (p.k.length > 1 ? "s " : " ") + p.k.join(", "), "tag"));
    if (p.h >= 0) det.appendChild(el("div", "after the " + m + " few-shot head shown above the samples:", "tag"));
    det.appendChild(el("pre", p.t, "tail"));
    return det;
  }

  function replyItem(it) {
    var li = el("li");
    if (it.round !== undefined) {
      li.textContent = "round " + it.round + " vs #" + it.vs + ": P(this one) = " + f3(it.p) + (it.won ? ", won" : ", lost");
    } else if (it.text !== undefined) {
      li.appendChild(el("span", "[" + it.key + "] read: " + (it.read === null || it.read === undefined ? "unparsed" : f3(it.read)), "tag"));
      li.appendChild(el("pre", it.text));
    } else {
      li.textContent = it.key + ": log-probability " + f3(it.logprob);
    }
    return li;
  }

  function samples(run, d) {
    var table = el("table", null, "samples"), tr = el("tr");
    ["#", "response", "answer", "g"].concat(run.methods.map(function (m) { return "u " + m; })).forEach(function (h) { tr.appendChild(el("th", h)); });
    var thead = el("thead"); thead.appendChild(tr); table.appendChild(thead);
    var body = el("tbody");
    d.s.forEach(function (s, i) {
      var row = el("tr", null, s.g ? "right" : "wrong");
      row.appendChild(el("td", i));
      var resp = el("td", null, "resp"); resp.appendChild(el("pre", s.y)); row.appendChild(resp);
      row.appendChild(el("td", s.a === null ? "(none)" : s.a));
      row.appendChild(el("td", s.g, "n"));
      run.methods.forEach(function (m) {
        var cell = el("td", null, "verdict " + (s.k[m] ? "kept" : "dropped"));
        cell.appendChild(el("div", f3(s.u[m]) + (s.k[m] ? " kept" : " dropped")));
        var items = s.v[m] || [];
        if (items.length || (s.d && s.d[m])) {
          var det = el("details"), sum = el("summary", items.length ? items.length + " repl" + (items.length > 1 ? "ies" : "y") : "detail");
          det.appendChild(sum);
          var ul = el("ul");
          items.forEach(function (it) { ul.appendChild(replyItem(it)); });
          if (s.d && s.d[m]) ul.appendChild(el("li", Object.keys(s.d[m]).map(function (k) { return k + " " + s.d[m][k]; }).join(", ")));
          det.appendChild(ul);
          cell.appendChild(det);
        }
        ((s.vp && s.vp[m]) || []).forEach(function (p) { cell.appendChild(verificationPrompt(run, m, p, "prompt")); });
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
    table.appendChild(body);
    return table;
  }

  $("f-verifier").addEventListener("change", function (e) { state.verifier = e.target.value; state.page = 0; draw(); });
  $("f-group").addEventListener("change", function (e) { state.group = e.target.value; state.page = 0; draw(); });
  $("f-outcome").addEventListener("change", function (e) { state.outcome = e.target.value; state.page = 0; draw(); });
  $("f-text").addEventListener("input", function (e) { state.text = e.target.value.trim().toLowerCase(); state.page = 0; draw(); });
  $("prev").addEventListener("click", function () { state.page--; draw(); });
  $("next").addEventListener("click", function () { state.page++; draw(); });
  draw();
  document.body.dataset.ready = "1";
})();
