// The attendee app: events and seat map, buying, tickets with the live QR, transfers, credits.
import { Session, makeApi, serverNow } from "../shared/api.js";
import { h, replace, field, formValues, message, describeError, router, ViewTimers, credits, dateTime } from "../shared/ui.js";
import { ticketView } from "./ticket.js";
import { eventView, isCancelled } from "./event.js";
import { transfersView } from "./transfers.js";

const session = new Session("tr.attendee");
const api = makeApi(session);
const viewNode = document.getElementById("view");
let timers = new ViewTimers();

// Every view gets the same small context: the API, the session, its own timers, a way to show
// itself and to go elsewhere.
function context() {
  timers.stop();
  const mine = new ViewTimers();
  timers = mine;
  document.body.classList.remove("ticket-mode");
  // A view still loading when the user has moved on must not paint over the newer one.
  const showIfCurrent = (...children) => {
    if (timers === mine) show(...children);
  };
  return { api, session, timers: mine, show: showIfCurrent, go, refreshUser, serverNow };
}

function show(...children) {
  replace(viewNode, ...children);
}

function go(hash) {
  if (location.hash === hash) dispatch();
  else location.hash = hash;
}

function needsLogin() {
  if (session.signedIn) return false;
  sessionStorage.setItem("tr.next", location.hash);
  go("#/login");
  return true;
}

async function refreshUser() {
  if (!session.signedIn) return null;
  try {
    const me = await api.get("/api/me");
    session.setUser(me);
    return me;
  } catch {
    return session.user;
  }
}

// ----- header -----

const NAV_SIGNED_IN = [
  ["#/events", "Events"],
  ["#/tickets", "My tickets"],
  ["#/transfers", "Transfers"],
  ["#/credits", "Credits"],
];
const NAV_SIGNED_OUT = [
  ["#/events", "Events"],
  ["#/login", "Log in"],
  ["#/register", "Register"],
];

function renderHeader() {
  const items = session.signedIn ? NAV_SIGNED_IN : NAV_SIGNED_OUT;
  const current = location.hash.split("/").slice(0, 2).join("/") || "#/events";
  replace(
    document.getElementById("nav"),
    ...items.map(([href, label]) =>
      h("a", { href, "aria-current": href === current ? "page" : null, text: label }),
    ),
  );
  const who = document.getElementById("who");
  if (!session.signedIn) {
    replace(who);
    return;
  }
  const user = session.user || {};
  replace(
    who,
    h("span", { id: "who-email", class: "who-email", text: user.email || "" }),
    user.credit_balance !== undefined ? h("span", { id: "who-balance", text: credits(user.credit_balance) }) : null,
    h("button", { type: "button", id: "logout", onclick: logout, text: "Log out" }),
  );
}

async function logout() {
  await session.end(api);
  go("#/login");
}

session.onChange(renderHeader);
window.addEventListener("hashchange", renderHeader);

// ----- sign in and register -----

function loginView() {
  const ctx = context();
  const status = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { id: "login-form", class: "panel narrow" },
    h("h1", { text: "Log in" }),
    field("E-mail", h("input", { name: "email", type: "email", autocomplete: "username", required: true })),
    field("Password", h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    h("button", { type: "submit", text: "Log in" }),
    status,
    h("p", {}, "New here? ", h("a", { href: "#/register", text: "Create an account" })),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const { email, password } = formValues(form);
    replace(status, message("info", "Signing in…"));
    try {
      const data = await api.anonymous("POST", "/api/auth/login", { email, password });
      const next = sessionStorage.getItem("tr.next");
      sessionStorage.removeItem("tr.next");
      session.save(data.access_token, data.refresh_token, data.user);
      // navigate at once: the header's balance may fill in a moment later
      ctx.go(next && next !== "#/login" ? next : "#/tickets");
      refreshUser();
    } catch (err) {
      replace(status, message("error", describeError(err)));
    }
  });
  ctx.show(form);
}

function registerView() {
  const ctx = context();
  const status = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { id: "register-form", class: "panel narrow" },
    h("h1", { text: "Create an account" }),
    field("E-mail", h("input", { name: "email", type: "email", autocomplete: "email", required: true })),
    field(
      "Mobile phone",
      h("input", { name: "phone", type: "tel", autocomplete: "tel", required: true }),
      "We send a 6-digit code to this number.",
    ),
    field(
      "Password",
      h("input", { name: "password", type: "password", autocomplete: "new-password", minlength: "8", required: true }),
      "At least 8 characters.",
    ),
    h("button", { type: "submit", text: "Send me a code" }),
    status,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const { email, phone, password } = formValues(form);
    replace(status, message("info", "Creating your account…"));
    try {
      const data = await api.anonymous("POST", "/api/auth/register", { email, phone, password });
      showRegistrationCode(ctx, data.user_id, email);
    } catch (err) {
      replace(status, message("error", describeError(err)));
    }
  });
  ctx.show(form);
}

function showRegistrationCode(ctx, userId, email) {
  const status = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { id: "verify-form", class: "panel narrow" },
    h("h1", { text: "Enter your code" }),
    h("p", { class: "muted" }, "We sent a 6-digit code to your phone for ", h("strong", { text: email }), "."),
    field(
      "Code",
      h("input", {
        name: "otp_code", inputmode: "numeric", autocomplete: "one-time-code",
        pattern: "[0-9]{6}", maxlength: "6", required: true,
      }),
    ),
    h("div", { class: "row" },
      h("button", { type: "submit", text: "Verify" }),
      h("button", { type: "button", class: "secondary", id: "resend", text: "Send a new code", onclick: resend }),
    ),
    status,
  );
  async function resend() {
    try {
      await api.anonymous("POST", "/api/otp/resend", { context: "registration", reference_id: userId });
      replace(status, message("ok", "A new code is on its way; the old one no longer works."));
    } catch (err) {
      replace(status, message("error", describeError(err)));
    }
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const { otp_code } = formValues(form);
    try {
      const data = await api.anonymous("POST", "/api/auth/verify-registration", { user_id: userId, otp_code });
      session.save(data.access_token, data.refresh_token, data.user);
      ctx.go("#/events");
      refreshUser();
    } catch (err) {
      const left = err.details && err.details.attempts_left;
      const extra = left !== undefined ? ` — ${left} attempts left` : "";
      replace(status, message("error", describeError(err) + extra));
    }
  });
  ctx.show(form);
}

// ----- events -----

async function eventsView() {
  const ctx = context();
  ctx.show(h("h1", { text: "Events" }), h("p", { class: "muted", text: "Loading events…" }));
  try {
    const events = await ctx.api.get("/api/events?per_page=100");
    const cards = events.map((ev) => {
      const prices = Object.values(ev.pricing || {});
      const from = prices.length ? Math.min(...prices) : null;
      return h(
        "a",
        { class: "card", href: `#/events/${ev.event_id}`, dataset: { eventId: ev.event_id } },
        h("h2", { text: ev.name }),
        h("p", { class: "muted" }, `${(ev.venue && ev.venue.name) || ""} · ${ev.hall_id}`),
        h("p", { text: dateTime(ev.event_date) }),
        isCancelled(ev)
          ? h("p", {}, h("span", { class: "badge badge-bad event-cancelled", text: "Cancelled" }))
          : h("p", {},
              h("span", { class: ev.available_seats ? "badge badge-ok" : "badge", text: `${ev.available_seats} of ${ev.total_seats} seats free` }),
              from !== null ? ` · from ${credits(from)}` : "",
            ),
      );
    });
    ctx.show(
      h("h1", { text: "Events" }),
      cards.length ? h("div", { class: "grid" }, cards) : h("p", { class: "muted", text: "No events on sale yet." }),
    );
  } catch (err) {
    ctx.show(h("h1", { text: "Events" }), message("error", describeError(err)));
  }
}

// ----- tickets -----

async function ticketsView() {
  if (needsLogin()) return;
  const ctx = context();
  ctx.show(h("h1", { text: "My tickets" }), h("p", { class: "muted", text: "Loading…" }));
  try {
    // a refunded ticket is no longer the attendee's: it leaves the list and is named below it
    const [tickets, orders] = await Promise.all([ctx.api.get("/api/tickets"), ctx.api.get("/api/orders?per_page=100")]);
    const refunded = orders.filter((o) => o.status === "REFUNDED");
    if (refunded.length) ctx.refreshUser(); // the header's balance may predate the refunds
    // the order id is what the organiser asks for to refund one ticket (orders come newest first)
    const orderOf = new Map();
    for (const o of orders) if (o.status === "CONFIRMED" && !orderOf.has(o.seat_id)) orderOf.set(o.seat_id, o.order_id);
    const cards = tickets.map((t) =>
      h(
        "a",
        { class: "card", href: `#/tickets/${t.seat_id}`, dataset: { seatId: t.seat_id } },
        h("h2", { text: (t.event && t.event.name) || "Event" }),
        h("p", { class: "muted", text: `${(t.event && t.event.venue && t.event.venue.name) || ""} · ${dateTime(t.event && t.event.event_date)}` }),
        h("p", {},
          h("strong", { text: `Row ${t.row}, seat ${t.number}` }), " ",
          h("span", {
            class: t.status === "CHECKED_IN" ? "badge badge-ok" : "badge",
            text: t.status === "CHECKED_IN" ? "Checked in" : "Valid",
          }),
        ),
        orderOf.has(t.seat_id) ? h("p", { class: "muted order-ref", text: `Order ${orderOf.get(t.seat_id)}` }) : null,
      ),
    );
    ctx.show(
      h("h1", { text: "My tickets" }),
      cards.length
        ? h("div", { class: "grid", id: "ticket-list" }, cards)
        : h("p", { class: "muted", id: "ticket-list" }, "No tickets yet. ", h("a", { href: "#/events", text: "Find an event" })),
      refunded.length ? refundedList(refunded) : null,
    );
  } catch (err) {
    ctx.show(h("h1", { text: "My tickets" }), message("error", describeError(err)));
  }
}

function refundedList(orders) {
  return h("section", { "aria-labelledby": "refunded-title" },
    h("h2", { id: "refunded-title", text: "Refunded tickets" }),
    h("ul", { class: "plain-list", id: "refunded-list" }, orders.map((o) =>
      h("li", { class: "panel", dataset: { orderId: o.order_id, seatId: o.seat_id } },
        h("strong", { text: (o.event && o.event.name) || "Event" }),
        h("p", { class: "muted", text: `Row ${o.row}, seat ${o.number} · ${dateTime(o.event && o.event.event_date)}` }),
        h("p", {},
          h("span", { class: "badge badge-bad", text: "Refunded" }),
          ` ${credits(o.credits_charged)} paid back`),
      ))),
  );
}

// ----- credits -----

const LEDGER_KINDS = {
  GRANT: "Credits added",
  TOPUP: "Top-up",
  PURCHASE: "Purchase",
  REFUND: "Refund",
  TRANSFER_OUT: "Transfer out",
  TRANSFER_IN: "Transfer in",
  REVERSAL: "Transfer reversed",
};

// A card payment ends at the provider's page; the app remembers which top-up it sent the
// customer to, so coming back (or the provider's ?topup= return) shows how it ended.
const PENDING_TOPUP_KEY = "tr.pendingTopup";
const TOPUP_POLL_MS = 1_000;
const TOPUP_POLL_LIMIT = 120;

function topupForm(ctx, onPaid) {
  const status = h("div", { id: "topup-status", "aria-live": "polite" });
  const form = h(
    "form",
    { id: "topup-form", class: "inline-form" },
    field("Amount (credits)", h("input", { name: "amount", type: "number", min: "1", max: "1000000", step: "1", required: true, inputmode: "numeric" })),
    h("button", { type: "submit", text: "Top up by card" }),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const amount = Number(formValues(form).amount);
    replace(status, message("info", "Starting the payment…"));
    try {
      const topup = await ctx.api.post("/api/credits/topup", { amount });
      sessionStorage.setItem(PENDING_TOPUP_KEY, topup.topup_id);
      // the provider's page (card details) lives outside the app; it sends the customer back
      location.assign(topup.checkout_url);
    } catch (err) {
      replace(status, message("error", describeError(err)));
    }
  });
  const pending = sessionStorage.getItem(PENDING_TOPUP_KEY);
  if (pending) followTopup(ctx, pending, status, onPaid);
  return h("section", { class: "panel", "aria-labelledby": "topup-title" }, h("h2", { id: "topup-title", text: "Top up" }), form, status);
}

function followTopup(ctx, topupId, status, onPaid) {
  let polls = 0;
  async function poll() {
    polls += 1;
    try {
      const topup = await ctx.api.get(`/api/credits/topups/${topupId}`);
      if (topup.status === "PAID") {
        sessionStorage.removeItem(PENDING_TOPUP_KEY);
        replace(status, message("ok", `Top-up of ${credits(topup.amount)} received.`));
        onPaid();
        return;
      }
      if (topup.status === "FAILED") {
        sessionStorage.removeItem(PENDING_TOPUP_KEY);
        replace(status, message("error", "The payment could not be started; nothing was charged."));
        return;
      }
      replace(status,
        message("info", `Waiting for the payment of ${credits(topup.amount)}…`),
        h("p", {}, h("a", { href: topup.checkout_url, id: "topup-continue", text: "Continue to the payment page" })));
    } catch (err) {
      if (err.status === 404) {
        sessionStorage.removeItem(PENDING_TOPUP_KEY);
        replace(status);
        return;
      }
      replace(status, message("error", describeError(err)));
    }
    if (polls < TOPUP_POLL_LIMIT) ctx.timers.after(TOPUP_POLL_MS, poll);
  }
  poll();
}

async function creditsView() {
  if (needsLogin()) return;
  const ctx = context();
  ctx.show(h("h1", { text: "Credits" }), h("p", { class: "muted", text: "Loading…" }));
  const balance = h("p", { class: "big-number", id: "balance" });
  const historySlot = h("div", { id: "history-slot" });
  async function load() {
    const [me, history] = await Promise.all([ctx.refreshUser(), ctx.api.get("/api/credits/history?per_page=100")]);
    balance.textContent = credits(me && me.credit_balance);
    replace(historySlot, historyTable(history));
  }
  try {
    await load();
    ctx.show(
      h("h1", { text: "Credits" }),
      h("div", { class: "panel" }, h("h2", { text: "Balance" }), balance),
      topupForm(ctx, () => load().catch(() => {})),
      h("h2", { text: "History" }),
      historySlot,
    );
  } catch (err) {
    ctx.show(h("h1", { text: "Credits" }), message("error", describeError(err)));
  }
}

function historyTable(history) {
  const rows = history.map((e) =>
    h("tr", { dataset: { kind: e.kind } },
      h("td", { text: dateTime(e.created_at) }),
      h("td", { class: "kind", text: LEDGER_KINDS[e.kind] || e.kind }),
      h("td", { class: "num", text: e.amount > 0 ? `+${e.amount}` : String(e.amount) }),
      h("td", { class: "num", text: e.balance_after }),
    ),
  );
  if (!rows.length) return h("p", { class: "muted", text: "No credit movements yet." });
  return h("div", { class: "table-wrap panel", tabindex: "0", role: "region", "aria-label": "Credit history" },
    h("table", { id: "credit-history" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col", text: "When" }),
        h("th", { scope: "col", text: "What" }),
        h("th", { scope: "col", class: "num", text: "Amount" }),
        h("th", { scope: "col", class: "num", text: "Balance after" }),
      )),
      h("tbody", {}, rows),
    ));
}

// ----- routes -----

const dispatch = router(
  [
    [/^\/?$/, () => go("#/events")],
    [/^\/login$/, loginView],
    [/^\/register$/, registerView],
    [/^\/events$/, eventsView],
    [/^\/events\/(?<id>[0-9a-f-]{36})$/, ({ id }) => eventView(context(), id)],
    [/^\/tickets$/, ticketsView],
    [/^\/tickets\/(?<id>[0-9a-f-]{36})$/, ({ id }) => (needsLogin() ? null : ticketView(context(), id))],
    [/^\/transfers(?:\/(?<id>[0-9a-f-]{36}))?$/, ({ id }) => (needsLogin() ? null : transfersView(context(), id))],
    [/^\/credits$/, creditsView],
  ],
  () => go("#/events"),
);

const returned = new URLSearchParams(location.search).get("topup");
if (returned) {
  sessionStorage.setItem(PENDING_TOPUP_KEY, returned);
  window.history.replaceState(null, "", "/#/credits");
}

session.scheduleRefresh();
renderHeader();
if (session.signedIn) refreshUser();
dispatch();
