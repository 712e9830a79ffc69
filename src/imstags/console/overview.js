// The tag overview: every key with its values, from the core endpoint
// GET /v2/{project_id}/images/tags (its cost grows with the number of distinct tags, not of
// images). Opening a key asks the query-by-tag "count" action for that key's values only.

import { call, forEach, projectPath } from "./api.js";
import { announce, field, h, nativeTag, replace } from "./dom.js";

const PREVIEW_VALUES = 8;
const COUNT_REQUESTS_AT_ONCE = 4;

function imagesLink(key, value, text) {
  const params = new URLSearchParams({ tag: nativeTag(key, value) });
  return h("a", { href: `#/images?${params}`, class: "chip chip-link" }, text);
}

function valueLabel(value) {
  return value === "" ? "(empty value)" : value;
}

async function countImages(key, value) {
  const { data } = await call("POST", projectPath("images/resource_instances/action"), {
    body: { action: "count", tags: [{ key, values: [value] }] },
  });
  return data.total_count;
}

function keyItem(entry, counts) {
  const { key, values } = entry;
  const panelId = `values-${encodeURIComponent(key).replace(/[^A-Za-z0-9_-]/g, "_")}`;
  const toggle = h(
    "button",
    { type: "button", class: "key-toggle", "aria-expanded": "false", "aria-controls": panelId },
    h("span", { class: "key-name" }, key),
    " ",
    h("span", { class: "badge" }, `${values.length} ${values.length === 1 ? "value" : "values"}`),
  );
  const preview = h(
    "p",
    { class: "chips" },
    values.slice(0, PREVIEW_VALUES).map((v) => imagesLink(key, v, valueLabel(v))),
    values.length > PREVIEW_VALUES ? h("span", { class: "more" }, `+${values.length - PREVIEW_VALUES} more`) : null,
  );
  const panel = h("div", { id: panelId, class: "key-panel", hidden: true });
  const item = h("li", { class: "key-item" }, h("h2", {}, toggle), preview, panel);

  toggle.addEventListener("click", async () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    panel.hidden = !open;
    preview.hidden = open;
    if (open && !panel.hasChildNodes()) await fillCounts(entry, panel, counts);
  });
  return item;
}

async function fillCounts(entry, panel, counts) {
  const { key, values } = entry;
  const rows = new Map();
  const tbody = h("tbody");
  for (const value of values) {
    const cell = h("td", { class: "num" }, h("span", { class: "muted" }, "counting…"));
    rows.set(value, cell);
    tbody.append(
      h(
        "tr",
        {},
        h("th", { scope: "row" }, imagesLink(key, value, valueLabel(value))),
        cell,
      ),
    );
  }
  replace(
    panel,
    h(
      "table",
      { class: "counts" },
      h("caption", { class: "visually-hidden" }, `Images per value of ${key}`),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Value"), h("th", { scope: "col", class: "num" }, "Images"))),
      tbody,
    ),
  );
  await forEach(values, COUNT_REQUESTS_AT_ONCE, async (value) => {
    const cacheKey = `${key}\u0000${value}`;
    if (!counts.has(cacheKey)) counts.set(cacheKey, await countImages(key, value));
    return counts.get(cacheKey);
  }, (result) => {
    const cell = rows.get(result.item);
    if (result.ok) replace(cell, String(result.value));
    else replace(cell, h("span", { class: "error" }, result.error.text || result.error.message));
  });
  announce(`Counted images for the ${values.length} values of ${key}.`);
}

function matches(entry, needle) {
  if (!needle) return entry;
  if (entry.key.toLowerCase().includes(needle)) return entry;
  const values = entry.values.filter((v) => v.toLowerCase().includes(needle));
  return values.length ? { key: entry.key, values } : null;
}

export async function renderOverview(container, params) {
  const { data } = await call("GET", projectPath("images/tags"));
  const tags = data.tags;
  const counts = new Map();
  const valueCount = tags.reduce((n, t) => n + t.values.length, 0);
  const filter = field("Filter keys and values", {
    type: "search",
    value: params.get("q") || "",
    autocomplete: "off",
    spellcheck: "false",
  });
  const list = h("ul", { class: "keys", "aria-label": "Tag keys" });
  const shown = h("p", { class: "muted", "aria-live": "polite" });

  function draw() {
    const needle = filter.input.value.trim().toLowerCase();
    const entries = tags.map((t) => matches(t, needle)).filter(Boolean);
    replace(list, entries.map((entry) => keyItem(entry, counts)));
    shown.textContent = needle
      ? `${entries.length} of ${tags.length} keys match “${filter.input.value.trim()}”.`
      : "";
  }
  filter.input.addEventListener("input", draw);

  replace(
    container,
    h("h1", {}, "Tags"),
    h(
      "p",
      { class: "lead" },
      tags.length
        ? `${tags.length} ${tags.length === 1 ? "key" : "keys"} with ${valueCount} values on this project's images. Open a key to count its images per value; pick a value to list its images.`
        : "No image of this project has tags yet.",
    ),
    tags.length ? h("div", { class: "toolbar" }, filter.wrap) : null,
    shown,
    list,
  );
  draw();
}
