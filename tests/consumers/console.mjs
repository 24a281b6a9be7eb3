// The web console (/console) in headless Debian Chromium driven by playwright-core
// (crates/server/tests/consumers/console.rs starts the service). Two people in two browser
// contexts, an author (bob: read, write, lock on project 5678) and a reviewer (alice: every
// action), run the seed's seven workflows by clicking: uploads with progress (presigned and
// through the proxy), checkout, commit, approval, force-unlock with a reason, the locks
// listing; plus a rejected review and a lock conflict shown to the second person.
//
// Environment: CHROMIUM, BASE (the service), AUTHOR_TOKEN, REVIEWER_TOKEN, SHOTS (where the
// screenshots go), STORE (a name for the log), USERS_ROUTE (`direct` or `proxy`: how an upload
// to the users bucket must go). Prints one line per check and
// `N passed, 0 failed`; exits 1 at the first failure.

import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env("BASE");
const SHOTS = env("SHOTS");
const STORE = env("STORE");
mkdirSync(SHOTS, { recursive: true });

let passed = 0;
let shots = 0;
const check = (condition, what, detail) => {
  if (!condition) {
    console.log(`FAILED: ${what}${detail === undefined ? "" : `: ${JSON.stringify(detail)}`}`);
    console.log(`${passed} passed, 1 failed`);
    process.exit(1);
  }
  passed += 1;
  console.log(`ok: ${what}`);
};
const shot = async (page, name) => {
  shots += 1;
  const file = join(SHOTS, `${String(shots).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
};

const DIR = "/console/browse/projects/5678/docs/";
const SPEC = "/console/file/projects/5678/docs/spec.pdf";
const spec1 = Buffer.alloc(3 * 1024 * 1024, "specifications v1 ");
const spec2 = Buffer.from("specifications v2: new requirements\n");

const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

/** A person's browser: its own context (cookies, sessionStorage), a 1280×800 window. */
async function person(viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  page.violations = [];
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) page.violations.push(m.text());
  });
  page.on("pageerror", (e) => page.violations.push(`page error: ${e.message}`));
  return { context, page };
}

/** Every form control of the page has a label (or an aria-label). */
const labelled = (page) =>
  page.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea")]
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label"))
      .map((el) => el.outerHTML),
  );

const errorShown = async (page) => {
  const box = page.locator(".error").first();
  await box.waitFor();
  return {
    what: await box.locator(".error-what").textContent(),
    detail: await box.locator(".error-detail").textContent(),
    requestId: await box.locator(".request-id").textContent(),
  };
};

try {
  const author = await person();
  const reviewer = await person();
  const a = author.page;
  const r = reviewer.page;

  // ---- signing in: the form, by mouse for one and by keyboard alone for the other ----------
  const res = await a.goto(`${BASE}${DIR}`);
  const csp = res.headers()["content-security-policy"] || "";
  check(/script-src 'self'/.test(csp) && !/unsafe/.test(csp), "the console is served with a strict CSP", csp);
  await a.getByLabel("Token").waitFor();
  check((await labelled(a)).length === 0, "the sign-in form's controls are labelled");
  await shot(a, "sign-in");
  await a.getByLabel("Token").fill(env("AUTHOR_TOKEN"));
  await a.getByRole("button", { name: "Sign in" }).click();
  await a.getByText("Signed in as bob").waitFor();
  check(true, "the author signs in with the Token form and lands on the deep-linked folder");

  await r.goto(`${BASE}/console`);
  await r.getByLabel("Token").waitFor();
  for (let i = 0; i < 10; i += 1) {
    if (await r.evaluate(() => document.activeElement && document.activeElement.name === "token")) break;
    await r.keyboard.press("Tab");
  }
  await r.keyboard.type(env("REVIEWER_TOKEN"));
  await r.keyboard.press("Enter");
  await r.getByText("Signed in as alice").waitFor();
  check(true, "the reviewer signs in with the keyboard alone");

  // ---- 1 and 2: uploads, several at once, with progress -------------------------------------
  await a.getByRole("heading", { name: "docs" }).waitFor();
  await a.getByLabel("Choose files").setInputFiles([
    { name: "spec.pdf", mimeType: "application/pdf", buffer: spec1 },
    { name: "budget.csv", mimeType: "text/csv", buffer: Buffer.from("a,b\n1,2\n") },
  ]);
  // Dropped files take the same way.
  const dropped = await a.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(["meeting notes\n"], "notes.txt", { type: "text/plain" }));
    return dt;
  });
  await a.dispatchEvent(".drop-zone", "drop", { dataTransfer: dropped });
  await a.locator(".upload[data-state]").nth(2).waitFor();
  await a.locator(".uploads-done").waitFor();
  const uploads = await a.$$eval(".upload", (items) =>
    items.map((li) => ({
      name: li.querySelector(".name").textContent,
      state: li.dataset.state,
      route: li.dataset.route,
      progress: li.querySelector("progress").value,
    })),
  );
  check(
    uploads.length === 3 && uploads.every((u) => u.state === "done" && u.progress === 100),
    `${STORE}: three uploads (two picked, one dropped) reach 100%`,
    uploads,
  );
  const routes = [...new Set(uploads.map((u) => u.route))];
  check(routes.length === 1 && routes[0] === "direct", `${STORE}: uploads go straight to the store (presigned)`, uploads);
  await shot(a, "uploads-with-progress");

  // The listing: sorted by name, both ways, and paginated.
  await a.getByRole("link", { name: "Refresh the folder" }).click();
  await a.locator("table.listing").waitFor();
  const names = () => a.$$eval("table.listing tbody tr td:first-child", (tds) => tds.map((td) => td.textContent.trim()));
  check(JSON.stringify(await names()) === JSON.stringify(["budget.csv", "notes.txt", "spec.pdf"]), "the folder lists the files by name", await names());
  await a.getByRole("link", { name: /^Name/ }).click();
  await a.waitForURL(/order=desc/);
  await a.locator("th[aria-sort=descending]").waitFor();
  check(JSON.stringify(await names()) === JSON.stringify(["spec.pdf", "notes.txt", "budget.csv"]), "sorting by name reverses the order", await names());
  await a.goto(`${BASE}${DIR}?limit=2`);
  await a.locator("table.listing").waitFor();
  const first = await names();
  await a.getByRole("link", { name: "Next page" }).click();
  await a.getByRole("link", { name: "First page" }).waitFor();
  const second = await names();
  check(first.length === 2 && second.length === 1 && second[0] === "spec.pdf", "the listing pages with next_cursor", { first, second });
  await shot(a, "listing");

  // A personal folder: the store may take the bytes directly, or the service passes them on
  // (the S3 run opens only the projects bucket to the console's origin).
  await a.goto(`${BASE}/console/browse/users/bob/inbox/`);
  await a.getByLabel("Choose files").setInputFiles({ name: "draft.txt", mimeType: "text/plain", buffer: Buffer.from("draft\n") });
  await a.locator(".upload[data-state]").waitFor();
  const personal = await a.$eval(".upload", (li) => ({ state: li.dataset.state, route: li.dataset.route, text: li.textContent }));
  check(personal.state === "done" && personal.route === env("USERS_ROUTE"), `${STORE}: an upload to the users bucket goes ${env("USERS_ROUTE")}`, personal);

  // ---- the reviewer opens the file before the author checks it out ---------------------------
  await r.goto(`${BASE}${SPEC}`);
  await r.getByText("Nobody holds the lock.").waitFor();
  check((await labelled(r)).length === 0, "the file page's controls are labelled");

  // ---- 3: checkout to the author's workspace -------------------------------------------------
  await a.goto(`${BASE}${SPEC}`);
  await a.getByLabel("Copy to").waitFor();
  check((await a.getByLabel("Copy to").inputValue()) === "/users/bob/work/spec.pdf", "the checkout target is the author's workspace");
  await a.getByRole("button", { name: "Check out" }).click();
  await a.getByRole("heading", { name: "Commit back" }).waitFor();
  check(a.url().endsWith("/console/file/users/bob/work/spec.pdf"), "the checkout lands on the workspace copy", a.url());
  await shot(a, "checked-out");

  // ---- the lock conflict, shown to the second person -----------------------------------------
  await r.getByRole("button", { name: "Lock", exact: true }).click();
  const conflict = await errorShown(r);
  check(
    /locked by bob/.test(conflict.what) && conflict.detail.length > 0 && conflict.requestId.length > 0,
    "the reviewer's lock attempt explains that bob holds the lock, with detail and request id",
    conflict,
  );
  await shot(r, "lock-conflict");

  // ---- 7: the locks listing ------------------------------------------------------------------
  await r.goto(`${BASE}/console/locks/projects/5678/`);
  await r.locator("table.locks").waitFor();
  const lockRows = await r.$$eval("table.locks tbody tr", (trs) => trs.map((tr) => tr.textContent));
  check(lockRows.length === 1 && /spec\.pdf/.test(lockRows[0]) && /bob/.test(lockRows[0]), "the locks listing shows bob's lock", lockRows);
  await shot(r, "locks");

  // ---- 4: commit back with a message ---------------------------------------------------------
  await a.getByLabel("New content (optional)").setInputFiles({ name: "spec.pdf", mimeType: "application/pdf", buffer: spec2 });
  await a.getByLabel("Message").fill("Updated specifications with new requirements");
  await a.getByRole("button", { name: "Commit" }).click();
  await a.waitForURL(/\/console\/file\/projects\/5678\/docs\/spec\.pdf$/);
  await a.locator("tr[data-version='2'] .badge-pending_validation").waitFor();
  check(
    /four-eyes/.test(await a.locator("tr[data-version='2']").textContent()),
    "the author sees v2 pending review, and the four-eyes rule explained on their own version",
  );
  await shot(a, "committed");

  // ---- 5: approval ---------------------------------------------------------------------------
  await r.goto(`${BASE}/console/reviews/projects/5678/`);
  await r.locator("table.reviews tr[data-version='2']").waitFor();
  await shot(r, "review-queue");
  await r.getByLabel("Comment on v2").fill("Changes approved by team lead");
  await r.getByRole("button", { name: "Approve" }).click();
  await r.getByText("Nothing is waiting for review here.").waitFor();
  await r.goto(`${BASE}${SPEC}`);
  const v2 = await r.locator("tr[data-version='2']").textContent();
  check(/validated/.test(v2) && /alice/.test(v2) && /Changes approved by team lead/.test(v2), "v2 is validated, reviewed by alice", v2);
  await shot(r, "approved");

  // The validated version downloads under its name, with the committed bytes.
  await a.reload();
  await a.getByRole("button", { name: "Download validated (v2)" }).waitFor();
  const [download] = await Promise.all([
    a.waitForEvent("download"),
    a.getByRole("button", { name: "Download validated (v2)" }).click(),
  ]);
  const saved = readFileSync(await download.path());
  check(download.suggestedFilename() === "spec.pdf" && saved.equals(spec2), "the validated version downloads as spec.pdf", download.suggestedFilename());

  // ---- a rejected review: submit a draft, reject it (a comment is required) ------------------
  await a.goto(`${BASE}/console/file/projects/5678/docs/notes.txt`);
  await a.getByRole("button", { name: "Submit v1 for review" }).click();
  await a.locator("tr[data-version='1'] .badge-pending_validation").waitFor();
  await r.goto(`${BASE}/console/file/projects/5678/docs/notes.txt`);
  await r.getByRole("button", { name: "Reject" }).click();
  const noComment = await r.locator(".error-detail").first().textContent();
  check(/needs a comment/.test(noComment), "rejecting without a comment is explained", noComment);
  await r.getByLabel("Comment on v1").fill("Minutes must list the attendees");
  await r.getByRole("button", { name: "Reject" }).click();
  await r.locator("tr[data-version='1'] .badge-rejected").waitFor();
  check(/Minutes must list the attendees/.test(await r.locator("tr[data-version='1']").textContent()), "the rejected version shows the reviewer's comment");
  await shot(r, "rejected");

  // ---- 6: force-unlock with a reason ---------------------------------------------------------
  await a.goto(`${BASE}${SPEC}`);
  await a.getByRole("button", { name: "Lock", exact: true }).click();
  await a.getByText("Locked by bob").waitFor();
  await r.goto(`${BASE}${SPEC}`);
  await r.getByLabel("Reason").fill("bob is on leave; the review board needs the file");
  await r.getByRole("button", { name: "Force unlock" }).click();
  await r.getByText("Nobody holds the lock.").waitFor();
  check(true, "the reviewer force-unlocks bob's lock with a reason");
  await shot(r, "force-unlocked");

  // ---- the audit trail, paginated, newest first -----------------------------------------------
  await r.goto(`${BASE}/console/audit/projects/5678/docs/?limit=3`);
  await r.locator("table.audit").waitFor();
  const newest = await r.locator("table.audit tbody tr").first().textContent();
  check(/force unlock/.test(newest) && /on leave/.test(newest), "the audit trail starts with the force-unlock and its reason", newest);
  await r.getByRole("link", { name: "Next page" }).click();
  await r.getByRole("link", { name: "First page" }).waitFor();
  check((await r.locator("table.audit tbody tr").count()) === 3, "the audit trail pages");
  await shot(r, "audit");

  // ---- tags (the author may write), archive (a reviewer's decision: bob is refused) ---------
  await a.goto(`${BASE}/console/file/projects/5678/docs/budget.csv`);
  await a.getByLabel("Tags (a JSON object)").fill('{"quarter": "Q3", "reviewed": true}');
  await a.getByRole("button", { name: "Save tags" }).click();
  await a.getByText("Tags saved.").waitFor();
  await a.getByRole("button", { name: "Archive" }).click();
  const refused = await errorShown(a);
  check(/not allowed/.test(refused.what) && /validate/.test(refused.detail), "archiving is refused to the author, in words", refused);
  await r.goto(`${BASE}/console/file/projects/5678/docs/budget.csv`);
  await r.getByRole("button", { name: "Archive" }).click();
  await r.locator(".facts .badge-archived").waitFor();
  check(/Q3/.test(await r.getByLabel("Tags (a JSON object)").inputValue()), "the tags are saved and the reviewer archives the file");
  await shot(r, "tags-archived");

  // ---- a phone-sized screen, and the session cookie instead of the form ----------------------
  const phone = await person({ width: 390, height: 844 });
  await phone.context.addCookies([{ name: "access_token", value: env("REVIEWER_TOKEN"), url: BASE, httpOnly: true, sameSite: "Lax" }]);
  await phone.page.goto(`${BASE}${SPEC}`);
  await phone.page.getByText("Signed in with this browser's session").waitFor();
  await phone.page.getByRole("heading", { name: "Versions" }).waitFor();
  const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, "with the session cookie, the file page works on a phone-sized screen without sideways scrolling", overflow);
  await shot(phone.page, "phone");

  for (const [who, page] of [["author", a], ["reviewer", r], ["phone", phone.page]]) {
    check(page.violations.length === 0, `no script error or policy violation in the ${who}'s pages`, page.violations);
  }
} finally {
  await browser.close();
}
console.log(`${passed} passed, 0 failed (${shots} screenshots in ${SHOTS})`);
