// An event's page: the seat map (status colours, price categories, no owner data), then
// pick a seat → hold with a countdown → pay, with the OTP step for flagged buyers.
import { h, replace, field, formValues, message, describeError, credits, dateTime, mmss } from "../shared/ui.js";

const STATUS_TEXT = { AVAILABLE: "available", HELD: "on hold", SOLD: "sold", CHECKED_IN: "sold" };

function rowOrder(a, b) {
  // A, B, … Z, AA: shorter labels first, then alphabetical
  return a.length - b.length || a.localeCompare(b);
}

// SCHEDULED, or CANCELLING while the refunds run, then CANCELLED: no sale either way
export function isCancelled(event) {
  return event.status === "CANCELLED" || event.status === "CANCELLING";
}

export function cancelledNotice(event) {
  return h("div", { class: "msg msg-error", role: "status", id: "event-cancelled" },
    h("p", {}, h("strong", { text: "This event is cancelled." }),
      event.status === "CANCELLING" ? " Tickets are being paid back." : " Every ticket was paid back in credits."),
    event.cancel_reason ? h("p", { class: "cancel-reason", text: `Reason: ${event.cancel_reason}` }) : null,
  );
}

export async function eventView(ctx, eventId) {
  ctx.show(h("p", { class: "muted", text: "Loading the seat map…" }));
  let event;
  try {
    event = await ctx.api.get(`/api/events/${eventId}`);
  } catch (err) {
    ctx.show(h("h1", { text: "Event" }), message("error", describeError(err)));
    return;
  }
  if (isCancelled(event)) {
    // nothing is on sale: every ticket was (or is being) paid back, so no seat map to pick from
    ctx.show(
      h("h1", { text: event.name }),
      h("p", { class: "muted", text: `${(event.venue && event.venue.name) || ""} · ${event.hall_id} · ${dateTime(event.event_date)}` }),
      cancelledNotice(event),
    );
    return;
  }
  const categories = Object.keys(event.pricing || {});
  const catClass = (cat) => `cat-${Math.max(0, categories.indexOf(cat)) % 5}`;

  const selection = h("section", { class: "panel", id: "selection", "aria-live": "polite" });
  const mapNode = h("div", { class: "seatmap", id: "seatmap" });
  let selected = null;
  let holding = false;

  function drawMap(seats) {
    const rows = new Map();
    for (const seat of seats) {
      if (!rows.has(seat.row)) rows.set(seat.row, []);
      rows.get(seat.row).push(seat);
    }
    const rowNodes = [...rows.keys()].sort(rowOrder).map((row) =>
      h(
        "div",
        { class: "seat-row", role: "group", "aria-label": `Row ${row}` },
        h("span", { class: "row-label", "aria-hidden": "true", text: row }),
        rows
          .get(row)
          .sort((a, b) => a.number - b.number)
          .map((seat) => {
            const free = seat.status === "AVAILABLE";
            return h("button", {
              type: "button",
              class: `seat ${catClass(seat.category)}`,
              dataset: { seatId: seat.seat_id, status: seat.status, row: seat.row, number: seat.number },
              "aria-label": `Row ${seat.row} seat ${seat.number}, ${seat.category}, ${credits(seat.price)}, ${STATUS_TEXT[seat.status] || seat.status}`,
              "aria-pressed": selected && selected.seat_id === seat.seat_id ? "true" : "false",
              disabled: !free || holding,
              text: seat.number,
              onclick: () => choose(seat),
            });
          }),
        h("span", { class: "row-label", "aria-hidden": "true", text: row }),
      ),
    );
    replace(mapNode, h("div", { class: "stage", "aria-hidden": "true", text: "STAGE" }), rowNodes);
  }

  async function reloadMap() {
    try {
      event = await ctx.api.get(`/api/events/${eventId}`);
      drawMap(event.seats);
    } catch {
      // keep the last map; the next action reports any problem
    }
  }

  function choose(seat) {
    selected = seat;
    drawMap(event.seats);
    const signedIn = ctx.session.signedIn;
    replace(
      selection,
      h("h2", { text: "Your seat" }),
      h("p", { class: "seat-line", id: "selected-seat", text: `Row ${seat.row}, seat ${seat.number}` }),
      h("p", { text: `${seat.category} · ${credits(seat.price)}` }),
      signedIn
        ? h("button", { type: "button", id: "hold-button", text: "Hold this seat", onclick: () => hold(seat) })
        : h("a", { href: "#/login", id: "login-to-buy", text: "Log in to buy this seat", onclick: () => sessionStorage.setItem("tr.next", location.hash) }),
    );
  }

  async function hold(seat) {
    replace(selection, message("info", "Holding the seat…"));
    try {
      const order = await ctx.api.post("/api/reserve", { seat_id: seat.seat_id });
      holding = true;
      await reloadMap();
      showHold(seat, order);
    } catch (err) {
      replace(selection, message("error", describeError(err)));
      await reloadMap();
    }
  }

  function showHold(seat, order) {
    const heldUntil = Date.parse(order.held_until);
    const countdown = h("span", { class: "countdown", id: "hold-countdown" });
    const status = h("div", { id: "pay-status", "aria-live": "polite" });
    const payButton = h("button", { type: "button", id: "pay-button", text: `Pay ${credits(order.price ?? seat.price)}` });
    const tick = () => {
      const left = (heldUntil - ctx.serverNow()) / 1000;
      countdown.textContent = mmss(left);
      if (left <= 0 && holding) {
        holding = false;
        payButton.disabled = true;
        replace(status, message("warn", "The hold ran out and the seat was released. Pick a seat again."));
        reloadMap();
      }
    };
    replace(
      selection,
      h("h2", { text: "Seat on hold" }),
      h("p", { class: "seat-line", text: `Row ${seat.row}, seat ${seat.number}` }),
      h("p", {}, "Held for you for ", countdown, ". Pay before it runs out."),
      payButton,
      status,
    );
    tick();
    ctx.timers.every(250, tick);
    payButton.addEventListener("click", () => pay(seat, order, status, payButton));
  }

  async function pay(seat, order, status, payButton) {
    payButton.disabled = true;
    replace(status, message("info", "Paying…"));
    try {
      const paid = await ctx.api.post("/api/pay", { order_id: order.order_id });
      holding = false;
      ctx.timers.stop();
      const me = await ctx.refreshUser();
      replace(
        selection,
        h("h2", { text: "It's yours" }),
        message("ok", `Paid ${credits(paid.credits_charged)}. Balance now ${credits(me ? me.credit_balance : paid.remaining_balance)}.`),
        h("p", {}, h("a", { href: `#/tickets/${seat.seat_id}`, id: "open-ticket", class: "seat-line", text: "Open your ticket" })),
      );
      await reloadMap();
    } catch (err) {
      payButton.disabled = false;
      if (err.code === "OTP_REQUIRED") {
        askPurchaseCode(order, status, () => pay(seat, order, status, payButton));
      } else if (err.code === "INSUFFICIENT_CREDITS") {
        const me = await ctx.refreshUser();
        const balance = err.details.current_balance ?? (me && me.credit_balance);
        const price = err.details.required ?? order.price ?? seat.price;
        replace(
          status,
          h("div", { class: "msg msg-error", role: "alert", id: "insufficient" },
            h("p", { text: "Not enough credits for this seat." }),
            h("p", { text: `Your balance: ${credits(balance)} · Price: ${credits(price)}` }),
          ),
        );
      } else {
        replace(status, message("error", describeError(err)));
        if (err.code === "HOLD_EXPIRED") {
          holding = false;
          payButton.disabled = true;
          reloadMap();
        }
      }
    }
  }

  function askPurchaseCode(order, status, retryPay) {
    const note = h("div", { "aria-live": "polite" });
    const form = h(
      "form",
      { id: "purchase-otp-form" },
      message("info", "For your security we sent a 6-digit code to your phone. Enter it to finish paying."),
      field("Code", h("input", { name: "otp_code", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: "6", required: true })),
      h("div", { class: "row" },
        h("button", { type: "submit", text: "Confirm and pay" }),
        h("button", { type: "button", class: "secondary", text: "Send a new code", onclick: resend }),
      ),
      note,
    );
    async function resend() {
      try {
        await ctx.api.post("/api/otp/resend", { context: "purchase", reference_id: order.order_id });
        replace(note, message("ok", "A new code is on its way; the old one no longer works."));
      } catch (err) {
        replace(note, message("error", describeError(err)));
      }
    }
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const { otp_code } = formValues(form);
      try {
        await ctx.api.post("/api/verify-otp", { context: "purchase", reference_id: order.order_id, otp_code });
        await retryPay();
      } catch (err) {
        const left = err.details && err.details.attempts_left;
        replace(note, message("error", describeError(err) + (left !== undefined ? ` — ${left} attempts left` : "")));
      }
    });
    replace(status, form);
  }

  const legend = h(
    "ul",
    { class: "legend", "aria-label": "Price categories and seat status" },
    categories.map((cat) =>
      h("li", {}, h("span", { class: `swatch ${catClass(cat)}`, "aria-hidden": "true" }), `${cat}: ${credits(event.pricing[cat])}`),
    ),
    h("li", {}, h("span", { class: "swatch held", "aria-hidden": "true" }), "On hold"),
    h("li", {}, h("span", { class: "swatch sold", "aria-hidden": "true" }), "Sold"),
  );
  replace(selection, h("p", { class: "muted", text: "Pick a free seat on the map." }));
  drawMap(event.seats);
  ctx.show(
    h("h1", { text: event.name }),
    h("p", { class: "muted", text: `${(event.venue && event.venue.name) || ""} · ${event.hall_id} · ${dateTime(event.event_date)}` }),
    h("p", { text: `${event.available_seats} of ${event.total_seats} seats free` }),
    legend,
    h("div", { class: "panel" }, mapNode),
    selection,
  );
}
