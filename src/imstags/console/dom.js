// Small DOM helpers. Text always goes in as text nodes (never innerHTML), so tag keys, values
// and image names cannot inject markup whatever they hold.

// h("a", { href: "#/x", class: "chip" }, "text", child) -> element
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// The polite live region: screen readers hear what changed without losing their place.
export function announce(message) {
  const region = document.getElementById("announcer");
  region.textContent = "";
  // A fresh text node after a tick, so the same message twice is read twice.
  setTimeout(() => {
    region.textContent = message;
  }, 50);
}

// A native tag string as the native API lists it: "k=v", or "k" for the empty value.
export function nativeTag(key, value) {
  return value === "" ? key : `${key}=${value}`;
}

export function splitNativeTag(tag) {
  const at = tag.indexOf("=");
  return at < 0 ? [tag, ""] : [tag.slice(0, at), tag.slice(at + 1)];
}

export function chip(key, value, attrs = {}) {
  return h(
    "span",
    { class: "chip", ...attrs },
    h("span", { class: "chip-key" }, key),
    value === "" ? null : h("span", { class: "chip-value" }, value),
  );
}

export function formatSize(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let size = bytes;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${size.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toISOString().slice(0, 16).replace("T", " ");
}

// An error next to its field: the field is marked invalid and described by the message.
export function showFieldError(field, errorEl, error) {
  errorEl.textContent = error ? error.text || error.message : "";
  errorEl.hidden = !error;
  if (field) {
    if (error) field.setAttribute("aria-invalid", "true");
    else field.removeAttribute("aria-invalid");
  }
}

let fieldCounter = 0;
export function uid(prefix) {
  fieldCounter += 1;
  return `${prefix}-${fieldCounter}`;
}

// A labelled input: returns { wrap, input, error } with the label and error wired up.
export function field(label, attrs = {}, hint = "") {
  const id = attrs.id || uid("f");
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  const input = h(attrs.tag || "input", {
    id,
    ...attrs,
    tag: undefined,
    "aria-describedby": [hintId, errorId].filter(Boolean).join(" "),
  });
  const error = h("p", { id: errorId, class: "field-error", hidden: true });
  const wrap = h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    input,
    hint ? h("p", { id: hintId, class: "hint" }, hint) : null,
    error,
  );
  return { wrap, input, error };
}
