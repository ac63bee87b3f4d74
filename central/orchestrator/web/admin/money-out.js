// Money going back on an event's live view: cancel the whole event (every ticket refunded) or
// refund one order by its id. Both ask for a second click, since neither can be undone.
import { h, replace, field, formValues, message, describeError, credits } from "../shared/ui.js";

const RETRY_RUNNING_MS = 2_000;

export function moneyOutPanel(ctx, eventId) {
  const state = h("div", { id: "event-state", "aria-live": "polite" });
  const cancelSlot = h("div", { id: "cancel-slot" });
  const cancelStatus = h("div", { id: "cancel-status", "aria-live": "polite" });
  const refundStatus = h("div", { id: "refund-status", "aria-live": "polite" });
  let event = null;

  // ----- the event's own state (the public event answer carries status and reason) -----

  async function refresh() {
    try {
      event = await ctx.api.get(`/api/events/${eventId}`);
      drawState();
    } catch (err) {
      replace(state, message("error", describeError(err)));
    }
  }

  function drawState() {
    const cancelled = event.status === "CANCELLED" || event.status === "CANCELLING";
    replace(state,
      h("p", {}, "Status: ",
        h("span", {
          id: "event-status",
          class: cancelled ? "badge badge-bad" : "badge badge-ok",
          text: event.status === "CANCELLING" ? "CANCELLING (refunds running)" : event.status || "SCHEDULED",
        })),
      event.cancel_reason ? h("p", { class: "muted", text: `Reason: ${event.cancel_reason}` }) : null);
    if (cancelled) replace(cancelSlot);
    else if (!cancelSlot.firstChild) replace(cancelSlot, cancelForm());
  }

  // ----- cancel the event -----

  function cancelForm() {
    const form = h("form", { id: "cancel-event-form", class: "inline-form" },
      field("Reason (the attendees see it)", h("input", { name: "reason", required: true, maxlength: "500" })),
      h("button", { type: "submit", class: "danger", id: "cancel-event", text: "Cancel event…" }));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      confirmCancel(formValues(form).reason);
    });
    return form;
  }

  function confirmCancel(reason) {
    const yes = h("button", { type: "button", class: "danger", id: "confirm-cancel", text: "Yes, cancel and refund everyone" });
    const no = h("button", { type: "button", class: "secondary", id: "keep-event", text: "Keep the event" });
    yes.addEventListener("click", () => {
      yes.disabled = true;
      no.disabled = true;
      cancel(reason);
    });
    no.addEventListener("click", () => replace(cancelStatus));
    replace(cancelStatus,
      h("div", { class: "msg msg-warn", role: "alert" },
        h("p", { text: `Cancel “${(event && event.name) || "this event"}”? Every ticket sold is refunded in credits and the seats leave sale. This cannot be undone.` }),
        h("div", { class: "row" }, yes, no)));
  }

  async function cancel(reason) {
    replace(cancelStatus, message("info", "Cancelling: ending holds and transfers, then refunding every order…"));
    try {
      const done = await ctx.api.post(`/api/admin/events/${eventId}/cancel`, { reason });
      replace(cancelStatus, message("ok", `Event cancelled; ${done.orders_refunded} orders refunded.`));
      await refresh();
    } catch (err) {
      if (err.code === "SAGA_IN_PROGRESS") {
        // another call (or recovery) is still refunding: asking again answers the finished result
        replace(cancelStatus, message("info", "Refunds still running…"));
        ctx.timers.after(RETRY_RUNNING_MS, () => cancel(reason));
        await refresh();
        return;
      }
      replace(cancelStatus, message("error", describeError(err)));
    }
  }

  // ----- refund one order -----

  const refundForm = h("form", { id: "refund-form", class: "inline-form" },
    field("Order id", h("input", { name: "order_id", required: true, pattern: "[0-9a-fA-F\\-]{36}", autocomplete: "off", spellcheck: "false" }),
      "The buyer sees it under My tickets; the seat goes back on sale."),
    h("button", { type: "submit", class: "secondary", id: "refund-order", text: "Refund order…" }));
  refundForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const orderId = formValues(refundForm).order_id.trim().toLowerCase();
    const yes = h("button", { type: "button", class: "danger", id: "confirm-refund", text: "Yes, refund it" });
    yes.addEventListener("click", () => {
      yes.disabled = true;
      refund(orderId);
    });
    replace(refundStatus, h("div", { class: "msg msg-warn", role: "alert" },
      h("p", { text: `Refund order ${orderId}? The buyer gets the credits back and loses the ticket.` }), yes));
  });

  async function refund(orderId) {
    try {
      const done = await ctx.api.post(`/api/admin/orders/${encodeURIComponent(orderId)}/refund`);
      replace(refundStatus, message("ok", `Order refunded: ${credits(done.credits_refunded)} back to the buyer.`));
      refundForm.reset();
    } catch (err) {
      replace(refundStatus, message("error", describeError(err)));
    }
  }

  const node = h("section", { class: "panel", id: "money-out", "aria-labelledby": "money-out-title" },
    h("h2", { id: "money-out-title", text: "Cancellation and refunds" }),
    state, cancelSlot, cancelStatus,
    h("h3", { text: "Refund one order" }), refundForm, refundStatus);
  return { node, refresh };
}
