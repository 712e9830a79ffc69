// The images list: GET /v2/images (native API; keyset paging after a marker, filters by tag,
// name and status), with selection and batch tagging through the IMS tag APIs.

import { call, forEach, projectPath } from "./api.js";
import {
  announce,
  chip,
  field,
  formatSize,
  formatTime,
  h,
  replace,
  splitNativeTag,
} from "./dom.js";

const PAGE_SIZE = 25;
const BATCH_REQUESTS_AT_ONCE = 2;
const STATUSES = ["queued", "saving", "active", "killed", "deleted", "deactivated"];
// Markers of the pages before this one, per filter, so that "Previous" goes back exactly.
const pageHistory = new Map();

function filterOf(params) {
  return {
    tags: params.getAll("tag"),
    name: params.get("name") || "",
    status: params.get("status") || "",
    marker: params.get("marker") || "",
  };
}

function hashOf(filter) {
  const params = new URLSearchParams();
  for (const tag of filter.tags) params.append("tag", tag);
  if (filter.name) params.set("name", filter.name);
  if (filter.status) params.set("status", filter.status);
  if (filter.marker) params.set("marker", filter.marker);
  const query = params.toString();
  return `#/images${query ? `?${query}` : ""}`;
}

function signature(filter) {
  return JSON.stringify([filter.tags, filter.name, filter.status]);
}

async function fetchPage(filter) {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  for (const tag of filter.tags) params.append("tag", tag);
  if (filter.name) params.set("name", filter.name);
  if (filter.status) params.set("status", filter.status);
  if (filter.marker) params.set("marker", filter.marker);
  const { data } = await call("GET", `v2/images?${params}`);
  return { images: data.images, hasNext: Boolean(data.next) };
}

function filterForm(filter) {
  const tags = [...filter.tags];
  const chips = h("ul", { class: "chips filter-chips", "aria-label": "Tag filters" });
  const tagInput = field(
    "Tag",
    { placeholder: "key=value", autocomplete: "off", spellcheck: "false" },
    "key=value, or key for the empty value; images must have every tag listed.",
  );
  const name = field("Name (exact)", { value: filter.name, autocomplete: "off" });
  const statusId = "status-filter";
  const status = h(
    "select",
    { id: statusId },
    h("option", { value: "" }, "any"),
    STATUSES.map((s) => h("option", { value: s, selected: s === filter.status }, s)),
  );

  function drawChips() {
    replace(
      chips,
      tags.map((tag, i) => {
        const [key, value] = splitNativeTag(tag);
        return h(
          "li",
          {},
          chip(key, value),
          h(
            "button",
            {
              type: "button",
              class: "chip-remove",
              "aria-label": `Remove the filter ${tag}`,
              onclick: () => {
                tags.splice(i, 1);
                form.requestSubmit();
              },
            },
            "×",
          ),
        );
      }),
    );
  }

  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter images" },
    h("div", { class: "filter-tags" }, tagInput.wrap, chips),
    name.wrap,
    h("div", { class: "field" }, h("label", { for: statusId }, "Status"), status),
    h("div", { class: "field actions" }, h("button", { type: "submit" }, "Apply filters")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const typed = tagInput.input.value.trim();
    if (typed && !tags.includes(typed)) tags.push(typed);
    location.hash = hashOf({ tags, name: name.input.value.trim(), status: status.value, marker: "" });
  });
  drawChips();
  return form;
}

function imageRow(image, selected, onSelect) {
  const box = h("input", {
    type: "checkbox",
    "aria-label": `Select ${image.name || image.id}`,
    checked: selected.has(image.id),
    onchange: (event) => onSelect(image, event.target.checked),
  });
  return h(
    "tr",
    {},
    h("td", { class: "select" }, box),
    h(
      "th",
      { scope: "row" },
      h("a", { href: `#/images/${encodeURIComponent(image.id)}` }, image.name || image.id),
    ),
    h("td", {}, h("span", { class: `status status-${image.status}` }, image.status)),
    h("td", { class: "num wide-only" }, formatSize(image.size)),
    h("td", { class: "wide-only" }, h("time", { datetime: image.created_at }, formatTime(image.created_at))),
    h(
      "td",
      {},
      h(
        "span",
        { class: "chips" },
        image.tags.map((tag) => {
          const [key, value] = splitNativeTag(tag);
          return chip(key, value);
        }),
      ),
    ),
  );
}

function batchPanel(selected, onDone) {
  const heading = h("h2", { id: "batch-title" }, "Batch tagging");
  const count = h("p", { class: "muted", "aria-live": "polite" });
  const add = h("input", { type: "radio", name: "batch-op", value: "add", id: "batch-add", checked: true });
  const remove = h("input", { type: "radio", name: "batch-op", value: "remove", id: "batch-remove" });
  const key = field("Key", { autocomplete: "off", spellcheck: "false" }, "1–36 characters, no “=”.");
  const value = field("Value", { autocomplete: "off", spellcheck: "false" }, "0–43 characters; may be empty.");
  const submit = h("button", { type: "submit" }, "Apply to selected images");
  const progress = h("progress", { max: "1", value: "0", id: "batch-progress" });
  const progressLabel = h("label", { for: "batch-progress" });
  const progressWrap = h("div", { class: "progress", hidden: true }, progressLabel, progress);
  const results = h("ol", { class: "results", "aria-label": "Results per image" });

  function update() {
    const n = selected.size;
    count.textContent = n ? `${n} ${n === 1 ? "image" : "images"} selected.` : "Select images in the list to tag them together.";
    submit.disabled = n === 0;
    value.wrap.hidden = remove.checked;
  }
  add.addEventListener("change", update);
  remove.addEventListener("change", update);

  const form = h(
    "form",
    { class: "batch card", "aria-labelledby": "batch-title" },
    heading,
    count,
    h(
      "fieldset",
      { class: "ops" },
      h("legend", {}, "Action"),
      h("span", {}, add, h("label", { for: "batch-add" }, "Add or change a tag")),
      h("span", {}, remove, h("label", { for: "batch-remove" }, "Remove a key")),
    ),
    h("div", { class: "row" }, key.wrap, value.wrap),
    submit,
    progressWrap,
    results,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const images = [...selected.values()];
    const tagKey = key.input.value;
    const tagValue = value.input.value;
    const removing = remove.checked;
    submit.disabled = true;
    replace(results);
    progress.max = images.length;
    progress.value = 0;
    progressWrap.hidden = false;
    let done = 0;
    let failed = 0;
    progressLabel.textContent = `0 of ${images.length} done`;
    await forEach(
      images,
      BATCH_REQUESTS_AT_ONCE,
      (image) =>
        removing
          ? call("DELETE", projectPath(`images/${encodeURIComponent(image.id)}/tags/${encodeURIComponent(tagKey)}`))
          : call("POST", projectPath(`images/${encodeURIComponent(image.id)}/tags`), {
              body: { tag: { key: tagKey, value: tagValue } },
            }),
      (result) => {
        done += 1;
        if (!result.ok) failed += 1;
        progress.value = done;
        progressLabel.textContent = `${done} of ${images.length} done`;
        const name = result.item.name || result.item.id;
        results.append(
          h(
            "li",
            { class: result.ok ? "ok" : "failed" },
            h("span", { class: "outcome" }, result.ok ? "Done" : "Refused"),
            ` ${name}: `,
            result.ok
              ? removing ? `key ${tagKey} removed` : `tag ${tagKey}=${tagValue} set`
              : result.error.text || result.error.message,
          ),
        );
      },
    );
    const summary = failed
      ? `${images.length - failed} of ${images.length} images tagged; ${failed} refused.`
      : `All ${images.length} images done.`;
    progressLabel.textContent = summary;
    announce(summary);
    update();
    await onDone();
  });
  update();
  return { form, update };
}

export async function renderImages(container, params) {
  const filter = filterOf(params);
  const sig = signature(filter);
  const history = pageHistory.get(sig) || [];
  if (!filter.marker) history.length = 0;
  pageHistory.set(sig, history);

  let page;
  try {
    page = await fetchPage(filter);
  } catch (error) {
    if (error.status !== 400) throw error;
    page = { images: [], hasNext: false, error }; // a filter the API refuses: say why, here
  }
  const selected = new Map(); // id -> image, kept across redraws of this page
  const tbody = h("tbody");
  const selectAll = h("input", { type: "checkbox", "aria-label": "Select all images on this page" });
  const batch = batchPanel(selected, async () => {
    page = await fetchPage(filter);
    drawRows();
  });

  function onSelect(image, on) {
    if (on) selected.set(image.id, image);
    else selected.delete(image.id);
    selectAll.checked = page.images.length > 0 && page.images.every((i) => selected.has(i.id));
    batch.update();
  }
  selectAll.addEventListener("change", () => {
    for (const image of page.images) {
      if (selectAll.checked) selected.set(image.id, image);
      else selected.delete(image.id);
    }
    drawRows();
    batch.update();
  });

  function drawRows() {
    for (const image of page.images) if (selected.has(image.id)) selected.set(image.id, image);
    replace(
      tbody,
      page.images.length
        ? page.images.map((image) => imageRow(image, selected, onSelect))
        : h("tr", {}, h("td", { colspan: "6", class: "empty" }, "No image matches these filters.")),
    );
  }

  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  if (filter.marker) {
    pager.append(
      h("button", {
        type: "button",
        class: "secondary",
        onclick: () => {
          const previous = history.pop() || "";
          location.hash = hashOf({ ...filter, marker: previous });
        },
      }, "Previous page"),
    );
  }
  if (page.hasNext) {
    pager.append(
      h("button", {
        type: "button",
        class: "secondary",
        onclick: () => {
          history.push(filter.marker);
          location.hash = hashOf({ ...filter, marker: page.images[page.images.length - 1].id });
        },
      }, "Next page"),
    );
  }

  const describe = [
    filter.tags.length ? `tagged ${filter.tags.join(" and ")}` : "",
    filter.name ? `named “${filter.name}”` : "",
    filter.status ? `with status ${filter.status}` : "",
  ].filter(Boolean).join(", ");
  replace(
    container,
    h("h1", {}, "Images"),
    h("p", { class: "lead" }, describe ? `Images ${describe}.` : "All images of this project, newest first."),
    filterForm(filter),
    page.error ? h("p", { class: "error", role: "alert" }, page.error.text) : null,
    h(
      "div",
      { class: "layout-list" },
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "images" },
          h("caption", { class: "visually-hidden" }, "Images"),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("td", { class: "select" }, selectAll),
              h("th", { scope: "col" }, "Name"),
              h("th", { scope: "col" }, "Status"),
              h("th", { scope: "col", class: "num wide-only" }, "Size"),
              h("th", { scope: "col", class: "wide-only" }, "Created"),
              h("th", { scope: "col" }, "Tags"),
            ),
          ),
          tbody,
        ),
        pager,
      ),
      batch.form,
    ),
  );
  drawRows();
}
