// The console's only way to the service: calls to the public API of this same origin, with
// the `access_token` cookie the browser already has (sent by itself) or the token pasted into
// the sign-in form (kept in sessionStorage: for this browser tab only, gone when it closes).

const TOKEN_KEY = "storage-console.token";
const WORKSPACE_KEY = "storage-console.workspace";

/** The reader's URL-safe base64 without padding, to text. */
function base64url(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bytes = Uint8Array.from(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)), (c) =>
    c.charCodeAt(0),
  );
  return new TextDecoder().decode(bytes);
}

export const session = {
  token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  signIn(token) {
    sessionStorage.setItem(TOKEN_KEY, token.trim());
  },
  signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(WORKSPACE_KEY);
  },
  /** The user id (`sub`) of the pasted token, read without checking it (the service does). */
  user() {
    const token = this.token();
    if (!token) return sessionStorage.getItem(WORKSPACE_KEY);
    try {
      const claims = JSON.parse(base64url(token.split(".")[1] || ""));
      return typeof claims.sub === "string" ? claims.sub : null;
    } catch {
      return null;
    }
  },
  /** With the cookie, the console cannot read who is signed in: the user tells it. */
  setUser(user) {
    sessionStorage.setItem(WORKSPACE_KEY, user);
  },
};

/** An answer of the API that is not a success: the contract's error body. */
export class ApiError extends Error {
  constructor(status, body, requestId) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.message) || `http_${status}`;
    this.detail = (body && body.detail) || "";
    this.requestId = (body && body.request_id) || requestId || null;
    this.body = body || {};
  }
}

function authHeaders() {
  const token = session.token();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** `route?query` with the empty values left out. */
export function withQuery(route, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${route}?${s}` : route;
}

function parse(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

/** Calls the API; resolves with the JSON answer, rejects with an `ApiError`. */
export async function call(method, route, { query, json, headers } = {}) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", ...authHeaders(), ...(headers || {}) },
  };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  let res;
  try {
    res = await fetch(withQuery(route, query), init);
  } catch {
    throw new ApiError(0, {
      message: "network_error",
      detail: "The service did not answer; check the connection and try again.",
    });
  }
  const text = await res.text();
  const body = parse(text);
  if (!res.ok) {
    throw new ApiError(
      res.status,
      body || { message: `http_${res.status}`, detail: res.statusText },
      res.headers.get("X-Request-Id"),
    );
  }
  return body;
}

/** One request with upload progress (fetch reports none). Resolves with status 0 when the
 *  browser did not let the request through (network, CORS or the page's policy). */
function send(method, url, { body, headers, onProgress }) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [k, v] of Object.entries(headers || {})) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable && onProgress) onProgress(e.loaded, e.total);
    });
    xhr.addEventListener("load", () =>
      resolve({
        status: xhr.status,
        text: xhr.responseText,
        requestId: xhr.getResponseHeader("X-Request-Id"),
      }),
    );
    xhr.addEventListener("error", () => resolve({ status: 0 }));
    xhr.addEventListener("abort", () => resolve({ status: 0 }));
    xhr.send(body);
  });
}

/**
 * Uploads `file` to `path`: presigned, straight to the object store, when the store's URL is
 * one this page may send to (this origin, or one of `directOrigins`); through the service's
 * proxy otherwise, or when the browser refuses the direct request. The proxy upload is
 * conditional (`If-Match`: `expected` is the version the page showed, 0 for a new name).
 * `onRoute("direct"|"proxy")` says which way the bytes go; `onProgress(sent, total)`.
 */
export async function upload({ bucket, path, file, expected, directOrigins, onRoute, onProgress }) {
  const presigned = await call("POST", "/upload/presign", {
    json: {
      bucket,
      path,
      content_type: file.type || "application/octet-stream",
      size: file.size,
    },
  });
  const origin = new URL(presigned.url, location.href).origin;
  if (origin === location.origin || directOrigins.includes(origin)) {
    onRoute("direct");
    const headers = { ...presigned.headers };
    delete headers["Content-Length"]; // the browser sets it
    delete headers.Host;
    const put = await send(presigned.method, presigned.url, { body: file, headers, onProgress });
    if (put.status >= 200 && put.status < 300) {
      return call("POST", "/upload/complete", { json: { upload_id: presigned.upload_id } });
    }
    if (put.status !== 0) {
      const body = parse(put.text);
      throw new ApiError(
        put.status,
        body && body.message
          ? body
          : {
              message: "store_refused",
              detail: `The object store refused the upload (HTTP ${put.status}).`,
            },
        put.requestId,
      );
    }
  }
  onRoute("proxy");
  const form = new FormData();
  form.append("bucket", bucket);
  form.append("path", path);
  form.append("file", file, file.name);
  const headers = { ...authHeaders(), Accept: "application/json" };
  if (expected !== undefined && expected !== null) headers["If-Match"] = String(expected);
  const res = await send("POST", "/upload/proxy", { body: form, headers, onProgress });
  const body = parse(res.text);
  if (res.status === 0) {
    throw new ApiError(0, {
      message: "network_error",
      detail: "The upload was interrupted; check the connection and try again.",
    });
  }
  if (res.status < 200 || res.status >= 300) {
    throw new ApiError(res.status, body, res.requestId);
  }
  return body;
}
