// Renders /api/openapi.json as a list of operations. Every string from the document is put in
// the page with textContent, never as HTML.
"use strict";

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function resolve(spec, schema) {
  if (schema && schema.$ref) {
    return spec.components.schemas[schema.$ref.split("/").pop()] || {};
  }
  return schema || {};
}

function typeOf(spec, schema) {
  const s = resolve(spec, schema);
  if (schema && schema.$ref) return schema.$ref.split("/").pop();
  if (s.anyOf) return s.anyOf.map((x) => typeOf(spec, x)).join(" | ");
  if (s.enum) return s.enum.join(" | ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.type === "array") return "array of " + typeOf(spec, s.items);
  return s.format ? s.type + " (" + s.format + ")" : s.type || "any";
}

function fieldRows(spec, schema) {
  const s = resolve(spec, schema);
  const required = new Set(s.required || []);
  const rows = [];
  for (const [name, prop] of Object.entries(s.properties || {})) {
    rows.push([name, typeOf(spec, prop), required.has(name) ? "required" : "optional"]);
  }
  return rows;
}

function table(rows, headings) {
  const t = el("table");
  const head = el("tr");
  for (const h of headings) head.appendChild(el("th", h));
  t.appendChild(head);
  for (const row of rows) {
    const tr = el("tr");
    for (const cell of row) tr.appendChild(el("td", cell));
    t.appendChild(tr);
  }
  return t;
}

// The success answer: the model its data is built from, and that model's fields (a list's items'),
// or the media type of a page or image.
function answerParts(spec, code, answer) {
  const json = answer.content["application/json"];
  if (!json) return [el("p", "answers " + code + ": " + Object.keys(answer.content).join(", "))];
  const props = json.schema.properties || {};
  const data = resolve(spec, props.data);
  const paged = props.pagination ? " with pagination" : "";
  const parts = [el("p", "answers " + code + ": " + typeOf(spec, props.data) + paged)];
  const rows = fieldRows(spec, data.type === "array" ? data.items : props.data);
  if (rows.length) parts.push(table(rows, ["answer field", "type", ""]));
  return parts;
}

function operation(spec, path, method, op) {
  const section = el("section", null, "op");
  const h2 = el("h2");
  h2.appendChild(el("span", method.toUpperCase(), "method " + method));
  h2.appendChild(el("span", path));
  if (op.security) {
    const optional = op.security.some((s) => Object.keys(s).length === 0);
    h2.appendChild(el("span", optional ? "bearer token optional" : "bearer token", "auth"));
  }
  section.appendChild(h2);
  section.appendChild(el("p", op.summary));
  const params = (op.parameters || []).map((p) => [p.name, p.in, p.required ? "required" : "optional"]);
  if (params.length) section.appendChild(table(params, ["parameter", "in", ""]));
  const body = op.requestBody && op.requestBody.content["application/json"].schema;
  if (body) section.appendChild(table(fieldRows(spec, body), ["body field", "type", ""]));
  // the filter looks at the call and what it takes, not at the answer's many field names
  section.dataset.search = (method + " " + path + " " + section.textContent).toLowerCase();
  for (const [code, answer] of Object.entries(op.responses)) {
    if (code !== "default") section.append(...answerParts(spec, code, answer));
  }
  section.appendChild(el("p", "errors: the error envelope"));
  return section;
}

async function main() {
  const target = document.getElementById("operations");
  let spec;
  try {
    const resp = await fetch("/api/openapi.json");
    spec = await resp.json();
  } catch (err) {
    target.replaceChildren(el("p", "Could not load /api/openapi.json: " + err));
    return;
  }
  document.getElementById("description").textContent = spec.info.description;
  const sections = [];
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) sections.push(operation(spec, path, method, op));
  }
  target.replaceChildren(...sections);
  document.getElementById("filter").addEventListener("input", (event) => {
    const words = event.target.value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const s of sections) {
      s.classList.toggle("hidden", !words.every((w) => s.dataset.search.includes(w)));
    }
  });
}

main();
