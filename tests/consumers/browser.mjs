// A browser front-end on another origin, in headless Debian Chromium driven by playwright-core
// (crates/server/tests/consumers/browser.rs serves the pages and starts the services).
//
// Environment: CHROMIUM (the executable), ALLOWED_PAGE (a page of an origin listed in
// CORS_ALLOWED_ORIGINS), FOREIGN_PAGE (a page of an origin that is not), API_S3 and API_LOCAL
// (the service on Garage, and on the local store whose presigned URLs are its own /blob
// routes), TOKEN (alice's JWT: the page authenticates with it as the `access_token` cookie).
//
// Prints one line per check and `N passed, 0 failed`; exits 1 at the first failure.

import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const CHROMIUM = env("CHROMIUM");
const ALLOWED_PAGE = env("ALLOWED_PAGE");
const FOREIGN_PAGE = env("FOREIGN_PAGE");
const TOKEN = env("TOKEN");
const APIS = { s3: env("API_S3"), local: env("API_LOCAL") };

let passed = 0;
const check = (condition, what, detail) => {
  if (!condition) {
    console.log(`FAILED: ${what}${detail === undefined ? "" : `: ${JSON.stringify(detail)}`}`);
    console.log(`${passed} passed, 1 failed`);
    process.exit(1);
  }
  passed += 1;
  console.log(`ok: ${what}`);
};

// What the Node side sees, with a bearer token (not a browser: no CORS, no cookie).
const asAlice = async (api, route, init = {}) => {
  const res = await fetch(`${api}${route}`, {
    ...init,
    headers: { Authorization: `Bearer ${TOKEN}`, ...(init.headers || {}) },
  });
  return { status: res.status, body: await res.json() };
};

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

try {
  const context = await browser.newContext({ acceptDownloads: true });
  // The session cookie of the API's host, as an identity provider would have set it.
  await context.addCookies([
    { name: "access_token", value: TOKEN, url: APIS.s3, httpOnly: true, sameSite: "Lax" },
  ]);
  const page = await context.newPage();
  await page.goto(ALLOWED_PAGE);

  for (const [store, api] of Object.entries(APIS)) {
    // 1. FormData through the proxy, in the page's insertion order (the file before the
    //    optional fields).
    const proxied = await page.evaluate(async (api) => {
      const form = new FormData();
      form.append("bucket", "users");
      form.append("path", "/users/alice/web/hello world.txt");
      form.append("file", new Blob(["hello from the page"], { type: "text/plain" }), "hello.txt");
      form.append("message", "sent by a browser");
      const res = await fetch(`${api}/upload/proxy`, {
        method: "POST",
        body: form,
        credentials: "include",
      });
      return { status: res.status, body: await res.json(), id: res.headers.get("X-Request-Id") };
    }, api);
    check(
      proxied.status === 200 && proxied.body.version.message === "sent by a browser",
      `${store}: FormData upload through the proxy with the cookie`,
      proxied,
    );
    check(proxied.id, `${store}: the page reads X-Request-Id`, proxied.id);

    // 2. A presigned upload straight to the store (Garage with its bucket CORS rule, or the
    //    service's own /blob routes), then completed.
    const direct = await page.evaluate(async (api) => {
      const text = "straight to the store";
      const post = (route, body) =>
        fetch(`${api}${route}`, {
          method: "POST",
          credentials: "include",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(body),
        });
      const presigned = await (
        await post("/upload/presign", {
          bucket: "users",
          path: "/users/alice/web/direct.txt",
          content_type: "text/plain",
          size: text.length,
        })
      ).json();
      const headers = { ...presigned.headers };
      delete headers["Content-Length"]; // the browser sets it
      const put = await fetch(presigned.url, { method: presigned.method, headers, body: text });
      const completed = await post("/upload/complete", { upload_id: presigned.upload_id });
      return {
        host: new URL(presigned.url).host,
        put: put.status,
        etag: put.headers.get("ETag"),
        completed: completed.status,
        body: await completed.json(),
      };
    }, api);
    check(
      direct.put === 200 && direct.completed === 200 && direct.body.version.size === 21,
      `${store}: presigned PUT from the page to ${direct.host}, completed`,
      direct,
    );

    // 2b. A presign without size: the URL is the service's own (`/blob/...`, on S3 too), which
    //     streams the page's PUT into the store (a preflight for the PUT and its Content-Type,
    //     the ETag readable); completed, then downloaded byte for byte.
    const unsized = await page.evaluate(async (api) => {
      const bytes = new Uint8Array(50000);
      for (let i = 0; i < bytes.length; i += 1) bytes[i] = (i * 31 + 7) % 251;
      const path = "/users/alice/web/unsized.bin";
      const post = (route, body) =>
        fetch(`${api}${route}`, {
          method: "POST",
          credentials: "include",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(body),
        });
      const presigned = await (
        await post("/upload/presign", {
          bucket: "users",
          path,
          content_type: "application/octet-stream",
        })
      ).json();
      let put;
      try {
        const res = await fetch(presigned.url, {
          method: presigned.method,
          headers: presigned.headers,
          body: new Blob([bytes], { type: "application/octet-stream" }),
        });
        put = { status: res.status, etag: res.headers.get("ETag"), id: res.headers.get("X-Request-Id") };
      } catch (e) {
        put = { error: String(e) };
      }
      const completed = await post("/upload/complete", { upload_id: presigned.upload_id });
      const version = (await completed.json()).version;
      const read = await fetch(`${api}/download/proxy?bucket=users&path=${encodeURIComponent(path)}`, {
        credentials: "include",
      });
      const got = new Uint8Array(await read.arrayBuffer());
      return {
        url: presigned.url,
        headers: presigned.headers,
        put,
        completed: completed.status,
        size: version && version.size,
        downloaded: read.status,
        same: got.length === bytes.length && got.every((b, i) => b === bytes[i]),
      };
    }, api);
    check(
      unsized.url.startsWith(`${api}/blob/users/`) && !("Content-Length" in unsized.headers),
      `${store}: a presign without size gets a URL to the service's own /blob route`,
      unsized,
    );
    check(
      unsized.put.status === 200 &&
        unsized.put.etag &&
        unsized.put.id &&
        unsized.completed === 200 &&
        unsized.size === 50000 &&
        unsized.downloaded === 200 &&
        unsized.same,
      `${store}: the page PUTs to that URL (ETag readable), completes, downloads the same bytes`,
      unsized,
    );

    // 3. A download: the page reads the exposed headers; a link saves the file under its name.
    const read = await page.evaluate(async (api) => {
      const res = await fetch(
        `${api}/download/proxy?bucket=users&path=${encodeURIComponent("/users/alice/web/hello world.txt")}`,
        { credentials: "include" },
      );
      return {
        status: res.status,
        text: await res.text(),
        disposition: res.headers.get("Content-Disposition"),
        etag: res.headers.get("ETag"),
      };
    }, api);
    check(
      read.status === 200 &&
        read.text === "hello from the page" &&
        read.disposition.includes("hello%20world.txt") &&
        read.etag,
      `${store}: fetch download with Content-Disposition and ETag readable`,
      read,
    );
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.evaluate((url) => {
        const a = document.createElement("a");
        a.href = url;
        document.body.appendChild(a);
        a.click();
      }, `${api}/download/proxy?bucket=users&path=${encodeURIComponent("/users/alice/web/hello world.txt")}`),
    ]);
    check(
      download.suggestedFilename() === "hello world.txt",
      `${store}: a download link saves the file as its name`,
      download.suggestedFilename(),
    );

    // 4. Take the lock and release it.
    const locking = await page.evaluate(async (api) => {
      const post = (route) =>
        fetch(`${api}${route}`, {
          method: "POST",
          credentials: "include",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ bucket: "users", path: "/users/alice/web/direct.txt" }),
        });
      const lock = await post("/lock");
      const lockBody = await lock.json();
      const unlock = await post("/unlock");
      return { lock: lock.status, holder: lockBody.lock && lockBody.lock.holder, unlock: unlock.status, released: (await unlock.json()).released };
    }, api);
    check(
      locking.lock === 200 && locking.holder === "alice" && locking.unlock === 200 && locking.released,
      `${store}: lock and unlock with the cookie`,
      locking,
    );
  }

  // 5. The same page from an origin that is not allowed: what a browser lets it send (a
  //    form-like POST with the cookie, a text body) is refused; what needs CORS is not sent.
  const foreign = await context.newPage();
  await foreign.goto(FOREIGN_PAGE);
  for (const [store, api] of Object.entries(APIS)) {
    const attempts = await foreign.evaluate(async (api) => {
      const form = new FormData();
      form.append("bucket", "users");
      form.append("path", "/users/alice/web/planted.txt");
      form.append("file", new Blob(["planted"], { type: "text/plain" }), "planted.txt");
      // no-cors: the browser sends it with the cookie, the page cannot read the answer.
      await fetch(`${api}/upload/proxy`, { method: "POST", body: form, credentials: "include", mode: "no-cors" });
      await fetch(`${api}/lock`, {
        method: "POST",
        credentials: "include",
        mode: "no-cors",
        headers: { "Content-Type": "text/plain" },
        body: JSON.stringify({ bucket: "users", path: "/users/alice/web/direct.txt" }),
      });
      let corsRefused = false;
      try {
        await fetch(`${api}/delete?bucket=users&path=${encodeURIComponent("/users/alice/web/direct.txt")}`, {
          method: "DELETE",
          credentials: "include",
        });
      } catch (e) {
        corsRefused = true;
      }
      let unreadable = false;
      try {
        await (await fetch(`${api}/metadata?bucket=users&path=${encodeURIComponent("/users/alice/web/direct.txt")}`, { credentials: "include" })).json();
      } catch (e) {
        unreadable = true;
      }
      return { corsRefused, unreadable };
    }, api);
    check(attempts.corsRefused && attempts.unreadable, `${store}: CORS keeps the foreign page from deleting and reading`, attempts);
    const planted = await asAlice(api, `/metadata?bucket=users&path=${encodeURIComponent("/users/alice/web/planted.txt")}`);
    check(planted.status === 404, `${store}: the foreign page's upload stored nothing`, planted);
    const target = await asAlice(api, `/metadata?bucket=users&path=${encodeURIComponent("/users/alice/web/direct.txt")}`);
    check(
      target.status === 200 && target.body.file.lock === null,
      `${store}: the foreign page's lock and delete changed nothing`,
      target,
    );
    const trail = await asAlice(api, `/audit?bucket=users&path=${encodeURIComponent("/users/alice/web/")}`);
    const denied = trail.body.events.filter((e) => e.outcome === "denied");
    check(
      denied.some((e) => e.action === "upload" && e.path === "/users/alice/web/planted.txt" && e.detail.includes(new URL(FOREIGN_PAGE).origin)),
      `${store}: the attempt is in the audit trail as denied, naming the origin`,
      denied,
    );
  }
} finally {
  await browser.close();
}
console.log(`${passed} passed, 0 failed`);
