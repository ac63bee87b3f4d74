// The organiser console: events with live sales and admissions, creating events, gates, users and
// disputed transfers. Admin role only; it uses the same public API as any other client.
import { Session, makeApi, serverNow } from "../shared/api.js";
import { h, replace, field, formValues, message, describeError, router, ViewTimers, credits, dateTime } from "../shared/ui.js";
import { createEventView } from "./create-event.js";
import { liveView } from "./live.js";
import { gatesView } from "./gates.js";

const session = new Session("tr.admin");
const api = makeApi(session);
const viewNode = document.getElementById("view");
let timers = new ViewTimers();

const LIVE_POLL_MS = 1_000;

function context() {
  timers.stop();
  const mine = new ViewTimers();
  timers = mine;
  // A view still loading when the user has moved on must not paint over the newer one.
  const showIfCurrent = (...children) => {
    if (timers === mine) show(...children);
  };
  return { api, session, timers: mine, show: showIfCurrent, go, serverNow };
}

function show(...children) {
  replace(viewNode, ...children);
}

function go(hash) {
  if (location.hash === hash) dispatch();
  else location.hash = hash;
}

function needsAdmin() {
  if (session.signedIn && session.user && session.user.role === "admin") return false;
  go("#/login");
  return true;
}

// ----- header -----

const NAV = [
  ["#/events", "Events"],
  ["#/gates", "Gates"],
  ["#/users", "Users"],
  ["#/transfers", "Disputes"],
];

function renderHeader() {
  const signedIn = session.signedIn;
  const current = location.hash.split("/").slice(0, 2).join("/") || "#/events";
  replace(
    document.getElementById("nav"),
    signedIn
      ? NAV.map(([href, label]) => h("a", { href, "aria-current": href === current ? "page" : null, text: label }))
      : null,
  );
  replace(
    document.getElementById("who"),
    signedIn ? h("span", { class: "who-email", text: (session.user && session.user.email) || "" }) : null,
    signedIn ? h("button", { type: "button", id: "logout", onclick: logout, text: "Log out" }) : null,
  );
}

async function logout() {
  await session.end(api);
  go("#/login");
}

session.onChange(renderHeader);
window.addEventListener("hashchange", renderHeader);

// ----- login -----

function loginView() {
  const ctx = context();
  const status = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { id: "login-form", class: "panel narrow" },
    h("h1", { text: "Organiser log in" }),
    field("E-mail", h("input", { name: "email", type: "email", autocomplete: "username", required: true })),
    field("Password", h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    h("button", { type: "submit", text: "Log in" }),
    status,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const { email, password } = formValues(form);
    try {
      const data = await api.anonymous("POST", "/api/auth/login", { email, password });
      if (!data.user || data.user.role !== "admin") {
        replace(status, message("error", "This account is not an organiser (admin role needed)."));
        return;
      }
      session.save(data.access_token, data.refresh_token, data.user);
      ctx.go("#/events");
    } catch (err) {
      replace(status, message("error", describeError(err)));
    }
  });
  ctx.show(form);
}

// ----- events with live counts -----

function eventsView() {
  if (needsAdmin()) return;
  const ctx = context();
  const table = h("div", { class: "table-wrap wide panel", id: "events-table", tabindex: "0", role: "region", "aria-label": "Events" }, h("p", { class: "muted", text: "Loading…" }));
  const status = h("div", { role: "status" });
  ctx.show(
    h("div", { class: "spread" },
      h("h1", { text: "Events" }),
      h("a", { href: "#/events/new", id: "new-event", class: "button-link", text: "+ Create an event" }),
    ),
    status,
    table,
  );
  async function refresh() {
    try {
      const events = await ctx.api.get("/api/admin/events");
      replace(status);
      if (!events.length) {
        replace(table, h("p", { class: "muted", text: "No events yet." }));
        return;
      }
      replace(
        table,
        h("table", {},
          h("caption", { class: "sr-only", text: "Events with sales and admissions, updated every second" }),
          h("thead", {}, h("tr", {},
            ["Event", "Hall", "Date", "Status"].map((t) => h("th", { scope: "col", text: t })),
            ["Sold", "Held", "Checked in", "Seats", "Revenue"].map((t) => h("th", { scope: "col", class: "num", text: t })),
          )),
          h("tbody", {}, events.map((ev) => {
            const c = ev.counts || ev;
            return h("tr", { dataset: { eventId: ev.event_id } },
              h("td", {}, h("a", { href: `#/events/${ev.event_id}`, text: ev.name })),
              h("td", { text: ev.hall_id }),
              h("td", { text: dateTime(ev.event_date) }),
              h("td", { text: ev.status || "" }),
              h("td", { class: "num sold", text: c.sold ?? 0 }),
              h("td", { class: "num held", text: c.held ?? 0 }),
              h("td", { class: "num checked-in", text: c.checked_in ?? 0 }),
              h("td", { class: "num", text: c.total ?? ev.total_seats ?? "" }),
              h("td", { class: "num", text: credits(c.revenue ?? 0) }),
            );
          })),
        ),
      );
    } catch (err) {
      replace(status, message("error", describeError(err)));
    }
  }
  refresh();
  ctx.timers.every(LIVE_POLL_MS, refresh);
}

// ----- users -----

function usersView() {
  if (needsAdmin()) return;
  const ctx = context();
  const results = h("div", { id: "user-results" });
  const form = h(
    "form",
    { class: "panel inline-form", id: "user-search", role: "search" },
    field("E-mail (or part of it)", h("input", { name: "email", type: "search", required: true })),
    h("button", { type: "submit", text: "Find" }),
  );
  async function search(query) {
    try {
      const users = await ctx.api.get(`/api/admin/users?email=${encodeURIComponent(query)}`);
      replace(results, users.length ? h("ul", { class: "plain-list" }, users.map(userRow)) : h("p", { class: "muted", text: "No user matches." }));
    } catch (err) {
      replace(results, message("error", describeError(err)));
    }
  }
  function userRow(u) {
    const status = h("div", { "aria-live": "polite" });
    const flagged = u.flagged ?? u.is_flagged ?? false;
    const roleSelect = h("select", { name: "role" },
      ["customer", "staff", "admin"].map((r) => h("option", { value: r, selected: r === u.role, text: r })));
    const flagBox = h("input", { type: "checkbox", name: "flagged", checked: flagged });
    const save = h("form", { class: "inline-form user-form" },
      field("Role", roleSelect),
      h("div", { class: "field" }, h("label", { class: "checkbox" }, flagBox, "Ask for a code on every purchase")),
      h("button", { type: "submit", class: "secondary", text: "Save" }),
    );
    save.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await ctx.api.patch(`/api/admin/users/${u.user_id}`, { role: roleSelect.value, flagged: flagBox.checked });
        replace(status, message("ok", "Saved."));
      } catch (err) {
        replace(status, message("error", describeError(err)));
      }
    });
    const grant = h("form", { class: "inline-form grant-form" },
      field("Grant credits", h("input", { name: "amount", type: "number", min: "1", step: "1", required: true })),
      h("button", { type: "submit", class: "secondary", text: "Grant" }),
    );
    grant.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const done = await ctx.api.post("/api/admin/credits/grant", { user_id: u.user_id, amount: Number(formValues(grant).amount) });
        replace(status, message("ok", `Granted. Balance now ${credits(done.credit_balance)}.`));
        grant.reset();
      } catch (err) {
        replace(status, message("error", describeError(err)));
      }
    });
    return h("li", { class: "panel", dataset: { userId: u.user_id } },
      h("div", { class: "spread" },
        h("strong", { text: u.email }),
        h("span", { class: "muted", text: `${u.phone || "no phone"} · ${credits(u.credit_balance)}${u.verified === false ? " · unverified" : ""}` }),
      ),
      save, grant, status);
  }
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    search(formValues(form).email);
  });
  ctx.show(h("h1", { text: "Users" }), form, results);
}

// ----- disputed transfers -----

function disputesView() {
  if (needsAdmin()) return;
  const ctx = context();
  const list = h("div", { id: "disputes" }, h("p", { class: "muted", text: "Loading…" }));
  ctx.show(h("h1", { text: "Disputed transfers" }), list);
  async function refresh() {
    try {
      const transfers = await ctx.api.get("/api/admin/transfers?status=DISPUTED");
      if (!transfers.length) {
        replace(list, h("p", { class: "muted", text: "No transfer is disputed." }));
        return;
      }
      replace(list, h("ul", { class: "plain-list" }, transfers.map((t) => {
        const status = h("div", { "aria-live": "polite" });
        const button = h("button", { type: "button", class: "danger reverse", text: "Reverse: give the ticket back" });
        button.addEventListener("click", async () => {
          button.disabled = true;
          try {
            const done = await ctx.api.post("/api/transfer/reverse", { transfer_id: t.transfer_id });
            replace(status, message("ok", `Reversed; ${credits(done.credits_returned)} returned.`));
            setTimeout(refresh, 1500);
          } catch (err) {
            button.disabled = false;
            replace(status, message("error", describeError(err)));
          }
        });
        // closing lets the transfer stand: the seller may spend the held credits again
        const close = h("button", { type: "button", class: "secondary close-dispute", text: "Close dispute: the transfer stands" });
        close.addEventListener("click", async () => {
          close.disabled = true;
          button.disabled = true;
          try {
            const done = await ctx.api.post(`/api/admin/transfers/${t.transfer_id}/close`, {});
            replace(status, message("ok", `Dispute closed; ${credits(done.credits_released)} released to the seller.`));
            setTimeout(refresh, 1500);
          } catch (err) {
            close.disabled = false;
            button.disabled = false;
            replace(status, message("error", describeError(err)));
          }
        });
        return h("li", { class: "panel", dataset: { transferId: t.transfer_id } },
          h("strong", { text: `${(t.event && t.event.name) || "Ticket"}${t.row ? ` — row ${t.row}, seat ${t.number}` : ""}` }),
          h("p", { text: `${t.seller_email} → ${t.buyer_email} · ${credits(t.credits_amount)} held from the seller · ${dateTime(t.created_at)}` }),
          t.dispute_reason || t.reason ? h("p", { class: "muted", text: `Reason: ${t.dispute_reason || t.reason}` }) : null,
          h("div", { class: "row" }, button, close), status);
      })));
    } catch (err) {
      replace(list, message("error", describeError(err)));
    }
  }
  refresh();
}

const dispatch = router(
  [
    [/^\/?$/, () => go("#/events")],
    [/^\/login$/, loginView],
    [/^\/events$/, eventsView],
    [/^\/events\/new$/, () => (needsAdmin() ? null : createEventView(context()))],
    [/^\/events\/(?<id>[0-9a-f-]{36})$/, ({ id }) => (needsAdmin() ? null : liveView(context(), id))],
    [/^\/gates$/, () => (needsAdmin() ? null : gatesView(context(), null))],
    [/^\/users$/, usersView],
    [/^\/transfers$/, disputesView],
  ],
  () => go("#/events"),
);

session.scheduleRefresh();
renderHeader();
dispatch();
