// Creating an event: venue, hall, date, doors window, rows × seats, price categories by row.
import { h, replace, field, message, describeError } from "../shared/ui.js";

// The same row letters central gives: A, B, … Z, AA, AB, …
export function rowNames(count) {
  const names = [];
  for (let i = 0; i < count; i += 1) {
    let name = "";
    let n = i + 1;
    while (n) {
      const rem = (n - 1) % 26;
      n = Math.floor((n - 1) / 26);
      name = String.fromCharCode(65 + rem) + name;
    }
    names.push(name);
  }
  return names;
}

// "A-C, F" → ["A", "B", "C", "F"], checked against the rows the hall has.
export function parseRows(spec, rows) {
  const out = [];
  for (const part of spec.split(",").map((s) => s.trim().toUpperCase()).filter(Boolean)) {
    const [from, to] = part.split("-").map((s) => s.trim());
    const a = rows.indexOf(from);
    const b = to === undefined ? a : rows.indexOf(to);
    if (a < 0 || b < 0 || b < a) throw new Error(`rows "${part}": the hall has rows ${rows[0]}–${rows[rows.length - 1]}`);
    out.push(...rows.slice(a, b + 1));
  }
  return out;
}

function localInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function isoFromLocal(value) {
  return value ? new Date(value).toISOString() : null;
}

export function createEventView(ctx) {
  const inTwoHours = new Date(Date.now() + 2 * 3600_000);
  inTwoHours.setMinutes(0, 0, 0);
  const status = h("div", { id: "create-status", "aria-live": "polite" });
  const categories = h("div", { id: "categories" });

  function categoryRow(name, price, rows) {
    const row = h("div", { class: "category-row" },
      field("Category", h("input", { name: "cat_name", required: true, maxlength: "20", value: name })),
      field("Price (credits)", h("input", { name: "cat_price", type: "number", min: "0", step: "1", required: true, value: String(price) })),
      field("Rows", h("input", { name: "cat_rows", value: rows, placeholder: "e.g. A-C, F" }), "Empty: every row no other category takes."),
      h("button", { type: "button", class: "secondary", text: "Remove", onclick: () => row.remove() }),
    );
    return row;
  }
  categories.append(categoryRow("Standard", 50, ""), categoryRow("Premium", 80, "A"));

  const form = h(
    "form",
    { id: "create-event-form", class: "panel" },
    h("h1", { text: "Create an event" }),
    field("Name", h("input", { name: "name", required: true, maxlength: "200" })),
    h("div", { class: "grid" },
      field("Venue", h("input", { name: "venue", required: true, maxlength: "200" })),
      field("Venue address", h("input", { name: "address", maxlength: "500" })),
      field("Hall", h("input", { name: "hall_id", required: true, pattern: "[A-Z0-9][A-Z0-9\\-]{0,19}", placeholder: "HALL-A" }), "Capitals, digits and dashes: gates are registered per hall."),
    ),
    h("div", { class: "grid" },
      field("Date and time", h("input", { name: "event_date", type: "datetime-local", required: true, value: localInput(inTwoHours) })),
      field("Doors open", h("input", { name: "doors_open", type: "datetime-local" }), "Empty: 6 hours before the start."),
      field("Doors close", h("input", { name: "doors_close", type: "datetime-local" }), "Empty: 6 hours after the start."),
    ),
    h("div", { class: "grid" },
      field("Rows", h("input", { name: "rows", type: "number", min: "1", max: "200", required: true, value: "10" })),
      field("Seats per row", h("input", { name: "seats_per_row", type: "number", min: "1", max: "500", required: true, value: "20" })),
    ),
    h("h2", { text: "Price categories" }),
    categories,
    h("button", { type: "button", class: "secondary", id: "add-category", text: "+ Add a category", onclick: () => categories.append(categoryRow("", 0, "")) }),
    h("p", {}),
    h("button", { type: "submit", id: "create-event", text: "Create the event" }),
    status,
  );

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    let body;
    try {
      body = buildBody(form);
    } catch (err) {
      replace(status, message("error", err.message));
      return;
    }
    // Thousands of seats take a moment (one transaction): say so while the button waits.
    const seats = body.seats.rows * body.seats.seats_per_row;
    const button = form.querySelector("#create-event");
    button.disabled = true;
    replace(status, message("info", `Creating the event and its ${seats.toLocaleString("en")} seats…`));
    try {
      const created = await ctx.api.post("/api/admin/events", body);
      replace(status, message("ok", `${created.seats_created.toLocaleString("en")} seats created.`));
      ctx.go(`#/events/${created.event_id}`);
    } catch (err) {
      replace(status, message("error", describeError(err)));
    } finally {
      button.disabled = false;
    }
  });
  ctx.show(form);
}

function buildBody(form) {
  const v = (name) => form.elements[name].value.trim();
  const rowCount = Number(v("rows"));
  const rows = rowNames(rowCount);
  const pricing = {};
  const categoryRows = {};
  for (const row of form.querySelectorAll(".category-row")) {
    const name = row.querySelector("[name=cat_name]").value.trim();
    const price = Number(row.querySelector("[name=cat_price]").value);
    const spec = row.querySelector("[name=cat_rows]").value;
    if (!name) throw new Error("every category needs a name");
    if (name in pricing) throw new Error(`category "${name}" is listed twice`);
    pricing[name] = price;
    const named = parseRows(spec, rows);
    if (named.length) categoryRows[name] = named;
  }
  if (!Object.keys(pricing).length) throw new Error("add at least one price category");
  const body = {
    name: v("name"),
    venue: { name: v("venue"), address: v("address") },
    hall_id: v("hall_id").toUpperCase(),
    event_date: isoFromLocal(v("event_date")),
    pricing,
    seats: { rows: rowCount, seats_per_row: Number(v("seats_per_row")), category_rows: categoryRows },
  };
  const open = isoFromLocal(v("doors_open"));
  const close = isoFromLocal(v("doors_close"));
  if (open) body.doors_open = open;
  if (close) body.doors_close = close;
  return body;
}
