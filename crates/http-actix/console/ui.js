// Building the page: elements made with the DOM (never from HTML strings, so no text from
// the service can become markup), dates and sizes, and errors explained in words.

/** `h("a", {href: "/x", class: "y"}, "text", child…)`; `on*` attributes become listeners. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v);
    } else if (k === "value") {
      el.value = v;
    } else if (k === "checked") {
      el.checked = Boolean(v);
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** A field: its label (always), the control, and an optional hint tied to it. */
let fieldIds = 0;
export function field(label, control, hint) {
  fieldIds += 1;
  const id = control.id || `f${fieldIds}`;
  control.id = id;
  const parts = [h("label", { for: id }, label), control];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("p", { class: "hint", id: hintId }, hint));
  }
  return h("div", { class: "field" }, parts);
}

export function size(bytes) {
  if (bytes === undefined || bytes === null) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = bytes;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return h("time", { datetime: iso }, d.toLocaleString());
}

const STATUS_WORDS = {
  draft: "draft",
  pending_validation: "pending review",
  validated: "validated",
  rejected: "rejected",
  archived: "archived",
};

export function badge(status) {
  return h("span", { class: `badge badge-${status}` }, STATUS_WORDS[status] || status);
}

function fmt(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

/** What an error means for the person who clicked, before the service's own sentence. */
export function explain(err, subject) {
  const what = subject ? `“${subject}”` : "This file";
  const lock = err.body && err.body.lock;
  switch (err.code) {
    case "file_locked":
      return lock
        ? `${what} is locked by ${lock.holder} until ${fmt(lock.expires_at)}: only they can change it. Ask them to unlock it, or a reviewer to force-unlock it.`
        : `${what} is locked by someone else.`;
    case "version_conflict": {
      const now = err.body.current_version ? ` (it is now at version ${err.body.current_version})` : "";
      return err.status === 412
        ? `${what} changed since this page showed it${now}: reload to see the new version, then try again.`
        : `${what} has a newer version than the one your copy was taken from${now}: check out the latest version and make your change again.`;
    }
    case "invalid_transition":
      return "Someone already decided on this version, or it is not in the state this needs: reload the page.";
    case "missing_jwt_token":
    case "unauthorized":
      return "You are not signed in, or your session has expired: sign in again.";
    case "access_denied":
      return "You are not allowed to do this.";
    case "project_service_unavailable":
      return "The project service did not answer, so access could not be checked: try again later.";
    case "file_not_found":
      return `${what} does not exist (any more).`;
    case "version_not_found":
      return "This version does not exist, or you may not see it.";
    case "payload_too_large":
      return "The file is larger than the service accepts.";
    case "too_many_requests":
      return "The service is busy with other transfers: try again in a moment.";
    case "invalid_request":
    case "invalid_path":
      return "The service refused the request as given.";
    case "network_error":
      return "No answer from the service.";
    default:
      return "The service could not do this.";
  }
}

/** The error as shown: the explanation, the contract's `detail` and the `request_id`. */
export function errorBox(err, subject) {
  return h(
    "div",
    { class: "error", role: "alert" },
    h("p", { class: "error-what" }, explain(err, subject)),
    err.detail ? h("p", { class: "error-detail" }, err.detail) : null,
    h(
      "p",
      { class: "error-meta" },
      `Error ${err.code}${err.status ? ` (HTTP ${err.status})` : ""}`,
      err.requestId ? [" · request id ", h("code", { class: "request-id" }, err.requestId)] : null,
    ),
  );
}

/** A place for one action's outcome: an error, or a short confirmation read out politely. */
export function outcome() {
  const el = h("div", { class: "outcome", "aria-live": "polite" });
  return {
    el,
    clear() {
      el.replaceChildren();
    },
    error(err, subject) {
      el.replaceChildren(errorBox(err, subject));
    },
    ok(text) {
      el.replaceChildren(h("p", { class: "ok", role: "status" }, text));
    },
  };
}
