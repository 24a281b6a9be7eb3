// The console: one page whose location says what to show. Every view is a function of the
// URL, so any view can be bookmarked, shared or reloaded:
//
//   /console                                    home
//   /console/browse/<bucket>/<owner>/<dir>/…/   a directory (?cursor=…&limit=…)
//   /console/file/<bucket>/<owner>/<path…>      a file: metadata, tags, versions, lock, review
//   /console/audit/<bucket>/<owner>/<path…>     the audit trail of a file or directory (dir/)
//   /console/locks/<bucket>/<owner>/<dir>/      the live locks under a directory
//   /console/reviews/<bucket>/<owner>/<dir>/    the versions waiting for review there

import { ApiError, call, session, upload, withQuery } from "./api.js";
import { badge, errorBox, field, h, outcome, size, when } from "./ui.js";

const BUCKETS = ["users", "companies", "projects"];
const main = document.getElementById("main");
const account = document.getElementById("account");
const directOrigins = (
  document.querySelector('meta[name="console-direct-origins"]')?.content || ""
)
  .split(/\s+/)
  .filter(Boolean);

// ---- locations ------------------------------------------------------------------------------

/** `/console/<view>/<segments of the logical path, each percent-encoded>`. */
export function viewUrl(view, logicalPath, query) {
  const segments = logicalPath.split("/").filter(Boolean).map(encodeURIComponent);
  const tail = logicalPath.endsWith("/") && segments.length ? "/" : "";
  return withQuery(`/console/${view}/${segments.join("/")}${tail}`, query);
}

function parseLocation() {
  const rest = location.pathname.replace(/^\/console\/?/, "");
  const [view, ...segments] = rest.split("/");
  const decoded = segments.filter((s, i) => s !== "" || i < segments.length - 1).map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  const dir = rest.endsWith("/");
  const path = decoded.length ? `/${decoded.join("/")}${dir ? "/" : ""}` : "";
  return { view: view || "", path, dir, query: new URLSearchParams(location.search) };
}

function go(url) {
  history.pushState(null, "", url);
  render();
}

// Links inside the console change the view without reloading the page.
document.addEventListener("click", (e) => {
  const a = e.target.closest && e.target.closest("a[href^='/console']");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  e.preventDefault();
  go(a.getAttribute("href"));
});
window.addEventListener("popstate", () => render());

function link(view, path, text, query) {
  return h("a", { href: viewUrl(view, path, query) }, text);
}

/** Breadcrumbs of a logical path: bucket, owner, each directory, the file. */
function breadcrumbs(path) {
  const parts = path.split("/").filter(Boolean);
  const items = [];
  let acc = "";
  parts.forEach((part, i) => {
    acc += `/${part}`;
    const last = i === parts.length - 1;
    const isDir = !last || path.endsWith("/");
    if (i === 0) {
      items.push(h("li", {}, h("span", {}, part)));
      return;
    }
    items.push(
      h(
        "li",
        {},
        last
          ? h("span", { "aria-current": "page" }, part)
          : link("browse", `${acc}/`, part),
      ),
    );
    if (isDir && last) acc += "/";
  });
  return h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("ol", {}, items));
}

function parentDir(filePath) {
  return filePath.slice(0, filePath.lastIndexOf("/") + 1);
}

function bucketOf(path) {
  return path.split("/")[1] || "";
}

function heading(text) {
  return h("h1", { tabindex: "-1" }, text);
}

function show(...children) {
  main.replaceChildren(...children);
  const h1 = main.querySelector("h1");
  if (h1) h1.focus();
}

function busy(text) {
  main.replaceChildren(h("p", { class: "loading", role: "status" }, text));
}

/** Runs `action` for a form's submit button: disabled while it runs, outcome shown. */
function act(button, out, action, success) {
  return async (e) => {
    if (e) e.preventDefault();
    button.disabled = true;
    out.clear();
    try {
      const result = await action();
      if (success) success(result);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      out.error(err);
    } finally {
      button.disabled = false;
    }
  };
}

// ---- signing in -----------------------------------------------------------------------------

/** Whether the browser is signed in: a pasted token, or a cookie the service accepts. */
async function signedIn() {
  try {
    await call("GET", "/list", { query: { bucket: "users", path: "/users/_/", limit: 1 } });
    return true;
  } catch (err) {
    if (err.code === "missing_jwt_token" || err.code === "unauthorized") return err;
    return true; // 403 and the like: the service knows who asks
  }
}

function accountBar(mode) {
  const user = session.user();
  const who =
    mode === "token"
      ? `Signed in as ${user || "(token without sub)"}`
      : "Signed in with this browser's session";
  const signOut = h("button", { type: "button", class: "link-button" }, "Sign out");
  signOut.addEventListener("click", () => {
    session.signOut();
    if (mode === "cookie") {
      account.replaceChildren(
        h(
          "p",
          { role: "status" },
          "The session cookie belongs to your identity provider: sign out there.",
        ),
      );
      return;
    }
    go("/console");
  });
  account.replaceChildren(h("span", { class: "who" }, who), signOut);
}

function signInView(reason) {
  account.replaceChildren();
  const input = h("input", {
    type: "password",
    name: "token",
    autocomplete: "off",
    required: true,
    spellcheck: "false",
  });
  const button = h("button", { type: "submit" }, "Sign in");
  const out = outcome();
  const form = h(
    "form",
    { class: "card sign-in" },
    field(
      "Token",
      input,
      "Paste a JWT; in development `storage-server token --sub alice` prints one. It is kept for this browser tab only.",
    ),
    button,
    out.el,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    session.signIn(input.value);
    const state = await signedIn();
    if (state === true) {
      render();
    } else {
      session.signOut();
      out.error(state);
      input.focus();
    }
  });
  show(
    heading("Sign in"),
    reason && reason.code === "unauthorized" ? errorBox(reason) : null,
    form,
  );
}

// ---- home -----------------------------------------------------------------------------------

function homeView() {
  const user = session.user();
  const bucket = h(
    "select",
    { name: "bucket" },
    BUCKETS.map((b) => h("option", { value: b }, b)),
  );
  const owner = h("input", {
    name: "owner",
    required: true,
    pattern: "[A-Za-z0-9_-]+",
    value: user || "",
  });
  const dir = h("input", { name: "dir", placeholder: "docs/2025/" });
  const open = h("button", { type: "submit" }, "Open");
  const form = h(
    "form",
    { class: "card inline-form" },
    h("h2", {}, "Open a folder"),
    field("Bucket", bucket),
    field("Owner", owner, "Your user id, your company id, or a project id."),
    field("Folder", dir),
    open,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!session.token() && bucket.value === "users") session.setUser(owner.value);
    const rest = dir.value
      .split("/")
      .filter(Boolean)
      .map((s) => `${s}/`)
      .join("");
    go(viewUrl("browse", `/${bucket.value}/${owner.value}/${rest}`));
  });
  show(
    heading("Storage console"),
    user
      ? h(
          "ul",
          { class: "shortcuts" },
          h("li", {}, link("browse", `/users/${user}/`, "My files")),
          h("li", {}, link("locks", `/users/${user}/`, "My locks")),
        )
      : null,
    form,
  );
}

// ---- browse ---------------------------------------------------------------------------------

async function browseView(path, query) {
  const limit = query.get("limit") || "100";
  const cursor = query.get("cursor") || "";
  const order = query.get("order") === "desc" ? "desc" : "asc";
  busy("Loading the folder…");
  let page;
  try {
    page = await call("GET", "/list", {
      query: { bucket: bucketOf(path), path, limit, cursor },
    });
  } catch (err) {
    show(heading(path), breadcrumbs(path), errorBox(err, path));
    return;
  }
  const entries = [...page.entries];
  if (order === "desc") entries.reverse();
  const known = new Map(entries.filter((e) => e.file).map((e) => [e.name, e.file]));

  const sortButton = h(
    "a",
    {
      href: viewUrl("browse", path, { limit, cursor, order: order === "asc" ? "desc" : "asc" }),
      class: "sort",
    },
    "Name",
    h("span", { "aria-hidden": "true" }, order === "asc" ? " ▲" : " ▼"),
    h("span", { class: "visually-hidden" }, order === "asc" ? " (A to Z; sort Z to A)" : " (Z to A; sort A to Z)"),
  );
  const rows = entries.map((e) =>
    e.type === "directory"
      ? h(
          "tr",
          {},
          h("td", {}, h("span", { class: "icon-dir", "aria-hidden": "true" }), link("browse", e.path, `${e.name}/`)),
          h("td", {}, "folder"),
          h("td", {}),
          h("td", {}),
          h("td", {}),
        )
      : h(
          "tr",
          {},
          h("td", {}, link("file", e.path, e.name)),
          h("td", {}, size(e.file.size)),
          h("td", {}, badge(e.file.status)),
          h("td", {}, `v${e.file.version}`, e.file.validated_version ? ` (validated v${e.file.validated_version})` : ""),
          h("td", {}, e.file.lock ? `locked by ${e.file.lock.holder}` : ""),
        ),
  );
  const table = entries.length
    ? h(
        "table",
        { class: "listing" },
        h("caption", { class: "visually-hidden" }, `Contents of ${path}`),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col", "aria-sort": order === "asc" ? "ascending" : "descending" }, sortButton),
            h("th", { scope: "col" }, "Size"),
            h("th", { scope: "col" }, "Status"),
            h("th", { scope: "col" }, "Version"),
            h("th", { scope: "col" }, "Lock"),
          ),
        ),
        h("tbody", {}, rows),
      )
    : h("p", { class: "empty" }, "This folder is empty.");

  const pager = h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    cursor ? link("browse", path, "First page", { limit, order }) : null,
    page.next_cursor
      ? link("browse", path, "Next page", { limit, order, cursor: page.next_cursor })
      : null,
  );

  const sub = h("input", { name: "folder", pattern: "[^/]+", required: true });
  const openSub = h("button", { type: "submit" }, "Open folder");
  const subForm = h("form", { class: "inline-form" }, field("New or existing sub-folder", sub), openSub);
  subForm.addEventListener("submit", (e) => {
    e.preventDefault();
    go(viewUrl("browse", `${path}${sub.value}/`));
  });

  show(
    heading(path.split("/").filter(Boolean).slice(-1)[0] || path),
    breadcrumbs(path),
    h(
      "p",
      { class: "tools" },
      link("locks", path, "Locks here"),
      " · ",
      link("reviews", path, "Reviews here"),
      " · ",
      link("audit", path, "Audit trail"),
    ),
    uploader(path, known),
    table,
    pager,
    subForm,
  );
}

/** Drop zone and picker; one row per file with its progress, its route and its outcome. */
function uploader(dir, known) {
  const input = h("input", { type: "file", multiple: true, class: "file-input" });
  const list = h("ul", { class: "uploads", "aria-label": "Uploads" });
  const zone = h(
    "section",
    { class: "drop-zone", "aria-label": "Upload" },
    h("h2", {}, "Upload"),
    h("p", {}, "Drop files here, or "),
    field("Choose files", input),
    list,
  );
  let pending = 0;
  const start = (files) => {
    for (const file of files) {
      pending += 1;
      uploadOne(dir, file, known, list).finally(() => {
        pending -= 1;
        if (pending === 0) {
          list.append(
            h("li", { class: "uploads-done" }, link("browse", dir, "Refresh the folder")),
          );
        }
      });
    }
  };
  input.addEventListener("change", () => {
    start([...input.files]);
    input.value = "";
  });
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("dragging");
    start([...e.dataTransfer.files]);
  });
  return zone;
}

async function uploadOne(dir, file, known, list) {
  const path = `${dir}${file.name}`;
  const existing = known.get(file.name);
  const bar = h("progress", { max: "100", value: "0", "aria-label": `Progress of ${file.name}` });
  const route = h("span", { class: "route" });
  const out = outcome();
  const item = h(
    "li",
    { class: "upload" },
    h("span", { class: "name" }, file.name),
    h("span", { class: "size" }, size(file.size)),
    bar,
    route,
    out.el,
  );
  list.append(item);
  try {
    const done = await upload({
      bucket: bucketOf(dir),
      path,
      file,
      expected: existing ? existing.version : 0,
      directOrigins,
      onRoute: (r) => {
        route.textContent =
          r === "direct" ? "straight to the store" : "through the service";
        item.dataset.route = r;
      },
      onProgress: (sent, total) => {
        bar.value = Math.round((sent / total) * 100);
      },
    });
    bar.value = 100;
    item.dataset.state = "done";
    out.el.replaceChildren(
      h(
        "p",
        { class: "ok", role: "status" },
        `Stored as version ${done.version.number} of `,
        link("file", path, file.name),
        ".",
      ),
    );
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    item.dataset.state = "failed";
    out.error(err, file.name);
  }
}

// ---- a file ---------------------------------------------------------------------------------

async function fileView(path, query) {
  // The versions come in pages (newest first): `cursor` and `limit` of the console's URL.
  const limit = query?.get("limit") || "";
  const cursor = query?.get("cursor") || "";
  busy("Loading the file…");
  let data;
  try {
    data = await call("GET", "/versions", { query: { bucket: bucketOf(path), path, limit, cursor } });
  } catch (err) {
    show(heading(path), breadcrumbs(path), errorBox(err, path));
    return;
  }
  const { file, versions } = data;
  const me = session.user();
  const refresh = () => render();

  const facts = h(
    "dl",
    { class: "facts" },
    h("dt", {}, "Status"),
    h("dd", {}, badge(file.status)),
    h("dt", {}, "Latest version"),
    h("dd", {}, `v${file.version}`),
    h("dt", {}, "Validated version"),
    h("dd", {}, file.validated_version ? `v${file.validated_version}` : "none yet"),
    h("dt", {}, "Size"),
    h("dd", {}, size(file.size)),
    h("dt", {}, "Type"),
    h("dd", {}, file.content_type),
    h("dt", {}, "Created by"),
    h("dd", {}, file.owner_id, " · ", when(file.created_at)),
    h("dt", {}, "SHA-256"),
    h("dd", {}, h("code", { class: "hash" }, file.sha256)),
    file.checkout
      ? [
          h("dt", {}, "Checked out from"),
          h(
            "dd",
            {},
            link("file", file.checkout.path, file.checkout.path),
            ` at version ${file.checkout.version}`,
          ),
        ]
      : null,
  );

  show(
    heading(file.name),
    breadcrumbs(path),
    h("p", { class: "tools" }, link("audit", path, "Audit trail"), " · ", link("browse", parentDir(path), "Back to the folder")),
    facts,
    downloads(file),
    lockPanel(file, me, refresh),
    file.checkout ? commitPanel(file, refresh) : checkoutPanel(file, me),
    versionsPanel(file, versions, me, refresh, {
      first: cursor ? link("file", path, "Newest versions", { limit }) : null,
      older: data.next_cursor ? link("file", path, "Older versions", { limit, cursor: data.next_cursor }) : null,
    }),
    tagsPanel(file, refresh),
    archivePanel(file, refresh),
  );
}

async function download(file, version) {
  const res = await call("POST", "/download/presign", {
    json: { bucket: file.bucket, path: file.path, version },
  });
  const a = h("a", { href: res.url, download: file.name, class: "visually-hidden" }, "download");
  document.body.append(a);
  a.click();
  a.remove();
}

function downloadButton(file, version, text) {
  const out = outcome();
  const button = h("button", { type: "button" }, text);
  button.addEventListener("click", act(button, out, () => download(file, version)));
  return h("span", { class: "download" }, button, out.el);
}

function downloads(file) {
  return h(
    "section",
    { class: "card", "aria-labelledby": "dl-h" },
    h("h2", { id: "dl-h" }, "Download"),
    h(
      "div",
      { class: "buttons" },
      downloadButton(file, "latest", `Download latest (v${file.version})`),
      file.validated_version
        ? downloadButton(file, "validated", `Download validated (v${file.validated_version})`)
        : null,
    ),
  );
}

function lockPanel(file, me, refresh) {
  const out = outcome();
  const body = [];
  const ref = { bucket: file.bucket, path: file.path };
  if (!file.lock) {
    const button = h("button", { type: "button" }, "Lock");
    button.addEventListener("click", act(button, out, () => call("POST", "/lock", { json: ref }), refresh));
    body.push(h("p", {}, "Nobody holds the lock."), button);
  } else {
    const lock = file.lock;
    body.push(
      h(
        "p",
        { class: "lock-state" },
        `Locked by ${lock.holder} since `,
        when(lock.acquired_at),
        ", until ",
        when(lock.expires_at),
        ` (taken on version ${lock.base_version}).`,
      ),
    );
    if (!me || lock.holder === me) {
      const unlock = h("button", { type: "button" }, "Unlock");
      unlock.addEventListener("click", act(unlock, out, () => call("POST", "/unlock", { json: ref }), refresh));
      body.push(unlock);
    }
    if (lock.holder !== me) {
      const reason = h("input", { name: "reason", required: true });
      const force = h("button", { type: "submit" }, "Force unlock");
      const form = h(
        "form",
        { class: "inline-form" },
        field("Reason", reason, "Reviewers (and the owner of a personal bucket) may release another person's lock; the reason goes into the audit trail."),
        force,
      );
      form.addEventListener(
        "submit",
        act(force, out, () =>
          call("POST", "/unlock", { json: { ...ref, force: true, reason: reason.value } }), refresh),
      );
      body.push(form);
    }
  }
  return h(
    "section",
    { class: "card", "aria-labelledby": "lock-h" },
    h("h2", { id: "lock-h" }, "Lock"),
    body,
    out.el,
  );
}

function checkoutPanel(file, me) {
  const out = outcome();
  const target = h("input", {
    name: "target",
    required: true,
    value: me ? `/users/${me}/work/${file.name}` : "",
    placeholder: "/users/<you>/work/",
  });
  const button = h("button", { type: "submit" }, "Check out");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "co-h" },
    h("h2", { id: "co-h" }, "Check out to my workspace"),
    h("p", {}, "Copies the latest version into your workspace and locks this file for you, so that you can change it and commit it back."),
    field("Copy to", target),
    button,
    out.el,
  );
  form.addEventListener(
    "submit",
    act(
      button,
      out,
      () =>
        call("POST", "/copy", {
          json: {
            source_bucket: file.bucket,
            source_path: file.path,
            target_bucket: bucketOf(target.value),
            target_path: target.value,
            overwrite: true,
          },
        }),
      (res) => go(viewUrl("file", res.file.path)),
    ),
  );
  return form;
}

function commitPanel(file, refresh) {
  const out = outcome();
  const picker = h("input", { type: "file", name: "replacement" });
  const message = h("textarea", { name: "message", required: true, rows: "2" });
  const keep = h("input", { type: "checkbox", name: "keep_lock" });
  const button = h("button", { type: "submit" }, "Commit");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "commit-h" },
    h("h2", { id: "commit-h" }, "Commit back"),
    h(
      "p",
      {},
      "This is your working copy of ",
      link("file", file.checkout.path, file.checkout.path),
      ". Replace its content if you changed it, then commit it as the next version there (it goes to review).",
    ),
    field("New content (optional)", picker),
    field("Message", message, "What changed; required."),
    h("div", { class: "field check" }, keep, h("label", { for: (keep.id = "keep-lock") }, "Keep the lock after the commit")),
    button,
    out.el,
  );
  form.addEventListener(
    "submit",
    act(
      button,
      out,
      async () => {
        const replacement = picker.files[0];
        if (replacement) {
          await upload({
            bucket: file.bucket,
            path: file.path,
            file: replacement,
            expected: file.version,
            directOrigins,
            onRoute: () => {},
            onProgress: () => {},
          });
        }
        return call("POST", "/versions/commit", {
          json: {
            source_bucket: file.bucket,
            source_path: file.path,
            target_bucket: file.checkout.bucket,
            target_path: file.checkout.path,
            message: message.value,
            keep_lock: keep.checked,
          },
        });
      },
      (res) => go(viewUrl("file", res.file.path)),
    ),
  );
  return form;
}

function reviewControls(file, v, me, refresh) {
  const out = outcome();
  const comment = h("input", { name: "comment" });
  const approve = h("button", { type: "button" }, "Approve");
  const reject = h("button", { type: "button", class: "danger" }, "Reject");
  const decide = (verb) =>
    act(verb === "approve" ? approve : reject, out, () => {
      if (verb === "reject" && !comment.value.trim()) {
        throw new ApiError(0, {
          message: "invalid_request",
          detail: "Rejecting a version needs a comment: say what must change.",
        });
      }
      return call("POST", `/versions/${v.id}/${verb}`, {
        json: comment.value.trim() ? { comment: comment.value } : {},
      });
    }, refresh);
  approve.addEventListener("click", decide("approve"));
  reject.addEventListener("click", decide("reject"));
  return h(
    "div",
    { class: "review" },
    me && v.author_id === me
      ? h("p", { class: "hint" }, "You wrote this version: the four-eyes rule says another person approves it (unless the service allows self-approval).")
      : null,
    field(`Comment on v${v.number}`, comment, "Required to reject."),
    h("div", { class: "buttons" }, approve, reject),
    out.el,
  );
}

function versionsPanel(file, versions, me, refresh, pager) {
  const rows = versions.map((v) => {
    const actions = [downloadButton(file, v.number, `Download v${v.number}`)];
    if (v.status === "draft" && file.status !== "archived") {
      const out = outcome();
      const submit = h("button", { type: "button" }, `Submit v${v.number} for review`);
      submit.addEventListener("click", act(submit, out, () => call("POST", `/versions/${v.id}/submit`, { json: {} }), refresh));
      actions.push(submit, out.el);
    }
    if (v.status === "pending_validation") actions.push(reviewControls(file, v, me, refresh));
    return h(
      "tr",
      { "data-version": v.number },
      h("th", { scope: "row" }, `v${v.number}`),
      h("td", {}, badge(v.status)),
      h("td", {}, v.author_id, h("br"), when(v.created_at)),
      h("td", {}, v.message || ""),
      h(
        "td",
        {},
        v.reviewed_by ? [v.reviewed_by, h("br"), when(v.reviewed_at)] : "",
        v.review_comment ? h("p", { class: "comment" }, `“${v.review_comment}”`) : null,
      ),
      h("td", { class: "actions" }, actions),
    );
  });
  return h(
    "section",
    { class: "card", "aria-labelledby": "versions-h" },
    h("h2", { id: "versions-h" }, "Versions"),
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { class: "versions" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Version", "Status", "Author", "Message", "Reviewed by", "Actions"].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        h("tbody", {}, rows),
      ),
    ),
    pager.first || pager.older ? h("nav", { class: "pager", "aria-label": "Versions pages" }, pager.first, pager.older) : null,
  );
}

function tagsPanel(file, refresh) {
  const out = outcome();
  const text = h("textarea", { name: "tags", rows: "4", spellcheck: "false" });
  text.value = JSON.stringify(file.tags, null, 2);
  const button = h("button", { type: "submit" }, "Save tags");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "tags-h" },
    h("h2", { id: "tags-h" }, "Tags"),
    field("Tags (a JSON object)", text),
    button,
    out.el,
  );
  form.addEventListener(
    "submit",
    act(button, out, () => {
      let tags;
      try {
        tags = JSON.parse(text.value || "{}");
      } catch (e) {
        throw new ApiError(0, { message: "invalid_request", detail: `Not JSON: ${e.message}` });
      }
      return call("PATCH", "/metadata", { json: { bucket: file.bucket, path: file.path, tags } });
    }, () => out.ok("Tags saved.")),
  );
  return form;
}

function archivePanel(file, refresh) {
  const out = outcome();
  const archived = file.status === "archived";
  const button = h("button", { type: "button" }, archived ? "Unarchive" : "Archive");
  button.addEventListener(
    "click",
    act(button, out, () =>
      call("POST", archived ? "/unarchive" : "/archive", { json: { bucket: file.bucket, path: file.path } }), refresh),
  );
  return h(
    "section",
    { class: "card", "aria-labelledby": "arch-h" },
    h("h2", { id: "arch-h" }, "Archive"),
    h("p", {}, archived ? "Archived: kept read-only, no new version accepted." : "Archiving keeps the file read-only: no new version is accepted."),
    button,
    out.el,
  );
}

// ---- lists: audit, locks, reviews -----------------------------------------------------------

/** One page of a paginated listing of `route` (`/audit`, `/locks`, `/reviews`) under `path`,
 *  as a table: its answer's `items` field, one `row` each, and the pager. */
async function pagedTable({ title, path, view, query, route, items: field, columns, row, empty }) {
  const limit = query.get("limit") || "50";
  const cursor = query.get("cursor") || "";
  busy("Loading…");
  let page;
  try {
    page = await call("GET", route, { query: { bucket: bucketOf(path), path, limit, cursor } });
  } catch (err) {
    show(heading(title), breadcrumbs(path), errorBox(err, path));
    return;
  }
  const items = page[field];
  show(
    heading(title),
    breadcrumbs(path),
    items.length
      ? h(
          "div",
          { class: "scroll" },
          h(
            "table",
            { class: view },
            h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
            h("tbody", {}, items.map(row)),
          ),
        )
      : h("p", { class: "empty" }, empty),
    h(
      "nav",
      { class: "pager", "aria-label": "Pages" },
      cursor ? link(view, path, "First page", { limit }) : null,
      page.next_cursor ? link(view, path, "Next page", { limit, cursor: page.next_cursor }) : null,
    ),
  );
}

function auditView(path, query) {
  return pagedTable({
    title: `Audit trail of ${path}`,
    path,
    view: "audit",
    query,
    empty: "Nothing recorded yet.",
    route: "/audit",
    items: "events",
    columns: ["When", "Who", "What", "File", "Version", "Outcome", "Detail", "Request id"],
    row: (e) =>
      h(
        "tr",
        { class: `outcome-${e.outcome}` },
        h("td", {}, when(e.at)),
        h("td", {}, e.actor),
        h("td", {}, e.action.replace(/_/g, " ")),
        h("td", {}, e.path),
        h("td", {}, e.version ? `v${e.version}` : ""),
        h("td", {}, e.outcome, e.repeat_count > 1 ? [` ×${e.repeat_count}, the last at `, when(e.last_repeat_at)] : null),
        h("td", {}, e.detail || ""),
        h("td", {}, h("code", {}, e.request_id)),
      ),
  });
}

function locksView(path, query) {
  return pagedTable({
    title: `Locks under ${path}`,
    path,
    view: "locks",
    query,
    empty: "No live lock here.",
    route: "/locks",
    items: "locks",
    columns: ["File", "Holder", "Since", "Until", "Base version"],
    row: (l) =>
      h(
        "tr",
        {},
        h("td", {}, link("file", l.path, l.path)),
        h("td", {}, l.lock.holder),
        h("td", {}, when(l.lock.acquired_at)),
        h("td", {}, when(l.lock.expires_at)),
        h("td", {}, `v${l.lock.base_version}`),
      ),
  });
}

function reviewsView(path, query) {
  const me = session.user();
  return pagedTable({
    title: `Waiting for review under ${path}`,
    path,
    view: "reviews",
    query,
    empty: "Nothing is waiting for review here.",
    route: "/reviews",
    items: "reviews",
    columns: ["File", "Version", "Author", "Message", "Decision"],
    row: (r) =>
      h(
        "tr",
        { "data-version": r.version.number },
        h("td", {}, link("file", r.file.path, r.file.path)),
        h("td", {}, `v${r.version.number}`, h("br"), when(r.version.created_at)),
        h("td", {}, r.version.author_id),
        h("td", {}, r.version.message || ""),
        h("td", { class: "actions" }, reviewControls(r.file, r.version, me, () => render())),
      ),
  });
}

// ---- the router -----------------------------------------------------------------------------

const VIEWS = {
  browse: browseView,
  file: fileView,
  audit: auditView,
  locks: locksView,
  reviews: reviewsView,
};

let rendering = 0;
async function render() {
  const ticket = ++rendering;
  const state = await signedIn();
  if (ticket !== rendering) return;
  if (state !== true) {
    signInView(state);
    return;
  }
  accountBar(session.token() ? "token" : "cookie");
  const { view, path, query } = parseLocation();
  const handler = VIEWS[view];
  if (!handler || !path || !BUCKETS.includes(bucketOf(path))) {
    homeView();
    return;
  }
  const wantsDir = view !== "file";
  if (view !== "audit" && wantsDir !== path.endsWith("/")) {
    // A file URL without its last segment, or a folder URL without its slash.
    go(viewUrl(view, wantsDir ? `${path}/` : path.replace(/\/$/, "")));
    return;
  }
  await handler(path, query);
}

render();
