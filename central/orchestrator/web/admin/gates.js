// Gates: list, add one (its device token shown once, with a command line ready to paste on the
// gate), revoke one (its token is refused from the next request on).
import { h, replace, field, formValues, message, describeError, dateTime } from "../shared/ui.js";

export function gateCommand(token) {
  return `python -m gate_agent run --central ${location.origin} --device-token ${token} --camera v4l2:0`;
}

// A panel the gates page and an event's live view share. `hallId` fixes the hall (live view).
export function gatesPanel(ctx, hallId) {
  const list = h("div", { id: "gate-list" }, h("p", { class: "muted", text: "Loading gates…" }));
  const issued = h("div", { id: "gate-issued", "aria-live": "polite" });
  const status = h("div", { id: "gate-status", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "inline-form", id: "add-gate-form" },
    hallId
      ? h("input", { type: "hidden", name: "hall_id", value: hallId })
      : field("Hall", h("input", { name: "hall_id", required: true, pattern: "[A-Z0-9][A-Z0-9\\-]{0,19}", placeholder: "HALL-A" })),
    field("Gate name", h("input", { name: "name", required: true, maxlength: "200", placeholder: "North door" })),
    h("button", { type: "submit", id: "add-gate", text: "Add gate" }),
  );

  async function refresh() {
    try {
      const query = hallId ? `?hall_id=${encodeURIComponent(hallId)}` : "";
      const gates = await ctx.api.get(`/api/admin/gates${query}`);
      if (!gates.length) {
        replace(list, h("p", { class: "muted", text: "No gate registered yet." }));
        return;
      }
      replace(
        list,
        h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Gates" }, h("table", {},
          h("thead", {}, h("tr", {}, ["Gate", "Hall", "State", "Last seen", ""].map((t) => h("th", { scope: "col", text: t })))),
          h("tbody", {}, gates.map((g) => {
            const revoke = g.enabled
              ? h("button", { type: "button", class: "danger revoke", "aria-label": `Revoke ${g.name}`, text: "Revoke" })
              : null;
            if (revoke) {
              revoke.addEventListener("click", async () => {
                if (!window.confirm(`Revoke ${g.name}? Its device stops admitting at once.`)) return;
                revoke.disabled = true;
                try {
                  await ctx.api.del(`/api/admin/gates/${g.gate_id}`);
                  replace(status, message("ok", `${g.name} revoked.`));
                  refresh();
                } catch (err) {
                  revoke.disabled = false;
                  replace(status, message("error", describeError(err)));
                }
              });
            }
            return h("tr", { dataset: { gateId: g.gate_id, enabled: String(Boolean(g.enabled)) } },
              h("td", { text: g.name }),
              h("td", { text: g.hall_id }),
              h("td", {}, h("span", { class: g.enabled ? "badge badge-ok" : "badge badge-bad", text: g.enabled ? "enabled" : "revoked" })),
              h("td", { text: g.last_seen_at ? dateTime(g.last_seen_at) : "never" }),
              h("td", {}, revoke),
            );
          })),
        )),
      );
    } catch (err) {
      replace(list, message("error", describeError(err)));
    }
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const values = formValues(form);
    try {
      const gate = await ctx.api.post("/api/admin/gates", { hall_id: values.hall_id.trim().toUpperCase(), name: values.name.trim() });
      const command = gateCommand(gate.device_token);
      const copy = h("button", { type: "button", class: "secondary", text: "Copy command" });
      copy.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(command);
          copy.textContent = "Copied";
        } catch {
          copy.textContent = "Select the text and copy it";
        }
      });
      replace(
        issued,
        h("div", { class: "msg msg-warn" },
          h("p", {}, h("strong", { text: `Gate "${gate.name || values.name}" added.` }), " Its device token is shown only now: run this on the gate (pick its camera):"),
          h("pre", { class: "secret", id: "gate-command", text: command }),
          copy,
        ),
      );
      form.reset();
      refresh();
    } catch (err) {
      replace(status, message("error", describeError(err)));
    }
  });

  refresh();
  return {
    node: h("section", { class: "panel", id: "gates", "aria-labelledby": "gates-title" },
      h("h2", { id: "gates-title", text: hallId ? `Gates of ${hallId}` : "Gates" }),
      form, issued, status, list),
    refresh,
  };
}

export function gatesView(ctx) {
  const panel = gatesPanel(ctx, null);
  ctx.show(h("h1", { text: "Gates" }), panel.node);
  ctx.timers.every(5_000, panel.refresh);
}
