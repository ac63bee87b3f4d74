// The staff dashboard: last verdict, live scan list, counters, admissions chart, online banner,
// camera preview and manual entry. Data: GET /api/status, GET /api/scans, live over WS /ws.
// Every value from the gate is set with textContent, never as HTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const MAX_ROWS = 100;
  const CHART_MINUTES = 30;
  // the verdict is for the person at the gate now; left up, it would greet the next one
  const VERDICT_SHOW_MS = 6000;
  const seen = new Map(); // scan_id -> scan, newest list for the chart
  let lastVerdictAt = "";
  let verdictTimer = null;

  // ----- words for the staff: colour is never the only signal -----
  const KINDS = {
    SUCCESS: { kind: "ok", icon: "✓", word: "ADMIT" },
    DUPLICATE: { kind: "warn", icon: "!", word: "ALREADY USED" },
  };
  const REJECT = { kind: "bad", icon: "✕", word: "DO NOT ADMIT" };
  const REASONS = {
    UNPAID: "Ticket not paid — send to the box office",
    NOT_FOUND: "Unknown ticket — send to the box office",
    WRONG_DATE: "Not admitted at this time — wrong day or doors closed",
    EXPIRED: "Code expired — ask them to refresh the ticket on the phone",
    NOT_YET_VALID: "Phone clock is wrong — ask them to set the time and refresh",
    TRANSFERRED: "Ticket was passed on — the new owner's code is needed",
    CANCELLED: "Ticket cancelled — the event was cancelled or the ticket refunded",
    INVALID: "Not a valid ticket",
    DISABLED: "Gate disabled by the organiser — send to another gate",
  };
  const SHORT = {
    SUCCESS: "Admitted", DUPLICATE: "Already used", UNPAID: "Not paid", NOT_FOUND: "Unknown",
    WRONG_HALL: "Wrong hall", WRONG_DATE: "Wrong time", EXPIRED: "Expired",
    NOT_YET_VALID: "Phone clock", TRANSFERRED: "Transferred", INVALID: "Invalid",
    DISABLED: "Gate disabled",
    CANCELLED: "Cancelled",
  };

  function localTime(iso, seconds) {
    const d = new Date(iso);
    if (isNaN(d)) return "";
    const opts = { hour: "2-digit", minute: "2-digit", hour12: false };
    if (seconds) opts.second = "2-digit";
    return d.toLocaleTimeString([], opts);
  }

  function seatText(seat) {
    if (!seat || (seat.row == null && seat.number == null)) return "";
    return "Row " + (seat.row ?? "?") + ", Seat " + (seat.number ?? "?");
  }

  function reason(scan) {
    const msg = scan.message || "";
    switch (scan.result) {
      case "SUCCESS": {
        const seat = seatText(scan.seat);
        return seat ? "Welcome — " + seat : "Welcome";
      }
      case "DUPLICATE": {
        const when = msg.match(/\d{4}-\d\d-\d\dT[\d:.]+Z/);
        const where = msg.match(/\((this gate|gate [^)]+)\)/);
        let text = "Already checked in";
        if (where) text += " at " + (where[1] === "this gate" ? "this gate" : where[1].replace(/^gate/, "Gate"));
        if (when) text += ", " + localTime(when[0], false);
        if (!when && !where && scan.mode === "offline") text += " (seen by this gate offline)";
        return text;
      }
      case "WRONG_HALL": {
        const hall = msg.match(/for (\S+)\s*$/) || msg.match(/\(([^)]+)\)\s*$/);
        return hall ? "Wrong hall — go to " + hall[1] : "Wrong hall — check the ticket's hall";
      }
      case "INVALID":
        // a typed short code the gate cannot check: tell staff what to do instead
        return /short code/i.test(msg) ? msg : REASONS.INVALID;
      default:
        return REASONS[scan.result] || msg || scan.result;
    }
  }

  // ----- last verdict -----
  function clearVerdict() {
    verdictTimer = null;
    const box = $("verdict");
    box.dataset.kind = "idle";
    delete box.dataset.result;
    $("verdict-icon").textContent = "…";
    $("verdict-word").textContent = "Waiting for a scan";
    $("verdict-reason").textContent = "Hold a ticket up to the camera.";
    $("verdict-meta").textContent = "";
  }

  function showVerdict(scan) {
    if (scan.at < lastVerdictAt) return; // an older scan arriving late never hides a newer one
    lastVerdictAt = scan.at;
    const k = KINDS[scan.result] || REJECT;
    const box = $("verdict");
    box.dataset.kind = k.kind;
    box.dataset.result = scan.result;
    $("verdict-icon").textContent = k.icon;
    $("verdict-word").textContent = k.word;
    $("verdict-reason").textContent = reason(scan);
    const bits = [localTime(scan.at, true), scan.mode === "offline" ? "decided offline" : "online"];
    if (scan.result !== "SUCCESS" && seatText(scan.seat)) bits.unshift(seatText(scan.seat));
    $("verdict-meta").textContent = bits.join(" · ");
    if (verdictTimer !== null) clearTimeout(verdictTimer);
    verdictTimer = setTimeout(clearVerdict, VERDICT_SHOW_MS);
  }

  // ----- scan list -----
  function row(scan) {
    const tr = document.createElement("tr");
    tr.dataset.scanId = scan.scan_id;
    tr.dataset.result = scan.result;
    const k = KINDS[scan.result] || REJECT;
    tr.className = "row-" + k.kind;
    const cells = [
      k.icon + " " + (SHORT[scan.result] || scan.result),
      scan.seat && scan.seat.row != null ? scan.seat.row + "-" + (scan.seat.number ?? "?") : "",
      localTime(scan.at, true),
      scan.mode,
      scan.latency_ms == null ? "" : String(Math.round(scan.latency_ms)),
    ];
    cells.forEach((value, i) => {
      const td = document.createElement("td");
      td.textContent = value;
      if (i === 3) td.className = "mode-" + scan.mode;
      tr.appendChild(td);
    });
    tr.title = reason(scan);
    return tr;
  }

  function addScan(scan, live) {
    if (seen.has(scan.scan_id)) return;
    seen.set(scan.scan_id, scan);
    const rows = $("scan-rows");
    const tr = row(scan);
    // keep newest first even when a reconnect back-fills older scans
    let before = null;
    for (const other of rows.children) {
      if ((seen.get(other.dataset.scanId) || {}).at < scan.at) { before = other; break; }
    }
    rows.insertBefore(tr, before);
    while (rows.children.length > MAX_ROWS) rows.removeChild(rows.lastChild);
    if (live) {
      tr.classList.add("fresh");
      showVerdict(scan);
      drawChart();
    }
  }

  // ----- counters and banner -----
  function showStatus(st) {
    const banner = $("banner");
    // a revoked gate is disabled, not offline: it admits nobody, online or from its list
    $("gate-disabled").hidden = !st.disabled;
    document.body.dataset.gateState = st.disabled ? "disabled" : (st.online ? "online" : "offline");
    banner.dataset.online = st.disabled ? "disabled" : (st.online ? "online" : "offline");
    $("banner-state").textContent = st.disabled ? "■ GATE DISABLED — revoked by the organiser"
      : st.online ? "● Online" : "▲ OFFLINE — deciding from the local list";
    $("banner-sync").textContent = st.last_sync_at
      ? "Last sync " + localTime(st.last_sync_at, true) : "Never synced";
    $("banner-backlog").textContent = "Upload backlog: " + (st.backlog ?? 0);
    // a thread the watchdog had to restart: worth a look by whoever maintains the gate
    const restarts = st.restarts || 0;
    $("banner-restarts").hidden = restarts === 0;
    $("banner-restarts").textContent = "Thread restarts: " + restarts;
    // the name the operator gave the gate at central; its id only until the first sync
    const gate = st.gate_name || (st.gate_id ? "gate " + String(st.gate_id).slice(0, 8) : "");
    $("banner-gate").textContent = [gate, st.hall_id].filter(Boolean).join(" · ");
    const counts = st.counts || {};
    const byResult = counts.by_result || {};
    $("count-admitted").textContent = counts.admitted ?? 0;
    // no exit scans at this venue: everyone admitted is inside
    $("count-inside").textContent = counts.admitted ?? 0;
    let rejected = 0;
    const list = $("rejected-by-reason");
    list.replaceChildren();
    Object.keys(byResult).sort().forEach((result) => {
      if (result === "SUCCESS") return;
      rejected += byResult[result];
      const li = document.createElement("li");
      li.dataset.result = result;
      li.textContent = (SHORT[result] || result) + ": " + byResult[result];
      list.appendChild(li);
    });
    $("count-rejected").textContent = rejected;
  }

  // ----- admissions per minute (inline SVG, no library) -----
  function drawChart() {
    const now = Date.now();
    const buckets = new Array(CHART_MINUTES).fill(0);
    for (const scan of seen.values()) {
      if (scan.result !== "SUCCESS") continue;
      const age = Math.floor((now - Date.parse(scan.at)) / 60000);
      if (age >= 0 && age < CHART_MINUTES) buckets[CHART_MINUTES - 1 - age] += 1;
      else if (age < 0 && age > -2) buckets[CHART_MINUTES - 1] += 1; // gate clock a bit ahead
    }
    const peak = Math.max(1, ...buckets);
    const svg = $("chart");
    const ns = "http://www.w3.org/2000/svg";
    svg.replaceChildren();
    const w = 300 / CHART_MINUTES;
    buckets.forEach((n, i) => {
      const h = (n / peak) * 56;
      const rect = document.createElementNS(ns, "rect");
      rect.setAttribute("x", String(i * w + 1));
      rect.setAttribute("y", String(60 - h));
      rect.setAttribute("width", String(w - 2));
      rect.setAttribute("height", String(h));
      rect.setAttribute("class", "bar");
      const title = document.createElementNS(ns, "title");
      title.textContent = n + " admitted, " + (CHART_MINUTES - 1 - i) + " min ago";
      rect.appendChild(title);
      svg.appendChild(rect);
    });
    $("chart-peak").textContent = "(now " + buckets[CHART_MINUTES - 1] + "/min, peak " + Math.max(...buckets) + ")";
  }

  // ----- data -----
  async function api(path, options) {
    const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options));
    if (response.status === 401) {
      location.replace("/"); // session gone: back to the PIN form
      throw new Error("logged out");
    }
    return response;
  }

  async function loadScans() {
    const response = await api("/api/scans?limit=500");
    const body = await response.json();
    const scans = body.data || [];
    scans.slice().reverse().forEach((s) => addScan(s, false));
    drawChart();
  }

  async function loadStatus() {
    const response = await api("/api/status");
    showStatus((await response.json()).data);
  }

  // ----- live updates over WS, reconnecting with backoff -----
  let delay = 500;
  function connect() {
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(proto + location.host + "/ws");
    ws.onopen = () => {
      delay = 500;
      $("ws-state").hidden = true;
      document.body.dataset.ws = "open";
      loadScans().catch(() => {}); // back-fill what happened while disconnected
    };
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === "scan") {
        // one message, one paint: the counters never lag the row they count
        addScan(msg.data, true);
        if (msg.status) showStatus(msg.status);
      } else if (msg.type === "status") showStatus(msg.data);
    };
    ws.onclose = () => {
      document.body.dataset.ws = "closed";
      $("ws-state").hidden = false;
      const banner = $("banner");
      banner.dataset.online = "unknown";
      $("banner-state").textContent = "? Gate screen lost contact with the gate";
      setTimeout(() => {
        // a refused upgrade may mean the session ended: ask once, which redirects on 401
        loadStatus().then(connect, connect);
      }, delay);
      delay = Math.min(delay * 2, 5000);
    };
  }

  // ----- camera preview -----
  let previewOn = true;
  function setPreview(on) {
    previewOn = on;
    // removing the src closes the MJPEG stream, so a hidden preview costs the gate nothing
    $("preview").src = on ? "/api/preview.mjpg?t=" + Date.now() : "";
    $("preview-toggle").textContent = on ? "Pause camera" : "Show camera";
  }
  $("preview-toggle").addEventListener("click", () => setPreview(!previewOn));
  $("preview").addEventListener("error", () => {
    if (previewOn) setTimeout(() => previewOn && setPreview(true), 3000);
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) $("preview").src = "";
    else if (previewOn) setPreview(true);
  });

  // ----- manual entry: the same decision path as a camera scan -----
  $("manual-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("manual-code");
    $("manual-error").textContent = "";
    try {
      const response = await api("/api/manual", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ code: input.value }),
      });
      const body = await response.json();
      if (!response.ok) {
        $("manual-error").textContent = body.message || "Could not check the code";
        return;
      }
      input.value = "";
      addScan(body.data, true);
      if (body.data.status) showStatus(body.data.status);
    } catch (e) {
      if (e.message !== "logged out") $("manual-error").textContent = "Cannot reach the gate";
    }
  });

  setInterval(drawChart, 30000);
  Promise.all([loadStatus(), loadScans()]).catch(() => {});
  connect();
  setPreview(true);
})();
