// An event's live view: seats by status, revenue, admissions per gate and per minute, the newest
// entries — polled every second so the doors can be watched without a reload.
import { h, replace, message, describeError, dateTime, hhmm } from "../shared/ui.js";
import { gatesPanel } from "./gates.js";
import { moneyOutPanel } from "./money-out.js";

const POLL_MS = 1_000;

function stat(label, value, id) {
  return h("div", { class: "stat", id }, h("div", { class: "value", text: value }), h("div", { class: "label", text: label }));
}

export async function liveView(ctx, eventId) {
  const head = h("div", {}, h("h1", { text: "Event" }));
  const stats = h("div", { class: "stats", id: "live-stats", "aria-live": "off" });
  const byGate = h("div", { id: "by-gate" });
  const perMinute = h("div", { id: "per-minute" });
  const recent = h("div", { id: "recent" });
  const status = h("div", { role: "status" });
  const gatesSlot = h("div", { id: "gates-slot" });
  const moneyOut = moneyOutPanel(ctx, eventId);
  let gates = null;

  ctx.show(
    head,
    status,
    stats,
    h("div", { class: "grid-2" },
      h("section", { class: "panel", "aria-labelledby": "by-gate-title" }, h("h2", { id: "by-gate-title", text: "Admissions per gate" }), byGate),
      h("section", { class: "panel", "aria-labelledby": "per-minute-title" }, h("h2", { id: "per-minute-title", text: "Admissions per minute" }), perMinute),
    ),
    h("section", { class: "panel", "aria-labelledby": "recent-title" }, h("h2", { id: "recent-title", text: "Latest scans" }), recent),
    gatesSlot,
    moneyOut.node,
  );

  function draw(d) {
    const ev = d.event;
    if (!gates) {
      replace(head,
        h("h1", { text: ev.name }),
        h("p", { class: "muted", text: `${ev.hall_id} · ${dateTime(ev.event_date)} · doors ${hhmm(ev.doors_open)}–${hhmm(ev.doors_close)}` }));
      gates = gatesPanel(ctx, ev.hall_id);
      replace(gatesSlot, gates.node);
    }
    const s = d.seats.by_status;
    replace(stats,
      stat("Sold", s.SOLD + s.CHECKED_IN, "stat-sold"),
      stat("Checked in", d.checked_in, "stat-checked-in"),
      stat("On hold", s.HELD, "stat-held"),
      stat("Available", s.AVAILABLE, "stat-available"),
      stat("Revenue (credits)", Number(d.revenue || 0).toLocaleString(), "stat-revenue"),
      stat("Refunded orders", (d.orders_by_status && d.orders_by_status.REFUNDED) || 0, "stat-refunded"),
    );
    const gatesRows = d.admissions.by_gate;
    replace(byGate, gatesRows.length
      ? h("table", {},
          h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Gate" }), h("th", { scope: "col", class: "num", text: "Admitted" }))),
          h("tbody", {}, gatesRows.map((g) => h("tr", { dataset: { gateId: g.gate_id || "" } },
            h("td", { text: g.name || (g.gate_id ? g.gate_id.slice(0, 8) : "staff scanner") }),
            h("td", { class: "num admitted", text: g.count })))))
      : h("p", { class: "muted", text: "Nobody admitted yet." }));
    const minutes = d.admissions.per_minute.slice(-30);
    const peak = Math.max(1, ...minutes.map((m) => m.count));
    replace(perMinute, minutes.length
      ? [
          h("div", { class: "bars", "aria-hidden": "true" }, minutes.map((m) => {
            const bar = h("div", { class: "bar", title: `${hhmm(m.minute)}: ${m.count}` });
            bar.style.height = `${Math.round((m.count / peak) * 100)}%`; // CSSOM, allowed by the CSP
            return bar;
          })),
          h("table", {},
            h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Minute" }), h("th", { scope: "col", class: "num", text: "Admitted" }))),
            h("tbody", {}, minutes.slice(-10).reverse().map((m) => h("tr", {}, h("td", { text: hhmm(m.minute) }), h("td", { class: "num", text: m.count }))))),
        ]
      : h("p", { class: "muted", text: "No admissions yet." }));
    replace(recent, d.recent_entries.length
      ? h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Latest scans" }, h("table", {},
          h("thead", {}, h("tr", {}, ["Time", "Gate", "Result", "Mode"].map((t) => h("th", { scope: "col", text: t })))),
          h("tbody", {}, d.recent_entries.map((e) => h("tr", {},
            h("td", { text: hhmm(e.scanned_at) }),
            h("td", { text: e.gate_name || (e.staff_user_id ? "staff" : "") }),
            h("td", {}, h("span", { class: e.result === "SUCCESS" ? "badge badge-ok" : "badge badge-bad", text: e.result })),
            h("td", { text: e.mode || "" }))))))
      : h("p", { class: "muted", text: "No scans yet." }));
  }

  async function refresh() {
    try {
      draw(await ctx.api.get(`/api/admin/events/${eventId}/dashboard`));
      replace(status);
    } catch (err) {
      replace(status, message("error", describeError(err)));
    }
  }
  await Promise.all([refresh(), moneyOut.refresh()]);
  ctx.timers.every(POLL_MS, refresh);
  ctx.timers.every(5_000, () => {
    if (gates) gates.refresh();
    moneyOut.refresh();
  });
}
