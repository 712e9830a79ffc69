// The console's shell: sign-in, the top bar, and the hash router that picks a view.
//
// Routes: #/tags (overview), #/images?tag=k=v&name=&status= (list), #/images/<id> (detail).
// Every view is a function (container, params) -> Promise that fills the container.

import { currentSession, onSignedOut, signIn, signOut } from "./api.js";
import { announce, field, h, replace, showFieldError } from "./dom.js";
import { renderImage } from "./image.js";
import { renderImages } from "./images.js";
import { renderOverview } from "./overview.js";

const main = document.getElementById("main");
let signedOutMessage = "";

function parseRoute() {
  const hash = location.hash.startsWith("#/") ? location.hash.slice(2) : "tags";
  const [path, query = ""] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(query) };
}

function setNavCurrent(view) {
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function showAccount(session) {
  for (const item of document.querySelectorAll("[data-signed-in]")) item.hidden = !session;
  document.getElementById("account").hidden = !session;
  document.getElementById("who").textContent = session
    ? `${session.user} · project ${session.projectName}`
    : "";
}

// Moves focus to the new view's heading, so keyboard and screen-reader users start there.
function focusHeading() {
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
    document.title = `${heading.textContent} · imstags console`;
  }
}

async function route() {
  const session = currentSession();
  showAccount(session);
  if (!session) {
    renderSignIn();
    return;
  }
  const { parts, params } = parseRoute();
  const [view, id] = parts;
  setNavCurrent(view === "images" ? "images" : "tags");
  const container = h("div", { class: "view" });
  replace(main, container);
  main.setAttribute("aria-busy", "true");
  try {
    if (view === "images" && id) await renderImage(container, id);
    else if (view === "images") await renderImages(container, params);
    else await renderOverview(container, params);
  } catch (error) {
    if (!currentSession()) return; // the session ended; the sign-in form is showing
    replace(
      container,
      h("h1", {}, "Something went wrong"),
      h("p", { class: "error", role: "alert" }, error.text || error.message),
    );
  } finally {
    main.removeAttribute("aria-busy");
  }
  focusHeading();
}

function renderSignIn() {
  const name = field("User name", { name: "username", autocomplete: "username", required: true });
  const password = field("Password", {
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const error = h("p", { class: "field-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "card sign-in", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    h("p", { class: "hint" }, "With your imstags user (Keystone v3, domain Default)."),
    signedOutMessage ? h("p", { class: "notice" }, signedOutMessage) : null, // announced by onSignedOut
    name.wrap,
    password.wrap,
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    showFieldError(password.input, error, null);
    try {
      const session = await signIn(name.input.value, password.input.value);
      signedOutMessage = "";
      announce(`Signed in as ${session.user}.`);
      if (!location.hash.startsWith("#/")) location.hash = "#/tags";
      await route();
    } catch (err) {
      showFieldError(password.input, error, err);
      password.input.select();
    } finally {
      submit.disabled = false;
    }
  });
  replace(main, form);
  document.title = "Sign in · imstags console";
  name.input.focus();
}

onSignedOut((reason) => {
  signedOutMessage = reason;
  showAccount(null);
  renderSignIn();
  announce(reason);
});

document.getElementById("sign-out").addEventListener("click", async () => {
  try {
    await signOut();
  } catch {
    // signOut forgets the token locally whatever the server answered
  }
});

document.querySelector(".skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  (main.querySelector("h1") || main).focus();
});

window.addEventListener("hashchange", () => {
  if (location.hash.startsWith("#/")) route();
});
route();
