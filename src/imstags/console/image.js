// One image: its properties (GET /v2/images/{id}) and its tags through the IMS tag APIs
// (GET/POST /v2/{project_id}/images/{id}/tags, DELETE .../tags/{key}). The rules are shown
// beside the form; the API enforces them, and its message appears next to the field.

import { call, projectPath, uploadData } from "./api.js";
import { announce, field, formatSize, formatTime, h, replace, showFieldError, uid } from "./dom.js";

const MAX_TAGS = 10;
const SHOWN = [
  ["name", "Name"],
  ["id", "ID"],
  ["status", "Status"],
  ["size", "Size", formatSize],
  ["disk_format", "Disk format"],
  ["container_format", "Container format"],
  ["visibility", "Visibility"],
  ["protected", "Protected", (v) => (v ? "yes" : "no")],
  ["min_disk", "Minimum disk (GB)"],
  ["min_ram", "Minimum RAM (MB)"],
  ["created_at", "Created", formatTime],
  ["updated_at", "Updated", formatTime],
];
const NOT_PROPERTIES = new Set(["tags", "self", "file", "schema", "locations", "direct_url"]);

function properties(image) {
  const shownKeys = new Set(SHOWN.map(([key]) => key));
  const rows = SHOWN.map(([key, label, format]) => [label, format ? format(image[key]) : image[key] ?? "—"]);
  const extra = Object.keys(image)
    .filter((key) => !shownKeys.has(key) && !NOT_PROPERTIES.has(key))
    .sort()
    .map((key) => [key, typeof image[key] === "string" ? image[key] : JSON.stringify(image[key])]);
  return h(
    "dl",
    { class: "properties" },
    [...rows, ...extra].map(([label, value]) =>
      h("div", {}, h("dt", {}, label), h("dd", {}, value === "" ? "—" : String(value))),
    ),
  );
}

// Which field an API message is about: the value when it says so, else the key.
function fieldFor(error, keyInput, valueInput) {
  return /\bvalue\b/i.test(error.message) && !/\btags?\b.*\bhas\b/i.test(error.message)
    ? valueInput
    : keyInput;
}

async function loadTags(imageId) {
  const { data } = await call("GET", projectPath(`images/${encodeURIComponent(imageId)}/tags`));
  return data.tags;
}

async function setTag(imageId, key, value) {
  await call("POST", projectPath(`images/${encodeURIComponent(imageId)}/tags`), {
    body: { tag: { key, value } },
  });
}

async function removeTag(imageId, key) {
  await call(
    "DELETE",
    projectPath(`images/${encodeURIComponent(imageId)}/tags/${encodeURIComponent(key)}`),
  );
}

function tagRow(imageId, tag, refresh) {
  const value = h("input", {
    value: tag.value,
    "aria-label": `Value of ${tag.key}`,
    autocomplete: "off",
    spellcheck: "false",
  });
  const error = h("p", { class: "field-error", hidden: true, id: uid("tag-error") });
  value.setAttribute("aria-describedby", error.id);
  const save = h("button", { type: "submit", class: "secondary" }, "Save");
  const remove = h("button", { type: "button", class: "danger" }, "Remove");
  const form = h("form", { class: "tag-edit", "aria-label": `Tag ${tag.key}` }, value, save, remove);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await setTag(imageId, tag.key, value.value);
      announce(`Tag ${tag.key} set to “${value.value.trim()}”.`);
      await refresh(`Saved ${tag.key}.`);
    } catch (err) {
      showFieldError(value, error, err);
    }
  });
  remove.addEventListener("click", async () => {
    try {
      await removeTag(imageId, tag.key);
      announce(`Tag ${tag.key} removed.`);
      await refresh(`Removed ${tag.key}.`);
    } catch (err) {
      showFieldError(value, error, err);
    }
  });
  return h("tr", {}, h("th", { scope: "row" }, tag.key), h("td", {}, form, error));
}

function addForm(imageId, refresh) {
  const key = field("Key", { autocomplete: "off", spellcheck: "false", required: true });
  const value = field("Value", { autocomplete: "off", spellcheck: "false" });
  const form = h(
    "form",
    { class: "tag-add", "aria-labelledby": "add-tag-title" },
    h("h3", { id: "add-tag-title" }, "Add or change a tag"),
    h("div", { class: "row" }, key.wrap, value.wrap, h("div", { class: "field actions" }, h("button", { type: "submit" }, "Add tag"))),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showFieldError(key.input, key.error, null);
    showFieldError(value.input, value.error, null);
    try {
      await setTag(imageId, key.input.value, value.input.value);
      announce(`Tag ${key.input.value.trim()} added.`);
      await refresh(`Added ${key.input.value.trim()}.`);
    } catch (err) {
      const target = fieldFor(err, key.input, value.input);
      showFieldError(target, target === key.input ? key.error : value.error, err);
      target.focus();
    }
  });
  return form;
}

function rules(count) {
  return h(
    "ul",
    { class: "rules", "aria-label": "Tag rules" },
    h("li", {}, "Key: 1 to 36 characters, without “=” (it separates key and value in native tags)."),
    h("li", {}, "Value: 0 to 43 characters; an empty value makes a key-only tag."),
    h("li", {}, "Leading and trailing spaces are removed; adding an existing key changes its value."),
    h("li", {}, `At most ${MAX_TAGS} tags per image: this one has ${count}.`),
  );
}

// The image's data: a file chosen here goes to PUT /v2/images/{id}/file, the bar following the
// bytes sent; then the image is read again for its status, size and checksum. A refusal (409
// when the image already has data, 413 beyond the size limit) shows the API's message.
function uploadForm(imageId, image, onUploaded) {
  const file = field("Image file", { type: "file" }, "Sent as the image's data (application/octet-stream).");
  const submit = h("button", { type: "submit" }, "Upload");
  const progress = h("progress", { max: "1", value: "0", id: "upload-progress" });
  const progressLabel = h("label", { for: "upload-progress" });
  const progressWrap = h("div", { class: "progress", hidden: true }, progressLabel, progress);
  const result = h("p", { class: "notice", role: "status" });
  const state = h("p", { class: "muted" });
  const describe = (current) => {
    state.textContent =
      current.status === "queued"
        ? "This image has no data yet."
        : `This image is ${current.status}; an image's data is uploaded once.`;
  };
  describe(image);
  const form = h(
    "form",
    { class: "upload", "aria-labelledby": "upload-title" },
    h("h2", { id: "upload-title" }, "Image data"),
    state,
    file.wrap,
    submit,
    progressWrap,
    result,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showFieldError(file.input, file.error, null);
    result.textContent = "";
    const chosen = file.input.files[0];
    if (!chosen) {
      showFieldError(file.input, file.error, new Error("Choose a file to upload."));
      file.input.focus();
      return;
    }
    submit.disabled = true;
    progressWrap.hidden = false;
    progress.max = Math.max(chosen.size, 1);
    progress.value = 0;
    const show = (sent, total) => {
      progress.max = Math.max(total, 1);
      progress.value = sent;
      const percent = total ? Math.floor((sent * 100) / total) : 100;
      progressLabel.textContent = `${formatSize(sent)} of ${formatSize(total)} sent (${percent}%)`;
      progress.setAttribute("aria-valuetext", `${percent}%`);
    };
    show(0, chosen.size);
    try {
      await uploadData(`v2/images/${encodeURIComponent(imageId)}/file`, chosen, show);
      const { data: after } = await call("GET", `v2/images/${encodeURIComponent(imageId)}`);
      const message = `Uploaded: the image is ${after.status}, ${after.size ?? "?"} bytes, checksum ${after.checksum || "—"}.`;
      result.textContent = message; // a status region: read out once, where it is shown
      describe(after);
      onUploaded(after);
    } catch (err) {
      showFieldError(file.input, file.error, err);
      file.input.focus();
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function renderImage(container, imageId) {
  const [{ data: image }, tags] = await Promise.all([
    call("GET", `v2/images/${encodeURIComponent(imageId)}`),
    loadTags(imageId),
  ]);
  const tagSection = h("section", { class: "card", "aria-labelledby": "tags-title" });
  const status = h("p", { class: "notice", role: "status" });

  function drawTags(current) {
    replace(
      tagSection,
      h("h2", { id: "tags-title" }, `Tags (${current.length} of ${MAX_TAGS})`),
      status,
      current.length
        ? h(
            "table",
            { class: "tags" },
            h("caption", { class: "visually-hidden" }, "Tags of this image"),
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Key"), h("th", { scope: "col" }, "Value"))),
            h("tbody", {}, current.map((tag) => tagRow(imageId, tag, refresh))),
          )
        : h("p", { class: "muted" }, "This image has no tags."),
      addForm(imageId, refresh),
      rules(current.length),
    );
  }

  const propsSection = h("section", { class: "card", "aria-labelledby": "props-title" });
  function drawProps(current) {
    replace(propsSection, h("h2", { id: "props-title" }, "Properties"), properties(current));
  }

  async function refresh(message) {
    drawTags(await loadTags(imageId));
    status.textContent = message;
  }

  replace(
    container,
    h("p", { class: "crumbs" }, h("a", { href: "#/images" }, "Images"), " / ", image.name || image.id),
    h("h1", {}, image.name || image.id),
    h(
      "div",
      { class: "layout-detail" },
      tagSection,
      h(
        "div",
        { class: "stack" },
        h("section", { class: "card" }, uploadForm(imageId, image, drawProps)),
        propsSection,
      ),
    ),
  );
  drawProps(image);
  drawTags(tags);
}
