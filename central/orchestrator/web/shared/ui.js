// Building the page from data. Every string goes in as a text node: a name, e-mail or reason typed
// by a user can never become markup.

export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "value") node.value = value;
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id, text: label }),
    input,
    hint ? h("p", { class: "hint", text: hint }) : null,
  );
}

export function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

// A status line under a form: role=status so screen readers hear the outcome.
export function message(kind, text) {
  return h("p", { class: `msg msg-${kind}`, role: kind === "error" ? "alert" : "status", text });
}

export function describeError(err) {
  if (!err) return "";
  const code = err.code ? ` (${err.code})` : "";
  return `${err.message || "Something went wrong"}${code}`;
}

const pad = (n) => String(n).padStart(2, "0");

export function hhmm(iso) {
  const d = new Date(iso);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function dateTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, {
    weekday: "short",
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
  });
}

export function mmss(totalSeconds) {
  const s = Math.max(0, Math.ceil(totalSeconds));
  return `${Math.floor(s / 60)}:${pad(s % 60)}`;
}

export function credits(n) {
  return `${Number(n || 0).toLocaleString()} credits`;
}

// Hash routes: "#/events/ID" → handler({ id }). Re-rendered on every hash change.
export function router(routes, fallback) {
  function dispatch() {
    const path = location.hash.replace(/^#/, "") || "/";
    for (const [pattern, handler] of routes) {
      const m = path.match(pattern);
      if (m) return handler(m.groups || {});
    }
    return fallback();
  }
  window.addEventListener("hashchange", dispatch);
  return dispatch;
}

// A repeating task tied to one view: stopped when the view is left.
export class ViewTimers {
  constructor() {
    this.ids = [];
    this.cleanups = [];
    this.stopped = false;
  }
  // a view's late answer (arriving after it was left) must not start anything new
  every(ms, fn) {
    if (!this.stopped) this.ids.push(setInterval(fn, ms));
  }
  after(ms, fn) {
    if (!this.stopped) this.ids.push(setTimeout(fn, ms));
  }
  onStop(fn) {
    if (this.stopped) fn();
    else this.cleanups.push(fn);
  }
  stop() {
    this.stopped = true;
    this.ids.forEach((id) => {
      clearInterval(id);
      clearTimeout(id);
    });
    this.ids = [];
    this.cleanups.splice(0).forEach((fn) => fn());
  }
}
