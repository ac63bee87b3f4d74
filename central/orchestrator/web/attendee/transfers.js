// Transfers: offer one of my tickets to an e-mail address at a price, the transfers offered to me
// and by me, each confirmed with my own code, and a dispute for a completed one.
import { h, replace, field, formValues, message, describeError, credits, dateTime } from "../shared/ui.js";

const LIST_POLL_MS = 4_000;
const STATUS_BADGE = {
  PENDING_OTP: "badge badge-warn",
  COMPLETED: "badge badge-ok",
  DISPUTED: "badge badge-bad",
  REVERSED: "badge",
  FAILED: "badge badge-bad",
};

export async function transfersView(ctx, preselectSeat) {
  const offerStatus = h("div", { id: "offer-status", "aria-live": "polite" });
  const incoming = h("section", { class: "panel", id: "transfers-in", "aria-labelledby": "in-title" });
  const outgoing = h("section", { class: "panel", id: "transfers-out", "aria-labelledby": "out-title" });
  const ticketSelect = h("select", { name: "seat_id", required: true });
  const offerForm = h(
    "form",
    { class: "panel", id: "offer-form" },
    h("h2", { text: "Offer a ticket" }),
    field("Ticket", ticketSelect),
    field("Buyer's e-mail", h("input", { name: "buyer_email", type: "email", required: true })),
    field("Price in credits", h("input", { name: "credits_amount", type: "number", min: "0", step: "1", value: "0", required: true })),
    h("button", { type: "submit", text: "Send offer" }),
    offerStatus,
  );
  ctx.show(h("h1", { text: "Transfers" }), offerForm, incoming, outgoing);

  async function loadTickets() {
    const tickets = await ctx.api.get("/api/tickets");
    const chosen = ticketSelect.value || preselectSeat;
    const sellable = tickets.filter((t) => t.status === "SOLD");
    replace(
      ticketSelect,
      sellable.length ? null : h("option", { value: "", text: "You have no ticket to offer" }),
      sellable.map((t) =>
        h("option", {
          value: t.seat_id,
          selected: t.seat_id === chosen,
          text: `${(t.event && t.event.name) || "Event"} — row ${t.row}, seat ${t.number}`,
        }),
      ),
    );
  }
  try {
    await loadTickets();
  } catch (err) {
    replace(offerStatus, message("error", describeError(err)));
  }

  offerForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const values = formValues(offerForm);
    const amount = Number(values.credits_amount);
    if (!values.seat_id) return;
    try {
      await ctx.api.post("/api/transfer/initiate", {
        seat_id: values.seat_id,
        buyer_email: values.buyer_email,
        credits_amount: Number.isInteger(amount) ? amount : -1,
      });
      replace(offerStatus, message("ok", "Offer sent. You and the buyer each got a code: enter yours below to confirm."));
      await refreshLists(true);
    } catch (err) {
      replace(offerStatus, message("error", describeError(err)));
    }
  });

  function transferRow(t, side) {
    const status = h("div", { "aria-live": "polite" });
    const other = side === "buyer" ? t.seller_email : t.buyer_email;
    const seatText = t.row ? `row ${t.row}, seat ${t.number}` : "";
    const actions = [];
    if (t.status === "PENDING_OTP" && !t.i_confirmed) {
      const form = h(
        "form",
        { class: "inline-form confirm-form", dataset: { transferId: t.transfer_id } },
        field("Your code", h("input", { name: "otp_code", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: "6", required: true })),
        h("button", { type: "submit", text: side === "buyer" ? `Accept and pay ${credits(t.credits_amount)}` : "Confirm" }),
        h("button", { type: "button", class: "link-button", text: "Send me a new code", onclick: resend }),
      );
      async function resend() {
        try {
          await ctx.api.post("/api/otp/resend", { context: "transfer", reference_id: t.transfer_id });
          replace(status, message("ok", "A new code is on its way; the old one no longer works."));
        } catch (err) {
          replace(status, message("error", describeError(err)));
        }
      }
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        try {
          const done = await ctx.api.post("/api/transfer/confirm", { transfer_id: t.transfer_id, otp_code: formValues(form).otp_code });
          replace(status, message("ok", done.status === "COMPLETED" ? "Transfer complete." : "Confirmed. Waiting for the other party."));
          await ctx.refreshUser();
          await refreshLists(true);
        } catch (err) {
          const left = err.details && err.details.attempts_left;
          replace(status, message("error", describeError(err) + (left !== undefined ? ` — ${left} attempts left` : "")));
        }
      });
      actions.push(form);
    } else if (t.status === "PENDING_OTP") {
      actions.push(h("p", { class: "muted", text: "You confirmed; waiting for the other party." }));
    }
    if (t.status === "COMPLETED") {
      const form = h(
        "form",
        { class: "inline-form dispute-form", dataset: { transferId: t.transfer_id } },
        field("What went wrong?", h("input", { name: "reason", maxlength: "500", required: true })),
        h("button", { type: "submit", class: "secondary", text: "Dispute" }),
      );
      actions.push(h("details", { class: "report" }, h("summary", { text: "Report a problem with this transfer" }), form));
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        try {
          await ctx.api.post("/api/transfer/dispute", { transfer_id: t.transfer_id, reason: formValues(form).reason });
          replace(status, message("ok", "Dispute filed: the organiser will review it."));
          await refreshLists(true);
        } catch (err) {
          replace(status, message("error", describeError(err)));
        }
      });
    }
    return h(
      "li",
      { class: "panel transfer", dataset: { transferId: t.transfer_id, status: t.status } },
      h("div", { class: "spread" },
        h("strong", { text: `${(t.event && t.event.name) || "Ticket"}${seatText ? ` — ${seatText}` : ""}` }),
        h("span", { class: STATUS_BADGE[t.status] || "badge", text: t.status.replace("_", " ") }),
      ),
      h("p", { class: "muted", text: `${side === "buyer" ? "From" : "To"} ${other} · ${credits(t.credits_amount)} · ${dateTime(t.created_at)}` }),
      disputeState(t, side),
      actions,
      status,
    );
  }

  function busy(section) {
    // never redraw under someone typing a code
    return [...section.querySelectorAll("input")].some((i) => i.value || i === document.activeElement);
  }

  let lastSeen = "";
  async function refreshLists(force) {
    try {
      const [toMe, byMe] = await Promise.all([
        ctx.api.get("/api/transfers?role=buyer"),
        ctx.api.get("/api/transfers?role=seller"),
      ]);
      // a transfer that moved on changes my tickets and my balance too
      const seen = [...toMe, ...byMe].map((t) => `${t.transfer_id}:${t.status}`).join(",");
      if (seen !== lastSeen) {
        if (lastSeen) {
          ctx.refreshUser();
          loadTickets().catch(() => {});
        }
        lastSeen = seen;
      }
      if (force || !busy(incoming)) {
        replace(
          incoming,
          h("h2", { id: "in-title", text: "Offered to me" }),
          toMe.length ? h("ul", { class: "plain-list" }, toMe.map((t) => transferRow(t, "buyer"))) : h("p", { class: "muted", text: "Nothing offered to you." }),
        );
      }
      if (force || !busy(outgoing)) {
        replace(
          outgoing,
          h("h2", { id: "out-title", text: "Offered by me" }),
          byMe.length ? h("ul", { class: "plain-list" }, byMe.map((t) => transferRow(t, "seller"))) : h("p", { class: "muted", text: "You have not offered any ticket." }),
        );
      }
    } catch (err) {
      replace(incoming, message("error", describeError(err)));
    }
  }

  await refreshLists(true);
  ctx.timers.every(LIST_POLL_MS, () => refreshLists(false));
}

// Where a dispute stands, in the words of the side reading it. The seller's disputed credits stay
// in the balance but cannot be spent until the organiser reverses the transfer or closes the dispute.
function disputeState(t, side) {
  let text = null;
  if (t.status === "DISPUTED") {
    text = side === "seller"
      ? `Disputed: ${credits(t.credits_amount)} of your balance are held until the organiser decides.`
      : "Disputed: the organiser will review it.";
  } else if (t.status === "REVERSED") {
    text = side === "seller"
      ? `Reversed: the ticket is yours again and ${credits(t.credits_amount)} went back to the buyer.`
      : `Reversed: ${credits(t.credits_amount)} were paid back to you and the ticket returned.`;
  } else if (t.status === "COMPLETED" && t.dispute_reason) {
    text = "Dispute closed: the organiser let the transfer stand.";
  }
  if (!text) return null;
  return h("div", { class: "dispute-state" },
    h("p", { text }),
    t.dispute_reason ? h("p", { class: "muted", text: `Reason given: ${t.dispute_reason}` }) : null);
}
