// The console's only way to the server: the public API, with a Keystone token.
//
// The token lives in sessionStorage (this tab only, gone when the tab closes), never in a
// cookie, and goes out in X-Auth-Token as any OpenStack client sends it. Every error the API
// answers is thrown as an ApiError carrying its IMG code and message, so that views can show
// the API's own words next to the field that caused it.

const STORE_KEY = "imstags.console.session";
// The console is served at <root>/console/, so the API root is one level up (this keeps the
// console working behind a proxy that serves imstags under a path prefix).
export const API_ROOT = new URL("../", document.baseURI);

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  // "IMG.0116: The image already has 10 tags." — what the user sees, never rewritten.
  get text() {
    return this.code ? `${this.code}: ${this.message}` : this.message;
  }
}

let session = load();
const signedOutListeners = [];

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE_KEY)) || null;
  } catch {
    return null;
  }
}

export function currentSession() {
  return session;
}

export function onSignedOut(listener) {
  signedOutListeners.push(listener);
}

function forget(reason) {
  session = null;
  sessionStorage.removeItem(STORE_KEY);
  for (const listener of signedOutListeners) listener(reason);
}

async function errorOf(response) {
  let code = "";
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || "";
      message = body.error.message || message;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, code, message);
}

// One API call. path is relative to the API root ("v2/images?limit=25").
export async function call(method, path, { body, headers = {}, auth = true } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (auth) {
    if (!session) throw new ApiError(401, "", "You are signed out.");
    init.headers["X-Auth-Token"] = session.token;
  }
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  init.credentials = "omit"; // nothing but the token authenticates the console
  let response;
  try {
    response = await fetch(new URL(path, API_ROOT), init);
  } catch (err) {
    throw new ApiError(0, "", `The server cannot be reached (${err.message}).`);
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (auth && response.status === 401) forget("Your session has ended; sign in again.");
    throw error;
  }
  if (response.status === 204) return { response, data: null };
  const text = await response.text();
  return { response, data: text ? JSON.parse(text) : null };
}

export async function signIn(name, password) {
  const body = {
    auth: {
      identity: {
        methods: ["password"],
        password: { user: { name, domain: { name: "Default" }, password } },
      },
    },
  };
  const { response, data } = await call("POST", "v3/auth/tokens?nocatalog", { body, auth: false });
  const token = response.headers.get("X-Subject-Token");
  session = {
    token,
    user: data.token.user.name,
    projectId: data.token.project.id,
    projectName: data.token.project.name || data.token.project.id,
    expiresAt: data.token.expires_at,
  };
  sessionStorage.setItem(STORE_KEY, JSON.stringify(session));
  return session;
}

// Revokes the token on the server, then forgets it here (even if revoking failed).
export async function signOut() {
  if (!session) return;
  try {
    await call("DELETE", "v3/auth/tokens", { headers: { "X-Subject-Token": session.token } });
  } finally {
    forget("You are signed out.");
  }
}

// Paths of the IMS API are per project.
export function projectPath(rest) {
  return `v2/${encodeURIComponent(session.projectId)}/${rest}`;
}

// Runs task(item) for every item, at most `width` at a time, reporting each result.
export async function forEach(items, width, task, onResult) {
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const item = items[next++];
      let result;
      try {
        result = { item, ok: true, value: await task(item) };
      } catch (error) {
        result = { item, ok: false, error };
      }
      onResult(result);
    }
  }
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

// Sends a file as an image's data (PUT, application/octet-stream) with XMLHttpRequest, because
// fetch reports no upload progress. onProgress(sent, total) follows the bytes leaving the
// browser; the promise resolves when the API answers, or rejects with the API's ApiError.
export function uploadData(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    if (!session) {
      reject(new ApiError(401, "", "You are signed out."));
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", new URL(path, API_ROOT));
    xhr.withCredentials = false; // nothing but the token authenticates the console
    xhr.setRequestHeader("X-Auth-Token", session.token);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(file.size, file.size);
        resolve(xhr.status);
        return;
      }
      let code = "";
      let message = `${xhr.status} ${xhr.statusText}`.trim();
      try {
        const body = JSON.parse(xhr.responseText);
        if (body && body.error) {
          code = body.error.code || "";
          message = body.error.message || message;
        }
      } catch {
        // not JSON: keep the status line
      }
      if (xhr.status === 401) forget("Your session has ended; sign in again.");
      reject(new ApiError(xhr.status, code, message));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "", "The server cannot be reached.")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "", "The upload was cancelled.")));
    xhr.send(file);
  });
}
