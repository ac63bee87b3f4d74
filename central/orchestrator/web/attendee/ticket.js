// The ticket screen shown at the door: the QR drawn from the current signed token, replaced well
// before its 60 seconds run out, a countdown in central's time, the screen kept awake, and
// "checked in at 19:03, Gate 1" as soon as a gate has admitted it.
import { h, replace, message, describeError, dateTime, hhmm, mmss } from "../shared/ui.js";
import { qrSvg } from "../shared/qr.js";
import { bindDevice, certOwnerEpoch, deviceCode, deviceCodesSupported, loadDevice } from "./device.js";

// A new code is fetched this long before the shown one expires, so a scan never meets a dead code
// even when the phone's network is slow.
const REPLACE_BEFORE_EXPIRY_MS = 20_000;
const RETRY_MS = 3_000;
const STATUS_POLL_MS = 3_000;
// A TR2 code is made on the phone every few seconds (no network), each valid for 60 s.
const DEVICE_CODE_EVERY_MS = 5_000;
const CODE_TTL_S = 60;

export async function ticketView(ctx, seatId) {
  document.body.classList.add("ticket-mode");
  ctx.show(h("p", { class: "muted", text: "Loading your ticket…" }));
  let ticket;
  try {
    ticket = await findTicket(ctx, seatId);
  } catch (err) {
    ctx.show(h("h1", { text: "Ticket" }), message("error", describeError(err)));
    return;
  }
  if (!ticket) {
    ctx.show(
      h("h1", { text: "Ticket" }),
      message("error", "This ticket is not yours any more (it may have been transferred)."),
      h("a", { href: "#/tickets", text: "Back to my tickets" }),
    );
    return;
  }

  const ev = ticket.event || {};
  const qrBox = h("div", { class: "qr-box", id: "qr" });
  const countdown = h("span", { class: "countdown", id: "qr-countdown" });
  const countdownLine = h("p", { class: "countdown-line", id: "qr-countdown-line" }, "Code valid for ", countdown, " · renews by itself");
  const stateNode = h("div", { id: "ticket-state", "aria-live": "polite" });
  const wakeNote = h("p", { class: "muted", id: "wake-note" });
  const offerLine = h("p", {}, h("a", { href: `#/transfers/${seatId}`, id: "offer-link", text: "Offer this ticket to someone" }));
  let code = null; // {payload, expiresAt}
  let checkedIn = false;
  let fetching = false;
  let device = null; // TR2: this phone's certified key for the ticket, when the browser can
  const deviceNote = h("p", { class: "muted", id: "device-note" });

  ctx.show(
    h(
      "article",
      { class: "ticket", id: "ticket", dataset: { seatId } },
      h("h1", { text: ev.name || "Ticket" }),
      h("p", { class: "muted", text: `${(ev.venue && ev.venue.name) || ""} · ${ev.hall_id || ""} · ${dateTime(ev.event_date)}` }),
      h("p", { class: "seat-line", text: `Row ${ticket.row}, seat ${ticket.number}` }),
      stateNode,
      qrBox,
      countdownLine,
      deviceNote,
      wakeNote,
      offerLine,
      h("p", {}, h("a", { href: "#/tickets", text: "All my tickets" })),
    ),
  );

  function showCheckedIn(t) {
    checkedIn = true;
    const at = t.checked_in_at ? hhmm(t.checked_in_at) : "";
    const gate = t.checked_in_gate_name || (t.checked_in_gate && t.checked_in_gate.name) || "";
    const text = ["Checked in", at && `at ${at}`].filter(Boolean).join(" ") + (gate ? `, ${gate}` : "");
    replace(stateNode, h("p", { class: "checked-in", id: "checked-in", text }));
    replace(qrBox);
    qrBox.hidden = true;
    countdownLine.hidden = true;
    offerLine.hidden = true; // a used ticket cannot be offered
  }

  // This phone's key for the ticket: the one kept in IndexedDB while it is still the seat's
  // current device at the current owner epoch, else a new one certified now (needs the network).
  // A ticket since opened on another phone is not taken back silently: the owner decides.
  async function prepareDevice() {
    if (!deviceCodesSupported()) return null;
    let kept = null;
    try {
      kept = await loadDevice(seatId);
    } catch {
      return null; // private mode without IndexedDB: central's codes instead
    }
    const current = ticket.device_serial || 0;
    const sameEpoch = kept && certOwnerEpoch(kept.cert) === ticket.owner_epoch;
    const fresh = kept && kept.notAfter * 1000 > ctx.serverNow();
    if (kept && sameEpoch && fresh && kept.deviceSerial === current) return kept;
    if (kept && sameEpoch && fresh && kept.deviceSerial < current) {
      offerTakeBack();
      return null;
    }
    try {
      return await bindDevice(ctx.api, seatId);
    } catch {
      return kept && sameEpoch && fresh ? kept : null; // offline now: the kept key may still do
    }
  }

  function offerTakeBack() {
    const button = h("button", { type: "button", id: "use-this-phone", text: "Use this phone instead" });
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        device = await bindDevice(ctx.api, seatId);
        replace(deviceNote, "Codes are made on this phone and work without network.");
        await showDeviceCode();
      } catch (err) {
        button.disabled = false;
        replace(deviceNote, message("error", describeError(err)));
      }
    });
    replace(deviceNote, "This ticket was opened on another phone, so codes from this one are refused. ", button);
  }

  async function showDeviceCode() {
    if (checkedIn || !device) return;
    const t = Math.floor(ctx.serverNow() / 1000);
    const payload = await deviceCode(device, t);
    code = { payload, expiresAt: (t + CODE_TTL_S) * 1000 };
    replace(qrBox, qrSvg(payload, `Entry code for row ${ticket.row} seat ${ticket.number}`));
    qrBox.dataset.payload = payload;
    replace(stateNode);
  }

  async function fetchCode() {
    if (checkedIn || fetching) return;
    fetching = true;
    try {
      const data = await ctx.api.get(`/api/tickets/${seatId}/qr`);
      code = { payload: data.qr_payload, expiresAt: Date.parse(data.expires_at) };
      replace(qrBox, qrSvg(data.qr_payload, `Entry code for row ${ticket.row} seat ${ticket.number}`));
      qrBox.dataset.payload = data.qr_payload;
      replace(stateNode);
      const wait = Math.max(1_000, code.expiresAt - ctx.serverNow() - REPLACE_BEFORE_EXPIRY_MS);
      ctx.timers.after(wait, fetchCode);
    } catch (err) {
      if (err.code === "SEAT_UNAVAILABLE" || err.code === "NOT_SEAT_OWNER") {
        await pollStatus(); // checked in or transferred since: the status poll says which
      } else {
        replace(stateNode, message("warn", `Could not renew the code: ${describeError(err)}. Retrying…`));
        ctx.timers.after(RETRY_MS, fetchCode);
      }
    } finally {
      fetching = false;
    }
  }

  function tick() {
    if (checkedIn || !code) return;
    const left = (code.expiresAt - ctx.serverNow()) / 1000;
    countdown.textContent = mmss(left);
    const svg = qrBox.querySelector("svg");
    // never show a dead code as if it would work at the door
    if (svg) svg.classList.toggle("stale", left <= 0);
    if (left <= 0) countdown.textContent = device ? "expired" : "expired — reconnect to renew";
  }

  async function pollStatus() {
    // no network: nothing to learn, and the phone's own codes keep coming
    if (navigator.onLine === false) return;
    try {
      const tickets = await ctx.api.get("/api/tickets");
      const now = tickets.find((t) => t.seat_id === seatId);
      if (!now) {
        checkedIn = true;
        replace(stateNode, message("warn", "This ticket is no longer yours (it was transferred)."));
        replace(qrBox);
        countdownLine.hidden = true;
      } else if (now.status === "CHECKED_IN") {
        showCheckedIn(now);
      }
    } catch {
      // offline for a moment: the code on screen stays until it expires
    }
  }

  if (ticket.status === "CHECKED_IN") {
    showCheckedIn(ticket);
  } else {
    device = await prepareDevice();
    if (device) {
      deviceNote.textContent = "Codes are made on this phone and work without network.";
      await showDeviceCode();
      ctx.timers.every(DEVICE_CODE_EVERY_MS, showDeviceCode);
    } else {
      await fetchCode();
    }
    tick();
  }
  ctx.timers.every(250, tick);
  ctx.timers.every(STATUS_POLL_MS, () => {
    if (!checkedIn) pollStatus();
  });
  keepAwake(ctx, wakeNote);
}

async function findTicket(ctx, seatId) {
  const tickets = await ctx.api.get("/api/tickets");
  return tickets.find((t) => t.seat_id === seatId) || null;
}

// The phone must not dim or lock while the code is held up to the camera.
function keepAwake(ctx, note) {
  if (!("wakeLock" in navigator)) {
    note.textContent = "Tip: turn up the brightness; this browser may dim the screen.";
    return;
  }
  let lock = null;
  let stopped = false;
  const request = async () => {
    if (stopped || document.visibilityState !== "visible") return;
    try {
      lock = await navigator.wakeLock.request("screen");
    } catch {
      note.textContent = "Tip: turn up the brightness; the screen may dim.";
    }
  };
  // the browser drops the lock when the page is hidden; take it again on return
  const onVisible = () => request();
  document.addEventListener("visibilitychange", onVisible);
  ctx.timers.onStop(() => {
    stopped = true;
    document.removeEventListener("visibilitychange", onVisible);
    if (lock) lock.release().catch(() => {});
  });
  request();
}
