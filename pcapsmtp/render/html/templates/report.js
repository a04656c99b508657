/* pcapsmtp report: builds the conversation list from the embedded JSON and draws a ladder
   diagram when a conversation is opened. Every string from a capture goes through
   textContent or setAttribute, never through innerHTML. */
(function () {
  "use strict";
  var SVGNS = "http://www.w3.org/2000/svg";
  var T0 = performance.now();
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var ROWS = [];
  var SHARED = D.shared || {cm: [], x: []};
  function lineText(r) { return typeof r[2] === "number" ? SHARED.t[r[2]] : r[2]; }
  function shared(key, v) { return typeof v === "number" ? SHARED[key][v] : v; }
  function verdictText(c) {
    var who = c.cb === "none" ? "nobody" : (c.cb === "unknown" ? "unknown" : "the " + c.cb);
    return c.o + ", caused by " + who + " (" + c.r + (c.ca ? ", case " + c.ca : "") + ")" + (c.de ? ": " + c.de : "");
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) { for (var k in attrs) { if (attrs[k] !== null && attrs[k] !== undefined) { e.setAttribute(k, attrs[k]); } } }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function sv(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    if (attrs) { for (var k in attrs) { if (attrs[k] !== null && attrs[k] !== undefined) { e.setAttribute(k, attrs[k]); } } }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  /* a rotated set: the file (its name) holding a frame, by index in D.files */
  function fileName(k) {
    var f = (k === null || k === undefined) ? null : (D.files || [])[k];
    if (!f || f.path === null || f.path === undefined) { return null; }
    var p = String(f.path);
    return p.slice(Math.max(p.lastIndexOf("/"), p.lastIndexOf("\\")) + 1);
  }
  function frameRef(n, k) { var fn = fileName(k); return "frame " + n + (fn ? " of " + fn : ""); }
  function chip(o) { return el("span", {"class": "chip o-" + o}, o); }
  function cut(s, n) { s = String(s); return s.length > n ? s.slice(0, Math.max(n - 1, 1)) + "\u2026" : s; }
  function wrap(s, n) {
    var words = String(s).split(" "), lines = [], cur = "";
    for (var i = 0; i < words.length; i++) {
      var w = words[i];
      while (w.length > n) { if (cur) { lines.push(cur); cur = ""; } lines.push(w.slice(0, n)); w = w.slice(n); }
      if (!cur) { cur = w; } else if ((cur + " " + w).length <= n) { cur += " " + w; } else { lines.push(cur); cur = w; }
    }
    if (cur) { lines.push(cur); }
    return lines;
  }
  function fmtMs(ms) {
    if (ms === null || ms === undefined) { return ""; }
    if (ms < 1000) { return "+" + ms.toFixed(ms < 10 ? 1 : 0) + " ms"; }
    return "+" + (ms / 1000).toFixed(ms < 10000 ? 3 : 1) + " s";
  }

  /* ------------------------------------------------------------------ the ladder diagram */

  /* conv.L rows: [frame, side, text, ms, kind, marks, verdict, diffKind?]
     opts: {left, right, leftSub, rightSub, mid (label of a middlebox lifeline), width} */
  function ladder(conv, opts) {
    var W = opts.width || 1000, ROW = 24, TOP = 64;
    var xL = opts.narrow ? 140 : 170, xR = W - (opts.narrow ? 125 : 200);
    var xM = opts.mid ? Math.round((xL + xR) / 2) : null;
    var charW = 7.6;
    var L = conv.L || [], LF = conv.lf || null, curFile = null;
    var svg = sv("svg", {"class": "ladder", "xmlns": SVGNS, "width": W, "role": "img",
                         "data-stream": conv.s, "data-lines": L.length});
    var gBand = sv("g", {"class": "bands"}), gLife = sv("g", {"class": "lifelines"}), gRows = sv("g", {"class": "rows"});
    svg.appendChild(gBand); svg.appendChild(gLife); svg.appendChild(gRows);
    var y = TOP + 12, rowsY = [], guiltyIdx = -1;
    var boxX = xM !== null ? xM : null;

    function head(x, title, sub, cls) {
      var w = opts.narrow ? 210 : 250;
      var hg = sv("g", {"class": "headg"});
      hg.appendChild(sv("title", null, title + (sub ? "\n" + sub : "")));
      hg.appendChild(sv("rect", {"class": "head " + cls, x: x - w / 2, y: 6, width: w, height: 42, rx: 5}));
      hg.appendChild(sv("text", {"class": "head-t", x: x, y: 24, "text-anchor": "middle"}, cut(title, 34)));
      if (sub) { hg.appendChild(sv("text", {"class": "head-s", x: x, y: 40, "text-anchor": "middle"}, cut(sub, 36))); }
      gLife.appendChild(hg);
    }
    function arrowTip(g, x, yy, dir, cls) {
      var p = dir > 0 ? [x, yy, x - 10, yy - 5, x - 10, yy + 5] : [x, yy, x + 10, yy - 5, x + 10, yy + 5];
      g.appendChild(sv("polygon", {"class": "tip " + cls, points: p.join(" ")}));
    }

    for (var gi = 0; gi < L.length; gi++) { if (L[gi][6] === 1) { guiltyIdx = gi; break; } }
    // the consequence: where the dialogue went on in plaintext (or in TLS)
    var bandFrom = -1, bandText = "", bandCls = "", bandY = 0;
    if (conv.o === "plaintext") {
      for (var b = guiltyIdx >= 0 ? guiltyIdx + 1 : 0; b < L.length; b++) {
        if ((L[b][1] === "C" && L[b][4] === "smtp" && /^(MAIL|RCPT|DATA|BDAT|AUTH)/i.test(lineText(L[b]))) || L[b][4] === "body") { bandFrom = b; break; }
      }
      if (bandFrom >= 0) {
        bandCls = "plain";
        bandText = conv.rq ? "\u25BC the mail goes on in plaintext" :
          (guiltyIdx >= 0 ? "\u25BC so the client never sends STARTTLS: the mail goes on in plaintext" :
           "\u25BC the client never sends STARTTLS: the mail goes on in plaintext");
      }
    } else if (conv.o === "tls") {
      for (var b2 = 0; b2 < L.length; b2++) { if (L[b2][4] === "tls") { bandFrom = b2; break; } }
      if (bandFrom >= 0) { bandCls = "tls"; bandText = "\u25BC encrypted from here (TLS)"; }
    }
    for (var i = 0; i < L.length; i++) {
      var fk = LF ? LF[i] : null;
      if (fk !== null && fk !== undefined && fk !== curFile && fileName(fk)) {
        // a rotated set: a heading names the file of the frames below it
        curFile = fk;
        var fh = sv("g", {"class": "file-sep", "data-file": fileName(fk)});
        fh.appendChild(sv("line", {"class": "file-sep-l", x1: 4, y1: y - 12, x2: W - 4, y2: y - 12}));
        fh.appendChild(sv("text", {"class": "file-sep-t", x: 8, y: y + 2}, "file " + cut(fileName(fk), 110)));
        gRows.appendChild(fh);
        y += 22;
      }
      if (i === bandFrom) {
        bandY = y - 16;
        var bls = wrap(bandText, Math.floor((xR - xL) / 7.4));
        for (var bq = 0; bq < bls.length; bq++) {
          gRows.appendChild(sv("text", {"class": "band-t " + bandCls, x: (xL + xR) / 2, y: y + 1,
                                        "text-anchor": "middle"}, bls[bq]));
          y += bq + 1 < bls.length ? 16 : 22;
        }
      }
      var r = L[i], frame = r[0], fref = frame !== null ? frameRef(frame, fk) : null, side = r[1], text = lineText(r), ms = r[3], kind = r[4], marks = r[5] || [],
          verdict = r[6], diffKind = r[7] || "";
      var okCls = conv.cb === "none" ? " evidence-ok" : " evidence-unk";
      var g = sv("g", {"class": "row " + kind + (verdict === 1 ? " guilty" : (verdict === 2 ? okCls : (marks.length ? " marked" : ""))),
                       "data-frame": frame === null ? "" : frame, "data-side": side,
                       "data-file": LF && frame !== null ? fileName(fk) : null});
      if (verdict === 1) { g.setAttribute("data-guilty", "1"); }
      if (verdict === 2) { g.setAttribute("data-evidence", "1"); }
      if (diffKind) { g.setAttribute("data-changed", diffKind); g.classList.add("changed"); }
      var from = side === "C" ? xL : xR, to = side === "C" ? xR : xL;
      var dir = to > from ? 1 : -1;
      rowsY.push(y);
      if (diffKind) {
        g.appendChild(sv("rect", {"class": "changed-band", x: 4, y: y - ROW + 6, width: W - 8, height: ROW}));
        g.appendChild(sv("text", {"class": "changed-t", x: xR + 14, y: y + 4}, "\u270E box " + diffKind));
      }
      if (verdict) {
        g.appendChild(sv("rect", {"class": verdict === 1 ? "guilty-band" : "evidence-band", x: 4, y: y - ROW + 6, width: W - 8, height: ROW}));
      }
      if (frame !== null) { g.appendChild(sv("text", {"class": "fr", x: 8, y: y + 4}, "#" + frame)); }
      if (ms !== null && ms !== undefined) { g.appendChild(sv("text", {"class": "fr", x: 58, y: y + 4}, fmtMs(ms))); }
      var label = text, span = Math.abs(xR - xL) - 20;
      if (kind === "tls" || kind === "body" || kind === "end" || kind === "gap" || kind === "note" || kind === "other") {
        label = text.replace(/^\[/, "").replace(/\]$/, "");
      }
      if (kind === "body") { label = label.replace(/, not shown$/, " (collapsed, not shown)"); }
      if (kind === "gap") {
        var zz = [], x0 = xL - 40, x1 = xR + 40, step = 12, up = true;
        for (var zx = x0; zx <= x1; zx += step) { zz.push(zx + "," + (y + (up ? -4 : 4))); up = !up; }
        g.appendChild(sv("rect", {"class": "gap-cut", x: xL - 6, y: y - 9, width: 12, height: 18}));
        g.appendChild(sv("rect", {"class": "gap-cut", x: xR - 6, y: y - 9, width: 12, height: 18}));
        g.appendChild(sv("polyline", {"class": "gap-z", points: zz.join(" ")}));
        var gt = sv("text", {"class": "lbl", x: (xL + xR) / 2, y: y - 8, "text-anchor": "middle"},
                    "\u26A1 " + cut(label, Math.floor(span / charW)));
        g.insertBefore(sv("title", null, text), g.firstChild);
        g.appendChild(gt);
      } else if (kind === "note") {
        var nt = sv("text", {"class": "lbl", x: (xL + xR) / 2, y: y + 4, "text-anchor": "middle"}, cut(label, Math.floor(span / charW)));
        g.insertBefore(sv("title", null, text), g.firstChild);
        g.appendChild(nt);
      } else if (kind === "end") {
        var stub = 46, ex = from + dir * stub;
        g.appendChild(sv("line", {"class": "arrow a-" + side, x1: from, y1: y, x2: ex, y2: y}));
        arrowTip(g, ex, y, dir, "a-" + side);
        g.appendChild(sv("text", {"class": "lbl", x: ex + dir * 6, y: y + 4, "text-anchor": dir > 0 ? "start" : "end"}, label));
      } else {
        var cls = "a-" + side;
        var tipX = to, lineTo = to;
        if (diffKind === "removed" && xM === null) { lineTo = (from + to) / 2; tipX = lineTo; }
        g.appendChild(sv("line", {"class": "arrow " + cls, x1: from, y1: y, x2: lineTo - dir * 9, y2: y}));
        if (diffKind === "removed" && xM === null) {
          g.appendChild(sv("line", {"class": "x-mark", x1: lineTo - 6, y1: y - 6, x2: lineTo + 6, y2: y + 6}));
          g.appendChild(sv("line", {"class": "x-mark", x1: lineTo - 6, y1: y + 6, x2: lineTo + 6, y2: y - 6}));
        } else {
          arrowTip(g, tipX, y, dir, cls);
        }
        var maxc = Math.floor(span / charW);
        var t = sv("text", {"class": "lbl", x: (xL + xR) / 2, y: y - 5, "text-anchor": "middle"}, cut(label, maxc));
        g.insertBefore(sv("title", null, (frame !== null ? fref + ": " : "") + text), g.firstChild);
        g.appendChild(t);
        if (verdict && boxX !== null) {
          g.appendChild(sv("rect", {"class": "box-mark", x: boxX - 9, y: y - 9, width: 18, height: 18, rx: 3}));
          g.appendChild(sv("text", {"class": "box-mark-t", x: boxX, y: y + 4, "text-anchor": "middle"}, "\u270E"));
        }
      }
      gRows.appendChild(g);
      y += ROW;
      var notes = marks.slice();
      if (verdict && conv.de && notes.length === 0) { notes.push("verdict " + conv.r + ": " + conv.de); }
      if (notes.length) {
        var amber = verdict !== 1, calloutCls = verdict === 1 ? "" : (verdict === 2 && conv.cb === "none" ? " ok" : " amber");
        var textLines = [];
        var bx = xL - 30, bw = (xR + 30) - bx;
        var perLine = Math.floor((bw - 24) / 7.7);
        for (var m = 0; m < notes.length; m++) {
          var ws = wrap((frame !== null && m === 0 ? "\u26A0 " + fref + " \u2014 " : "\u26A0 ") + notes[m], perLine);
          for (var q = 0; q < ws.length; q++) { textLines.push([ws[q], q === 0]); }
        }
        var bh = textLines.length * 16 + 10;
        var cg = sv("g", {"class": "finding" + (amber ? " amber" : "")});
        cg.appendChild(sv("rect", {"class": "callout" + calloutCls, x: bx, y: y - 10, width: bw, height: bh, rx: 4}));
        for (var k2 = 0; k2 < textLines.length; k2++) {
          cg.appendChild(sv("text", {"class": "callout-t" + calloutCls + (textLines[k2][1] ? " callout-h" : ""),
                                     x: bx + 10, y: y + 6 + k2 * 16}, textLines[k2][0]));
        }
        gRows.appendChild(cg);
        y += bh + 12;
      }
    }
    var bottom = y;
    if (bandFrom >= 0) {
      gBand.appendChild(sv("rect", {"class": "band-" + bandCls, x: xL, y: bandY, width: xR - xL, height: bottom - bandY - 8}));
      gBand.appendChild(sv("line", {"class": "band-edge " + bandCls, x1: 4, y1: bandY, x2: W - 4, y2: bandY}));
      svg.setAttribute("data-band", bandCls);
    }
    head(xL, opts.left, opts.leftSub, opts.leftIsBox ? "mid" : "");
    head(xR, opts.right, opts.rightSub, opts.rightIsBox ? "mid" : "");
    gLife.appendChild(sv("line", {"class": "life" + (opts.leftIsBox ? " mid" : ""), x1: xL, y1: 48, x2: xL, y2: bottom}));
    gLife.appendChild(sv("line", {"class": "life" + (opts.rightIsBox ? " mid" : ""), x1: xR, y1: 48, x2: xR, y2: bottom}));
    if (xM !== null) {
      head(xM, opts.mid, opts.midSub || "blamed by the verdict", "mid");
      gLife.appendChild(sv("line", {"class": "life mid", x1: xM, y1: 48, x2: xM, y2: bottom}));
    }
    if (!L.length) {
      gRows.appendChild(sv("text", {"class": "lbl", x: (xL + xR) / 2, y: TOP + 20, "text-anchor": "middle"},
                           "no line of the dialogue was captured"));
      bottom = TOP + 40;
    }
    svg.setAttribute("height", bottom + 10);
    svg.setAttribute("viewBox", "0 0 " + W + " " + (bottom + 10));
    return svg;
  }

  /* ------------------------------------------------------------------ the detail panel */

  function copyButton(text) {
    var b = el("button", {"type": "button", "class": "copy", "title": "copy to the clipboard"}, "copy");
    b.addEventListener("click", function (ev) {
      ev.stopPropagation();
      var done = function () { b.textContent = "copied"; setTimeout(function () { b.textContent = "copy"; }, 1500); };
      var fallback = function () {
        var ta = el("textarea", {"readonly": "", "class": "noprint"});
        ta.value = text; document.body.appendChild(ta); ta.select();
        try { document.execCommand("copy"); done(); } catch (e) { b.textContent = "select and copy"; }
        document.body.removeChild(ta);
      };
      try {
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, fallback);
        } else { fallback(); }
      } catch (e) { fallback(); }
    });
    return b;
  }
  function copyLine(label, text) {
    var d = el("div", {"class": "copyline"});
    d.appendChild(el("span", null, label));
    d.appendChild(el("code", null, text));
    d.appendChild(copyButton(text));
    return d;
  }
  function dt(dl, k, v) {
    dl.appendChild(el("dt", null, k));
    var dd = el("dd");
    if (typeof v === "string") { dd.textContent = v; } else { dd.appendChild(v); }
    dl.appendChild(dd);
  }
  var CELL = {Y: "sees STARTTLS", N: "downgrades to plaintext", X: "error, no mail"};
  function clientsBlock(c) {
    var cm = shared("cm", c.cm);
    if (cm && cm.length) {
      var cells = {}; cm.forEach(function (r) { cells[r[1]] = 1; });
      if (Object.keys(cells).length === 1) {
        return el("span", null, "all " + cm.length + " known clients: " + CELL[cm[0][1]]);
      }
      var groups = {Y: [], N: [], X: []};
      cm.forEach(function (r) { (groups[r[1]] = groups[r[1]] || []).push(r[0]); });
      var sum = [];
      if (groups.N.length) { sum.push(groups.N.length + " of " + cm.length + " downgrade to plaintext (" + groups.N.join(", ") + ")"); }
      if (groups.X.length) { sum.push(groups.X.length + " fail (" + groups.X.join(", ") + ")"); }
      if (groups.Y.length) { sum.push(groups.Y.length + " see STARTTLS (" + groups.Y.join(", ") + ")"); }
      var det = el("details", {"class": "clients"});
      det.appendChild(el("summary", null, sum.join("; ") + " — details"));
      var t = el("table", {"class": "clients"});
      var h = el("tr"); ["client", "with this EHLO reply", "why"].forEach(function (x) { h.appendChild(el("th", null, x)); });
      t.appendChild(el("thead")).appendChild(h);
      var tb = el("tbody");
      cm.forEach(function (r) {
        var tr = el("tr"); tr.appendChild(el("td", null, r[0]));
        tr.appendChild(el("td", {"class": "cell-" + r[1]}, CELL[r[1]] || r[1])); tr.appendChild(el("td", null, r[2]));
        tb.appendChild(tr);
      });
      t.appendChild(tb);
      det.appendChild(t);
      return det;
    }
    if (c.cl) {
      var parts = [];
      if (c.cl.downgrade && c.cl.downgrade.length) { parts.push("would downgrade: " + c.cl.downgrade.join(", ")); }
      if (c.cl.see_starttls && c.cl.see_starttls.length) { parts.push("would see STARTTLS: " + c.cl.see_starttls.join(", ")); }
      if (c.cl.error && c.cl.error.length) { parts.push("would fail: " + c.cl.error.join(", ")); }
      return el("span", null, parts.join("; "));
    }
    return null;
  }
  function verdictHead(o, text) {
    return el("p", {"class": "verdict v-" + o}, "Verdict: " + text);
  }
  function factsList(c) {
    var dl = el("dl", {"class": "facts-grid"});
    var x = shared("x", c.x);
    if (x) {
      dt(dl, "What a strict client does", x.client_does);
      dt(dl, "What to ask, and of whom", x.ask);
    }
    if (c.fi && c.fi.length) {
      var ul = el("ul", {"class": "findings"});
      c.fi.forEach(function (f) {
        ul.appendChild(el("li", null, (f.frame !== null ? frameRef(f.frame, f.fl) + ", " : "") + f.side + ": " + f.code +
                          " \u2014 " + f.message + (f.rfc ? " (" + f.rfc + ")" : "")));
      });
      dt(dl, "Findings", ul);
    }
    if (c.fb) { dt(dl, "Fallback of", "stream " + c.fb.stream + " (" + c.fb.reason + (c.fb.frame ? ", " + frameRef(c.fb.frame, c.fbf) : "") + ")"); }
    if (c.tr) { dt(dl, "TLS-RPT result", c.tr); }
    var cb = clientsBlock(c);
    if (cb) { dt(dl, "Known clients facing this EHLO reply", cb); }
    var ws = el("div");
    if (c.wf) { ws.appendChild(copyLine("conversation:", c.wf)); }
    if (c.evf) { ws.appendChild(copyLine(fileName(c.eff) ? "evidence (in " + fileName(c.eff) + "):" : "evidence:", c.evf)); }
    if (c.tc) { ws.appendChild(copyLine("tshark:", c.tc)); }
    else if (c.tca) { ws.appendChild(copyLine("tshark:", c.tca)); }
    dt(dl, "Wireshark", ws);
    return dl;
  }
  function detailReport(c) {
    var box = el("div", {"class": "detail-box", "data-stream": c.s});
    box.appendChild(verdictHead(c.o, verdictText(c)));
    var wrapDiv = el("div", {"class": "ladder-wrap"});
    var f = D.files[c.f] || {};
    wrapDiv.appendChild(ladder(c, {
      left: "client " + c.c, leftSub: c.h ? (c.hc || "EHLO") + " " + c.h : null,
      right: "server " + c.sv, rightSub: c.sn || null,
      mid: c.mb ? "middlebox" : null, midSub: c.mb === 2 ? "named by a finding" : null, width: 1000}));
    box.appendChild(wrapDiv);
    box.appendChild(el("p", {"class": "hint"}, "stream " + c.s + " of " + (f.path || "?") + ", first frame " + c.ff +
                       (c.ts ? ", " + c.ts : "") + ". Hover a line for its full text."));
    box.appendChild(factsList(c));
    return box;
  }
  function detailDiff(p) {
    var box = el("div", {"class": "detail-box"});
    box.appendChild(verdictHead(p.o, p.o + ", caused by " + p.cb + " (" + p.r + "): " + p.msg));
    var pair = el("div", {"class": "ladders"});
    var roles = [["outside", "the client side: what the client sent and got"], ["inside", "the server side: what the server sent and got"]];
    p.views.forEach(function (c, k) {
      var col = el("div", {"class": "view view-" + roles[k][0]});
      col.appendChild(el("h4", null, roles[k][0] + " capture (" + roles[k][1] + ")"));
      if (!c) { col.appendChild(el("p", null, "not found")); pair.appendChild(col); return; }
      var w = el("div", {"class": "ladder-wrap"});
      var o = k === 0 ?
        {left: "client " + c.c, leftSub: c.h ? (c.hc || "EHLO") + " " + c.h : null, right: "middlebox", rightSub: "as seen outside", rightIsBox: true} :
        {left: "middlebox", leftSub: "as seen inside (" + c.c + ")", leftIsBox: true, right: "server " + c.sv, rightSub: c.sn || null};
      o.width = 640; o.narrow = true;
      w.appendChild(ladder(c, o));
      col.appendChild(w);
      col.appendChild(el("p", {"class": "hint"}, "this side alone: " + verdictText(c)));
      pair.appendChild(col);
    });
    box.appendChild(pair);
    var dl = el("dl", {"class": "facts-grid"});
    dt(dl, "Match", p.match.method + ", score " + Number(p.match.score).toFixed(2) + " (" + p.match.confidence + "): " + p.match.evidence.join("; "));
    /* the differences both captures vouch for, and apart, the lines one capture lacks where it does not show
       that direction (it stopped earlier, or lost bytes there): no evidence, never "changed by the box" */
    function diffTable(ds, cls) {
      var t = el("table", {"class": cls});
      var h = el("tr"); ["direction", "change", "outside frame", "outside line", "inside frame", "inside line"].forEach(function (x) { h.appendChild(el("th", null, x)); });
      t.appendChild(el("thead")).appendChild(h);
      var tb = el("tbody");
      ds.forEach(function (d) {
        var tr = el("tr");
        [d.direction, d.kind, d["of"] === null ? "not shown" : d["of"], d.ol === null ? "(nothing)" : d.ol,
         d["if"] === null ? "not shown" : d["if"], d.il === null ? "(nothing)" : d.il].forEach(function (x) { tr.appendChild(el("td", null, x)); });
        tb.appendChild(tr);
      });
      t.appendChild(tb);
      return t;
    }
    var changedDs = p.diffs.filter(function (d) { return d.pv; });
    var unprovenDs = p.diffs.filter(function (d) { return !d.pv; });
    if (changedDs.length) {
      dt(dl, "Lines the box changed", diffTable(changedDs, "diffs"));
    } else {
      dt(dl, "Lines the box changed", unprovenDs.length ? "none that both captures show (the lines below prove nothing)" :
         "none: every line arrived as it was sent, both ways");
    }
    if (unprovenDs.length) {
      var u = el("div");
      u.appendChild(el("p", {"class": "hint"}, "A line sent on one side that the other capture does not show, where " +
                         "that capture shows nothing of the direction (\u201cnot shown\u201d: it stopped earlier, or lost " +
                         "bytes there that may hold the line): no evidence that the box changed anything."));
      u.appendChild(diffTable(unprovenDs, "diffs unproven"));
      dt(dl, "Seen on one side only (no evidence)", u);
    }
    if (p.views[0]) { dt(dl, "Outside, Wireshark", (function () { var d = el("div"); if (p.views[0].wf) { d.appendChild(copyLine("conversation:", p.views[0].wf)); } return d; })()); }
    if (p.views[1]) { dt(dl, "Inside, Wireshark", (function () { var d = el("div"); if (p.views[1].wf) { d.appendChild(copyLine("conversation:", p.views[1].wf)); } return d; })()); }
    box.appendChild(dl);
    return box;
  }

  /* ------------------------------------------------------------------ the list */

  var body = document.getElementById("conv-body");
  var ncols = document.querySelectorAll("#conv-table thead th").length;
  var items = D.kind === "diff" ? D.pairs : D.convs;
  var multi = D.files && D.files.length > 1 && D.kind !== "diff";

  var PAGE = 500, page = 0, shownIdx = [];
  var pager = el("div", {"class": "pager noprint"});
  document.getElementById("conv-table").parentNode.insertBefore(pager, document.getElementById("conv-table").nextSibling);

  /* the list's "box changed" cell: the lines both captures vouch for; lines one capture lacks prove nothing */
  function boxChanged(c) {
    var n = c.diffs.filter(function (d) { return d.pv; }).length, u = c.diffs.length - n;
    if (c.tampered) { return "YES (" + n + " line" + (n === 1 ? "" : "s") + ")"; }
    return u ? "no (" + u + " line" + (u === 1 ? "" : "s") + " on one side only, no evidence)" : "no";
  }
  function rowFor(c, k) {
    var tr = el("tr", {"class": "conv", "data-i": k, "tabindex": "0"});
    var cells;
    if (D.kind === "diff") {
      var o = c.views[0], n = c.views[1];
      cells = [k + 1, o ? "stream " + o.s + " " + o.c + " \u2192 " + o.sv : "?", n ? "stream " + n.s + " " + n.c + " \u2192 " + n.sv : "?",
               null, c.cb, c.r, boxChanged(c)];
    } else {
      cells = [k + 1, c.ts || "", multi ? (D.files[c.f] || {}).path : undefined, c.s, c.c, c.sv, c.sn, c.of, null, c.cb, c.r];
    }
    for (var j = 0; j < cells.length; j++) {
      if (cells[j] === undefined) { continue; }
      var td = el("td");
      if (cells[j] === null) { td.appendChild(chip(c.o)); } else { td.textContent = String(cells[j]); }
      tr.appendChild(td);
    }
    return tr;
  }
  function hayOf(c) {
    if (D.kind !== "diff") { return (c.sv + " " + c.sn + " " + c.sip).toLowerCase(); }
    return c.views.map(function (v) { return v ? v.sv + " " + v.sn + " " + v.c : ""; }).join(" ").toLowerCase();
  }
  for (var k = 0; k < items.length; k++) { ROWS.push({item: items[k], hay: hayOf(items[k]), tr: null, detail: null, open: false}); }

  function renderPage() {
    var frag = document.createDocumentFragment();
    var from = page * PAGE, to = Math.min(shownIdx.length, from + PAGE);
    for (var q = from; q < to; q++) {
      var k = shownIdx[q], R = ROWS[k];
      if (!R.tr) { R.tr = rowFor(R.item, k); }
      frag.appendChild(R.tr);
      if (R.open && R.detail) { frag.appendChild(R.detail); }
    }
    if (!shownIdx.length) {
      var none = el("tr", {"class": "none"});
      none.appendChild(el("td", {"colspan": ncols}, ROWS.length ? "no conversation matches these filters" : "no SMTP conversation"));
      frag.appendChild(none);
    }
    body.textContent = "";
    body.appendChild(frag);
    pager.textContent = "";
    if (shownIdx.length > PAGE) {
      var pages = Math.ceil(shownIdx.length / PAGE);
      var prev = el("button", {"type": "button", "id": "p-prev"}, "\u25C0 previous");
      var next = el("button", {"type": "button", "id": "p-next"}, "next \u25B6");
      prev.disabled = page === 0; next.disabled = page >= pages - 1;
      prev.addEventListener("click", function () { page--; renderPage(); });
      next.addEventListener("click", function () { page++; renderPage(); });
      pager.appendChild(prev);
      pager.appendChild(el("span", {"id": "p-where"}, " rows " + (from + 1) + "\u2013" + to + " of " + shownIdx.length + " (page " + (page + 1) + " of " + pages + ") "));
      pager.appendChild(next);
      var all = el("button", {"type": "button", "id": "p-all"}, "show all " + shownIdx.length);
      all.addEventListener("click", function () { PAGE = shownIdx.length; page = 0; renderPage(); });
      pager.appendChild(all);
    }
  }
  function toggle(k, scroll) {
    var R = ROWS[k];
    if (!R.detail) {
      var d = el("tr", {"class": "detail"});
      var td = el("td", {"colspan": ncols});
      td.appendChild(D.kind === "diff" ? detailDiff(R.item) : detailReport(R.item));
      d.appendChild(td);
      R.detail = d;
    }
    R.open = !R.open;
    R.tr.classList.toggle("open", R.open);
    if (R.open) { R.tr.parentNode.insertBefore(R.detail, R.tr.nextSibling); }
    else if (R.detail.parentNode) { R.detail.parentNode.removeChild(R.detail); }
    if (scroll) { R.tr.scrollIntoView({block: "start"}); }
  }
  body.addEventListener("click", function (ev) {
    var tr = ev.target.closest ? ev.target.closest("tr.conv") : null;
    if (tr) { toggle(Number(tr.getAttribute("data-i")), false); }
  });
  body.addEventListener("keydown", function (ev) {
    if (ev.key !== "Enter" && ev.key !== " ") { return; }
    var tr = ev.target.closest ? ev.target.closest("tr.conv") : null;
    if (tr && ev.target === tr) { ev.preventDefault(); toggle(Number(tr.getAttribute("data-i")), false); }
  });

  /* ------------------------------------------------------------------ filters */

  var fo = document.getElementById("f-outcome"), fc = document.getElementById("f-cause"),
      fr = document.getElementById("f-reason"), ft = document.getElementById("f-text"),
      fn = document.getElementById("f-count");
  function apply() {
    var o = fo.value, c = fc.value, r = fr.value, t = ft.value.trim().toLowerCase();
    shownIdx = [];
    for (var i = 0; i < ROWS.length; i++) {
      var R = ROWS[i], it = R.item;
      if ((!o || it.o === o) && (!c || it.cb === c) && (!r || it.r === r) && (!t || R.hay.indexOf(t) >= 0)) { shownIdx.push(i); }
    }
    page = 0;
    fn.textContent = shownIdx.length + " of " + ROWS.length + " shown";
    fn.setAttribute("data-shown", shownIdx.length);
    renderPage();
  }
  function clearFilters() { fo.value = ""; fc.value = ""; fr.value = ""; ft.value = ""; apply(); }
  [fo, fc, fr].forEach(function (s) { s.addEventListener("change", apply); });
  ft.addEventListener("input", apply);
  document.getElementById("f-clear").addEventListener("click", clearFilters);
  var FILTER = {outcome: fo, cause: fc, reason: fr};
  Array.prototype.forEach.call(document.querySelectorAll(".chart .bar"), function (g) {
    g.addEventListener("click", function () {
      var s = FILTER[g.getAttribute("data-filter")];
      if (s) { s.value = g.getAttribute("data-value"); apply(); document.getElementById("conversations").scrollIntoView(); }
    });
  });
  apply();

  /* open conversation k wherever the filters and pages have put it */
  function reveal(k) {
    var pos = shownIdx.indexOf(k);
    if (pos < 0) { clearFilters(); pos = shownIdx.indexOf(k); }
    if (Math.floor(pos / PAGE) !== page) { page = Math.floor(pos / PAGE); renderPage(); }
    if (!ROWS[k].open) { toggle(k, true); } else { ROWS[k].tr.scrollIntoView({block: "start"}); }
  }

  /* ------------------------------------------------------------------ timeline, sorting */

  var tl = document.getElementById("timeline");
  if (tl) {
    tl.addEventListener("click", function (ev) {
      var i = ev.target.getAttribute ? ev.target.getAttribute("data-i") : null;
      if (i !== null) { reveal(Number(i)); }
    });
  }
  function ipKey(s) {
    if (s.indexOf(":") < 0) { return s.split(".").map(function (p) { return ("00" + p).slice(-3); }).join("."); }
    return "~" + s;
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var ths = table.querySelectorAll("thead th");
    Array.prototype.forEach.call(ths, function (th, col) {
      th.addEventListener("click", function () {
        var dir = th.getAttribute("data-dir") === "asc" ? "desc" : "asc";
        Array.prototype.forEach.call(ths, function (h) { h.removeAttribute("data-dir"); });
        th.setAttribute("data-dir", dir);
        var type = th.getAttribute("data-type") || "text";
        var tbody = table.tBodies[0], rows = Array.prototype.slice.call(tbody.rows);
        var key = function (tr) {
          var t = tr.cells[col].textContent.trim();
          return type === "num" ? Number(t) : (type === "ip" ? ipKey(t) : t.toLowerCase());
        };
        rows.sort(function (a, b) { var x = key(a), y = key(b); var r = x < y ? -1 : (x > y ? 1 : 0); return dir === "asc" ? r : -r; });
        rows.forEach(function (tr) { tbody.appendChild(tr); });
      });
    });
  });
  document.body.setAttribute("data-build-ms", Math.round(performance.now() - T0));
  document.body.setAttribute("data-ready", "1");
})();
