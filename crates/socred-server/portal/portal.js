// socred's web portal: a client of the registry's JSON API, nothing more.
// Every value from the API is written as text (textContent), never as
// markup. A subject's token stays in this tab's sessionStorage and is sent
// only in the Authorization header of requests to this origin.
"use strict";

const PAGE = 50;
const KEY_SUBJECT = "socred.subject";
const KEY_TOKEN = "socred.token";
const KEY_REVIEWER = "socred.reviewer";
const KEY_OPERATOR = "socred.operator";
const KEY_AUDITOR = "socred.auditor";

// ---- the API ---------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message, detail = null) {
    super(message);
    this.status = status;
    this.code = code;
    // The API's whole error object (a rulebook's `problems`, say).
    this.detail = detail;
  }
}

function signedIn() {
  const subject = sessionStorage.getItem(KEY_SUBJECT);
  const token = sessionStorage.getItem(KEY_TOKEN);
  return subject && token ? { subject, token } : null;
}

function signOut() {
  sessionStorage.removeItem(KEY_SUBJECT);
  sessionStorage.removeItem(KEY_TOKEN);
}

// The requests of the view on screen: moving to another view cancels them,
// so that a slow answer for an earlier view never replaces a later one.
let viewRequests = new AbortController();

// GET or POST `path`; answers the parsed JSON (or the text, for text/plain),
// or throws ApiError with the API's own code and message (or the
// AbortError of a request the view no longer wants).
// `text` with `type` sends a body other than JSON (a rulebook's TOML).
async function api(path, { method = "GET", token = null, body = null, text = null, type: sent = "application/json" } = {}) {
  const headers = {};
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== null || text !== null) headers["Content-Type"] = sent;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: text !== null ? text : body === null ? null : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      signal: viewRequests.signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "unreachable", "the registry did not answer: " + error.message);
  }
  const type = response.headers.get("content-type") || "";
  if (!response.ok) {
    let code = "http_" + response.status;
    let message = "the registry answered " + response.status;
    let detail = null;
    if (type.startsWith("application/json")) {
      const answer = await response.json().catch(() => null);
      if (answer && answer.error) {
        code = answer.error.code;
        message = answer.error.message;
        detail = answer.error;
      }
    }
    throw new ApiError(response.status, code, message, detail);
  }
  return type.startsWith("application/json") ? response.json() : response.text();
}

// ---- building the page -----------------------------------------------------

// An element with attributes and children (strings become text nodes).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "onclick" || name === "onsubmit") node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function table(id, headings, rows, empty) {
  if (rows.length === 0) return el("p", { id, class: "muted" }, empty);
  return el(
    "table",
    { id },
    el("thead", {}, el("tr", {}, headings.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows),
  );
}

// A button that shows the page after the last one shown: `fetchAfter(after)`
// answers that page, whose rows (under `rows`: `entries` unless said)
// `append` shows; hidden once a page says there is no more (no
// `next_after`). `first` is the page on screen.
function moreButton(id, label, first, fetchAfter, append, rows = "entries") {
  const button = el("button", { id, class: "secondary", hidden: !first.next_after }, label);
  button.dataset.after = first.next_after || "";
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const page = await fetchAfter(button.dataset.after);
      append(page[rows]);
      button.dataset.after = page.next_after || "";
      button.hidden = !page.next_after;
    } catch (error) {
      button.after(errorBox(error));
    }
    button.disabled = false;
  });
  return button;
}

function errorBox(error) {
  const code = error.code ? " (" + error.code + ")" : "";
  return el("div", { class: "error", role: "alert" }, error.message + code);
}

function kindLabel(kind) {
  return el("span", { class: "kind-" + kind }, kind === "black" ? "black list" : kind === "red" ? "red list" : kind);
}

// Instants (audit entries, submissions, uploads) are shown in China
// Standard Time, UTC+08:00 all year: the registry's days, and so every
// record's dates, are days there, and an entry made at 01:00 in Beijing
// belongs to that day, not to the day before as UTC would have it.
const CHINA_OFFSET_MS = 8 * 3600 * 1000;

function chinaTime(ms) {
  return new Date(ms + CHINA_OFFSET_MS).toISOString().replace("T", " ").slice(0, 19) + " (UTC+8)";
}

function chinaDay(ms) {
  return new Date(ms + CHINA_OFFSET_MS).toISOString().slice(0, 10);
}

function fieldsText(fields) {
  return Object.entries(fields || {})
    .map(([name, value]) => name + ": " + (typeof value === "string" ? value : JSON.stringify(value)))
    .join("; ");
}

function recordKey(key) {
  return key ? key.provider + "/" + key.id : "";
}

// The record a pending item is or names, as provider/id: items come as
// their provider sent them (a fact names its record by `provider` and
// `record`).
function itemRecordKey(item) {
  return item.fact ? item.provider + "/" + item.record : recordKey(item);
}

// Replaces the view with `nodes` (absent ones, null or false, left out).
function show(...nodes) {
  const view = document.getElementById("view");
  view.replaceChildren(...nodes.flat().filter((node) => node !== null && node !== undefined && node !== false));
}

function markNav(active) {
  for (const id of ["nav-lists", "nav-company", "nav-rulebook", "nav-me", "nav-review", "nav-operator", "nav-audit"]) {
    const link = document.getElementById(id);
    if (id === active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

// ---- views -----------------------------------------------------------------

function home() {
  markNav(null);
  show(
    el("h2", {}, "What you can do here"),
    el("ul", {},
      el("li", {}, el("a", { href: "#/lists" }, "Public lists"), ": black and red lists, only entries inside their publicity window."),
      el("li", {}, el("a", { href: "#/company" }, "Company lookup"), ": a company's grade and its public list entries, by Unified Social Credit Code."),
      el("li", {}, el("a", { href: "#/rulebook" }, "Rulebook"), ": the rules in force, every one with its legal basis, as the registry applies them."),
      el("li", {}, el("a", { href: "#/me" }, "My file"), ": with your identity number and the token the registry issued you, your whole credit file, the explanation of every point, who read your file and why, your consent, your objections and your applications for repair."),
      el("li", {}, el("a", { href: "#/review" }, "Review"), ": for reviewers, with their token: the records and applications that wait for a second person, and subjects' open objections."),
      el("li", {}, el("a", { href: "#/operator" }, "Operator"), ": for the registry's operators, with their token: the dashboard, principals and their tokens, rulebook versions and uploads."),
      el("li", {}, el("a", { href: "#/audit" }, "Audit log"), ": for auditors, with their token: every entry of the tamper-evident log, and a check of its hash chain."),
    ),
  );
}

async function lists() {
  markNav("nav-lists");
  show(el("p", { class: "muted" }, "Loading the public lists…"));
  const answer = await api("/v1/public/lists");
  // A list entered by grade comes out in editions: say how often, and
  // which one is out.
  const edition = (list) =>
    !list.schedule ? ""
      : ", " + list.schedule + (list.published ? " (edition of " + list.published + ")" : " (no edition yet)");
  const rows = answer.lists.map((list) =>
    el("tr", {},
      el("td", {}, el("a", { href: "#/lists/" + encodeURIComponent(list.id) }, list.title)),
      el("td", {}, kindLabel(list.kind), edition(list)),
      el("td", {}, list.legal_basis),
    ),
  );
  show(
    el("h2", {}, "Public lists"),
    table("lists", ["List", "Kind", "Legal basis"], rows, "No list is public under the rulebook in force."),
  );
}

async function listMembers(id) {
  markNav("nav-lists");
  show(el("p", { class: "muted" }, "Loading the list…"));
  const first = await api("/v1/public/lists/" + encodeURIComponent(id) + "?limit=" + PAGE);
  const row = (entry) => el("tr", {}, el("td", {}, entry.subject), el("td", { class: "date" }, entry.since), el("td", { class: "date" }, entry.until));
  const body = el("tbody", {}, first.entries.map(row));
  const more = moreButton("more", "More entries", first,
    (after) => api("/v1/public/lists/" + encodeURIComponent(id) + "?limit=" + PAGE + "&after=" + encodeURIComponent(after)),
    (entries) => body.append(...entries.map(row)));
  // A list entered by grade pages through its edition's subjects and may
  // answer a page with none that it names today, and more to come.
  const entries =
    first.entries.length === 0 && !first.next_after
      ? el("p", { id: "members", class: "muted" }, "Nobody is on this list as of " + first.as_of + ".")
      : el("table", { id: "members" },
          el("thead", {}, el("tr", {}, el("th", {}, "Subject"), el("th", {}, "Since"), el("th", {}, "Until"))),
          body);
  show(
    el("h2", {}, first.title),
    el("p", { id: "list-note", class: "muted" }, first.published
      ? "A list entered by grade, published in editions: the subjects of the edition of " + first.published + " that it names as of " + first.as_of + "."
      : "Entries in their publicity window as of " + first.as_of + "."),
    entries,
    el("div", { class: "actions" }, more),
  );
}

async function rulebook() {
  markNav("nav-rulebook");
  show(el("p", { class: "muted" }, "Loading the rulebook…"));
  const answer = await api("/v1/rulebook");
  show(
    el("h2", {}, "Rulebook in force"),
    el("p", {}, "Version ", el("strong", { id: "rulebook-label" }, answer.label), ". Every record type, scoring rule, list and measure below carries its legal basis; the registry applies exactly this text."),
    el("pre", { id: "rulebook-text", class: "explanation" }, answer.text),
  );
}

function companyForm(value) {
  const input = el("input", { id: "uscc", name: "uscc", value: value || "", required: true, autocomplete: "off", spellcheck: "false", placeholder: "e.g. 91110000600037341L" });
  return el("form", {
      id: "company-form",
      onsubmit: (event) => {
        event.preventDefault();
        const hash = "#/company/" + encodeURIComponent(input.value.trim());
        // The same code again is looked up again (the hash does not change).
        if (location.hash === hash) render();
        else location.hash = hash;
      },
    },
    el("label", {}, "Unified Social Credit Code", input),
    el("button", { type: "submit" }, "Look up"),
  );
}

async function company(code) {
  markNav("nav-company");
  const form = companyForm(code);
  if (!code) {
    show(el("h2", {}, "Company lookup"), form);
    return;
  }
  show(el("h2", {}, "Company lookup"), form, el("p", { class: "muted" }, "Looking the company up…"));
  let answer;
  try {
    answer = await api("/v1/public/companies/" + encodeURIComponent(code));
  } catch (error) {
    if (error.name === "AbortError") throw error;
    show(el("h2", {}, "Company lookup"), form, errorBox(error));
    return;
  }
  const name = (answer.records || []).map((r) => r.fields && r.fields.name).find((n) => typeof n === "string");
  const entries = answer.list_entries.map((entry) =>
    el("tr", {}, el("td", {}, entry.list), el("td", {}, kindLabel(entry.list_kind)), el("td", { class: "date" }, entry.since), el("td", { class: "date" }, entry.until), el("td", {}, entry.legal_basis)),
  );
  // A record under objection says so, with the company's statement,
  // which travels with the record.
  const notes = (record) => [
    record.document ? el("div", {}, record.document) : null,
    record.disputed ? el("div", { class: "disputed" }, el("strong", {}, "Disputed by the company"), record.statement ? ": " + record.statement : "") : null,
  ];
  const records = (answer.records || []).map((record) =>
    el("tr", {}, el("td", { class: "date" }, record.decided_at), el("td", {}, record.title), el("td", {}, fieldsText(record.fields)), el("td", {}, ...notes(record)), el("td", {}, record.legal_basis)),
  );
  show(
    el("h2", {}, "Company lookup"),
    form,
    el("dl", { class: "summary", id: "company" },
      el("dt", {}, "Code"), el("dd", {}, answer.subject),
      name ? [el("dt", {}, "Name"), el("dd", {}, name)] : null,
      el("dt", {}, "Grade"), el("dd", { id: "company-grade" }, answer.grade || "not graded"),
      el("dt", {}, "Grades by model"), el("dd", {}, (answer.grades || []).map((g) => g.model + " " + (g.grade || "–")).join(", ") || "none"),
      el("dt", {}, "As of"), el("dd", {}, answer.as_of + " (rulebook " + answer.rulebook + ")"),
    ),
    el("h3", {}, "Public list entries"),
    table("company-lists", ["List", "Kind", "Since", "Until", "Legal basis"], entries, "On no public list."),
    el("h3", {}, "Public records"),
    table("company-records", ["Decided", "Record", "Fields", "Document and objection", "Legal basis"], records, "No public record."),
  );
}

function signInForm(problem) {
  // Tokens are kept for the tab only: no browser is asked to save them.
  const identity = el("input", { id: "identity", name: "identity", required: true, autocomplete: "off", spellcheck: "false", placeholder: "18 characters" });
  const token = el("input", { id: "token", name: "token", type: "password", required: true, autocomplete: "off" });
  return [
    el("h2", {}, "My file"),
    problem ? errorBox(problem) : null,
    el("p", {}, "Sign in with your identity number (or your organisation's Unified Social Credit Code) and the token the registry issued you. The token stays in this browser tab and is forgotten when you close it or sign out."),
    el("form", {
        id: "sign-in",
        onsubmit: (event) => {
          event.preventDefault();
          sessionStorage.setItem(KEY_SUBJECT, identity.value.trim().toUpperCase());
          sessionStorage.setItem(KEY_TOKEN, token.value.trim());
          render();
        },
      },
      el("label", {}, "Identity number", identity),
      el("label", {}, "Token", token),
      el("button", { type: "submit", id: "sign-in-submit" }, "Sign in"),
    ),
  ];
}

// The API limits texts in bytes of UTF-8, not in characters (a Chinese
// character is three): the form says so as the text is typed, and refuses
// to send one too long.
function bytesAtMost(input, limit) {
  const check = () => {
    const bytes = new TextEncoder().encode(input.value).length;
    input.setCustomValidity(bytes > limit ? "At most " + limit + " bytes (this is " + bytes + "; a Chinese character takes three)." : "");
  };
  input.addEventListener("input", check);
  return input;
}

// A choice of one of `records`, named by their keys.
function recordChoice(id, records) {
  return el("select", { id, name: "record" },
    records.map((record) => el("option", { value: recordKey(record) }, recordKey(record) + " — " + record.title + " (" + record.decided_at + ")")));
}

// Sends `form` about the record chosen in `choice` with `send(record)`; an
// error shows under the form, which may then be sent again.
function submitAboutRecord(form, choice, submit, records, send) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const record = records.find((r) => recordKey(r) === choice.value);
    submit.disabled = true;
    try {
      await send(record);
    } catch (error) {
      if (error.name === "AbortError") return;
      form.after(errorBox(error));
      submit.disabled = false;
    }
  });
}

// The form to apply for repair of one of `records` (public or listed, not
// yet repaired, no application waiting); a reviewer decides, so the file is
// read again with a notice, and the application shows as waiting.
function repairForm(base, token, records) {
  if (records.length === 0) return el("p", { class: "muted" }, "No record of yours is public or puts you on a list, or a reviewer already has your application for each.");
  const choice = recordChoice("repair-record", records);
  const correction = bytesAtMost(el("textarea", { id: "repair-correction", name: "correction", rows: 3, required: true, placeholder: "What you did to correct it, and the proof (a receipt, a court's certificate)" }), 2000);
  const commitment = bytesAtMost(el("textarea", { id: "repair-commitment", name: "commitment", rows: 2, required: true, placeholder: "Your credit commitment" }), 2000);
  const submit = el("button", { type: "submit", id: "repair-submit" }, "Apply for repair");
  const form = el("form", { id: "repair-form" },
    el("label", {}, "Record", choice),
    el("label", {}, "Correction and proof", correction),
    el("label", {}, "Commitment", commitment),
    submit,
  );
  submitAboutRecord(form, choice, submit, records, async (record) => {
    await api(base + "/repair-applications", {
      method: "POST",
      token,
      body: { record: { provider: record.provider, id: record.id }, correction: correction.value, commitment: commitment.value },
    });
    await myFile("Your application for the repair of " + recordKey(record) + " waits for a reviewer, who grants or refuses it. It is under Waiting for a reviewer, and in your access log.");
  });
  return el("div", {},
    el("p", { class: "muted" }, "With the conduct corrected and a credit commitment, you may ask that a record stop being published and that the list entries it made end early (never before their minimum duration). A reviewer decides."),
    form,
  );
}

// The form to object to one of `records` (those not already disputed).
function objectForm(base, token, records) {
  if (records.length === 0) return el("p", { class: "muted" }, "Every record is already disputed, or there is none.");
  const choice = recordChoice("objection-record", records);
  const statement = bytesAtMost(el("textarea", { id: "objection-statement", name: "statement", rows: 3, placeholder: "Why the record is wrong (optional; it travels with the record)" }), 4096);
  const submit = el("button", { type: "submit", id: "objection-submit" }, "Object");
  const form = el("form", { id: "objection-form" },
    el("label", {}, "Record", choice),
    el("label", {}, "Statement", statement),
    submit,
  );
  submitAboutRecord(form, choice, submit, records, async (record) => {
    await api(base + "/objections", {
      method: "POST",
      token,
      body: { record: { provider: record.provider, id: record.id }, statement: statement.value },
    });
    await myFile();
  });
  return el("div", {},
    el("p", { class: "muted" }, "The record counts as disputed from today, and its effects follow the rulebook's policy for disputes, until a reviewer decides, by the day shown under Open objections."),
    form,
  );
}

// The subject's own file; `notice`, when given, says what just happened.
async function myFile(notice) {
  markNav("nav-me");
  const who = signedIn();
  if (!who) {
    show(...signInForm(null));
    return;
  }
  show(el("p", { class: "muted" }, "Reading your file…"));
  const base = "/v1/subjects/" + encodeURIComponent(who.subject);
  let file;
  let log;
  try {
    file = await api(base, { token: who.token });
    log = await api(base + "/access-log?limit=" + PAGE, { token: who.token });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    if (error.status === 401 || error.status === 403 || error.code === "invalid_subject") {
      signOut();
      show(...signInForm(error));
    } else {
      show(el("h2", {}, "My file"), errorBox(error));
    }
    return;
  }

  const consentButton = el("button", { id: "consent-toggle", class: "secondary" }, file.consent ? "Withdraw my consent to scoring" : "Grant my consent to scoring");
  consentButton.addEventListener("click", async () => {
    consentButton.disabled = true;
    try {
      await api(base + "/consent", { method: "POST", token: who.token, body: { granted: !file.consent } });
      await myFile();
    } catch (error) {
      consentButton.after(errorBox(error));
      consentButton.disabled = false;
    }
  });
  const explanation = el("pre", { id: "explanation", class: "explanation", hidden: true });
  const explain = el("button", { id: "explain", class: "secondary" }, "Explain every point");
  explain.addEventListener("click", async () => {
    explain.disabled = true;
    try {
      explanation.textContent = await api(base + "/explanation", { token: who.token });
      explanation.hidden = false;
    } catch (error) {
      explain.after(errorBox(error));
    }
    explain.disabled = false;
  });
  const signOutButton = el("button", { id: "sign-out", class: "secondary" }, "Sign out");
  signOutButton.addEventListener("click", () => {
    signOut();
    render();
  });

  const entries = file.list_entries.map((entry) =>
    el("tr", {}, el("td", {}, entry.list), el("td", {}, kindLabel(entry.list_kind)), el("td", { class: "date" }, entry.since), el("td", { class: "date" }, entry.until), el("td", {}, entry.public ? "yes" : "no"), el("td", {}, recordKey(entry.record)), el("td", {}, entry.legal_basis)),
  );
  const openItems = (file.open_items || []).map((item) =>
    el("tr", {},
      el("td", {}, recordKey(item.record)),
      el("td", { class: "date" }, item.since),
      el("td", { class: "date" }, item.resolve_by),
      el("td", {}, item.overdue ? "overdue" : "within time"),
      el("td", {}, item.statement || ""),
    ),
  );
  const objectionForm = objectForm(base, who.token, file.records.filter((record) => !record.disputed));
  const listedBy = new Set(file.list_entries.map((entry) => recordKey(entry.record)));
  const pending = file.pending || [];
  const repairWaiting = new Set(pending.filter((p) => p.item.fact === "repaired").map((p) => itemRecordKey(p.item)));
  const repairable = file.records.filter((record) => !record.repaired_at && !repairWaiting.has(recordKey(record)) && (record.public || listedBy.has(recordKey(record))));
  const pendingRows = pending.map((p) =>
    el("tr", {},
      el("td", {}, p.item.fact === "repaired" ? "your repair application" : p.item.fact ? p.item.fact + " (later fact)" : "record of type " + p.item.type),
      el("td", {}, itemRecordKey(p.item)),
      el("td", {}, p.submitted_by),
      el("td", { class: "date" }, chinaDay(p.submitted_at_ms)),
      el("td", {}, p.item.statement || fieldsText(p.item.fields)),
    ),
  );
  const repair = repairForm(base, who.token, repairable);
  const records = file.records.map((record) =>
    el("tr", {}, el("td", {}, recordKey(record)), el("td", {}, record.title), el("td", { class: "date" }, record.decided_at), el("td", {}, fieldsText(record.fields)), el("td", { class: "date" }, record.retained_until), el("td", {}, record.disputed ? "disputed" : ""), el("td", {}, record.legal_basis)),
  );
  const effects = file.effects.map((effect) =>
    el("tr", {},
      el("td", {}, recordKey(effect.record)),
      el("td", {}, effect.by === "rule" ? effect.model + " / " + effect.rule : effect.by === "list_entry" ? "list " + effect.list : effect.by),
      el("td", { class: "num" }, effect.points === undefined ? "" : String(effect.points)),
      el("td", { class: "date" }, effect.start + " – " + effect.end),
      el("td", {}, effect.status),
      el("td", {}, effect.legal_basis),
    ),
  );
  // Points taken for an expectation not met (gain at least so many points
  // a year, or else …): every period that fell short, with its basis.
  const penalties = (file.models || []).flatMap((model) =>
    (model.penalties || []).map((penalty) =>
      el("tr", {},
        el("td", {}, model.model + " / " + penalty.expectation),
        el("td", { class: "date" }, penalty.period_start),
        el("td", { class: "num" }, String(penalty.gained) + " of " + String(penalty.gain_min)),
        el("td", { class: "num" }, String(penalty.points)),
        el("td", { class: "date" }, penalty.start + " – " + penalty.end),
        el("td", {}, penalty.in_force ? "counts" : "counted"),
        el("td", {}, penalty.legal_basis),
      ),
    ),
  );
  const logRow = (entry) =>
    el("tr", {}, el("td", { class: "date" }, chinaTime(entry.at_ms)), el("td", {}, entry.actor), el("td", {}, entry.role), el("td", {}, entry.purpose), el("td", {}, entry.action), el("td", {}, entry.detail));
  const logTable = table("access-log", ["When", "Who", "Role", "Purpose", "What", "Detail"], log.entries.map(logRow), "Nobody has read your file yet.");
  const moreLog = moreButton("more-log", "Later entries", log,
    (after) => api(base + "/access-log?limit=" + PAGE + "&after=" + encodeURIComponent(after), { token: who.token }),
    (entries) => logTable.querySelector("tbody").append(...entries.map(logRow)));

  show(
    el("h2", {}, "My file"),
    notice ? el("p", { id: "repair-notice", class: "notice" }, notice) : null,
    el("dl", { class: "summary", id: "summary" },
      el("dt", {}, "Subject"), el("dd", { id: "subject" }, file.subject + " (" + file.kind + ")"),
      el("dt", {}, "Score"), el("dd", { id: "score" }, file.score === null ? "not scored" : String(file.score)),
      el("dt", {}, "Grade"), el("dd", { id: "grade" }, file.grade || "none"),
      el("dt", {}, "Lists"), el("dd", { id: "lists" }, file.lists.join(", ") || "none"),
      el("dt", {}, "Measures that apply"), el("dd", { id: "measures" }, file.measures.join(", ") || "none"),
      el("dt", {}, "Consent to scoring"), el("dd", { id: "consent" }, file.consent ? "granted" : "not granted"),
      el("dt", {}, "As of"), el("dd", {}, file.as_of + " (rulebook " + file.rulebook + ")"),
    ),
    el("div", { class: "actions" }, explain, consentButton, signOutButton),
    explanation,
    el("h3", {}, "List entries"),
    table("list-entries", ["List", "Kind", "Since", "Until", "Public", "Record", "Legal basis"], entries, "You are on no list."),
    el("h3", {}, "Records"),
    table("records", ["Record", "Type", "Decided", "Fields", "Kept until", "Dispute", "Legal basis"], records, "The registry holds no record about you."),
    el("h3", {}, "Object to a record"),
    objectionForm,
    el("h3", {}, "Apply for repair"),
    repair,
    el("h3", {}, "Waiting for a reviewer"),
    el("p", { class: "muted" }, "Records sent about you that take effect only once a second person approves them, and your own applications. None of them counts yet."),
    table("pending", ["What", "Record", "Sent by", "Sent on", "Details"], pendingRows, "Nothing about you waits for a reviewer."),
    el("h3", {}, "Open objections"),
    table("open-items", ["Record", "Since", "Resolve by", "Deadline", "Your statement"], openItems, "No objection of yours is open."),
    el("h3", {}, "Points and list entries, with their rules"),
    table("effects", ["Record", "Rule or list", "Points", "Counted", "Status", "Legal basis"], effects, "No record has an effect."),
    el("h3", {}, "Expectations not met"),
    table("penalties", ["Model / expectation", "Period from", "Points gained of those expected", "Points", "Counted", "Status", "Legal basis"], penalties, "No expectation has gone unmet."),
    el("h3", {}, "Who read your file, and why"),
    el("p", { class: "muted" }, "Every read and change of your file, oldest first; this page's own reads are among them."),
    logTable,
    el("div", { class: "actions" }, moreLog),
  );
}

// ---- the reviewers' desk ---------------------------------------------------

// The sign-in of a desk for one role (`desk`: its role, the key its token
// is kept under in this tab, the prefix of its element ids, its heading
// and who it is for). The portal asks `GET /v1/me` who a token is and
// refuses a token of another role.
function staffSignIn(desk, problem) {
  const token = el("input", { id: desk.prefix + "-token", name: "token", type: "password", required: true, autocomplete: "off" });
  return [
    el("h2", {}, desk.heading),
    problem ? errorBox(problem) : null,
    el("p", {}, "For " + desk.who + ": sign in with the token the registry issued you. It stays in this browser tab."),
    el("form", {
        id: desk.prefix + "-sign-in",
        onsubmit: async (event) => {
          event.preventDefault();
          const candidate = token.value.trim();
          try {
            const me = await api("/v1/me", { token: candidate });
            if (me.role !== desk.role) {
              show(...staffSignIn(desk, new ApiError(403, "wrong_role", "this token is for " + me.id + ", a " + me.role + ", not " + desk.a)));
              return;
            }
            sessionStorage.setItem(desk.key, candidate);
            render();
          } catch (error) {
            if (error.name === "AbortError") return;
            show(...staffSignIn(desk, error));
          }
        },
      },
      el("label", {}, "Token", token),
      el("button", { type: "submit", id: desk.prefix + "-sign-in-submit" }, "Sign in"),
    ),
  ];
}

const REVIEW_DESK = { role: "reviewer", a: "a reviewer", key: KEY_REVIEWER, prefix: "review", heading: "Review", who: "reviewers" };
const OPERATOR_DESK = { role: "admin", a: "an operator (admin)", key: KEY_OPERATOR, prefix: "operator", heading: "Operator", who: "the registry's operators (role admin)" };
const AUDIT_DESK = { role: "auditor", a: "an auditor", key: KEY_AUDITOR, prefix: "audit", heading: "Audit log", who: "auditors" };

// A desk's sign-out button: forgets its token and shows its sign-in.
function staffSignOut(desk) {
  const button = el("button", { id: desk.prefix + "-sign-out", class: "secondary" }, "Sign out");
  button.addEventListener("click", () => {
    sessionStorage.removeItem(desk.key);
    render();
  });
  return button;
}

// Opens a desk: its token from this tab, then `paths` read in order with
// it. Answers { token, answers }, or null once the sign-in is shown (no
// token yet, or one the registry refused: it is then forgotten) or an
// error is (any other failure, a registry out of service for a moment:
// the token is kept, and the desk opens again when the view is shown).
async function openDesk(desk, loading, paths) {
  markNav("nav-" + desk.prefix);
  const token = sessionStorage.getItem(desk.key);
  if (!token) {
    show(...staffSignIn(desk, null));
    return null;
  }
  show(el("p", { class: "muted" }, loading));
  try {
    const answers = [];
    for (const path of paths) answers.push(await api(path, { token }));
    return { token, answers };
  } catch (error) {
    if (error.name === "AbortError") throw error;
    if (error.status === 401 || error.status === 403) {
      sessionStorage.removeItem(desk.key);
      show(...staffSignIn(desk, error));
      return null;
    }
    const again = el("button", { id: desk.prefix + "-again", class: "secondary" }, "Try again");
    again.addEventListener("click", () => render());
    show(el("h2", {}, desk.heading), errorBox(error), el("div", { class: "actions" }, again, staffSignOut(desk)));
    return null;
  }
}

// A desk's actions: `act(button, call)` is a handler that runs `call`
// with the button disabled, shows the desk again with `redraw`, and puts
// what `call` answered (a sentence, or nodes) into the element `statusId`;
// an error shows there instead, with what `more(error)` adds, and the
// button may be pressed again.
function deskActions(redraw, statusId, more = () => null) {
  return (button, call) => async () => {
    button.disabled = true;
    try {
      const said = await call();
      await redraw();
      const nodes = typeof said === "string" ? [el("p", { class: "notice" }, said)] : said || [];
      document.getElementById(statusId).replaceChildren(...nodes);
    } catch (error) {
      if (error.name === "AbortError") return;
      document.getElementById(statusId).replaceChildren(errorBox(error), more(error) || "");
      button.disabled = false;
    }
  };
}

// What a pending item is, in a line: a record's type and key, or a fact's
// kind, record and statement.
function pendingSummary(item) {
  const what = item.item || {};
  if (what.fact) {
    const record = what.record ? " about " + itemRecordKey(what) : "";
    const statement = what.statement ? " — " + what.statement : "";
    return what.fact + record + statement;
  }
  return (what.type || "record") + " " + (what.provider || "") + "/" + (what.id || "");
}

async function review() {
  const desk = await openDesk(REVIEW_DESK, "Reading the queues…", ["/v1/me", "/v1/review/pending?limit=" + PAGE, "/v1/review/objections?limit=" + PAGE]);
  if (!desk) return;
  const { token, answers: [me, pending, objections] } = desk;
  const status = el("div", { id: "review-status" });
  // Runs one decision, then shows the queues again with what it answered.
  const decide = deskActions(review, "review-status");
  const pendingRow = (item) => {
    const approve = el("button", { class: "secondary", id: "approve-" + item.seq }, "Approve");
    const reason = el("input", { id: "reason-" + item.seq, placeholder: "Why it is rejected" });
    const reject = el("button", { class: "secondary", id: "reject-" + item.seq }, "Reject");
    approve.addEventListener("click", decide(approve, async () => {
      await api("/v1/review/approve", { method: "POST", token, body: { key: item.key } });
      return "Approved: " + pendingSummary(item) + ".";
    }));
    reject.addEventListener("click", decide(reject, async () => {
      await api("/v1/review/reject", { method: "POST", token, body: { key: item.key, reason: reason.value } });
      return "Rejected: " + pendingSummary(item) + ".";
    }));
    // The API refuses a reviewer's decision on its own submission.
    const own = item.submitted_by === me.id;
    return el("tr", {},
      el("td", { class: "num" }, String(item.seq)),
      el("td", {}, item.subject),
      el("td", {}, pendingSummary(item)),
      el("td", {}, item.submitted_by),
      el("td", {}, own ? el("span", { class: "muted" }, "Your own submission: another reviewer decides.") : el("div", { class: "actions" }, approve, reason, reject)),
    );
  };
  // Sends a `resolved` fact about `objection` as this reviewer; `extra`
  // carries a correction's type and fields.
  const sendResolution = async (objection, outcome, extra) => {
    const answer = await api("/v1/records", {
      method: "POST",
      token,
      body: [{
        fact: "resolved", provider: objection.record.provider, record: objection.record.id,
        subject: objection.subject, at: objections.as_of, by: me.id, outcome, ...extra,
      }],
    });
    const result = answer.results[0] || {};
    if (result.status !== "stored" && result.status !== "pending_review") {
      throw new ApiError(0, result.code || result.status, result.message || "the resolution was not stored: " + result.status);
    }
    return "Objection to " + recordKey(objection.record) + ": " + outcome + (result.status === "pending_review" ? " (waits for a second reviewer)" : "") + ".";
  };
  // The form of a correction: one input per field of the record as it
  // stands, numbers kept numbers; hidden until "Correct…" is pressed.
  const correctionForm = (objection, n, send) => {
    const inputs = Object.entries(objection.fields || {}).map(([name, value]) => {
      const kind = typeof value === "number" ? "number" : typeof value === "boolean" ? "checkbox" : "text";
      const input = el("input", { id: "correct-" + n + "-" + name, name, type: kind, step: kind === "number" ? "any" : null });
      if (kind === "checkbox") input.checked = value;
      else input.value = typeof value === "string" || kind === "number" ? String(value) : JSON.stringify(value);
      return { name, kind, original: value, input };
    });
    const submit = el("button", { type: "submit", id: "corrected-" + n }, "Resolve as corrected");
    const form = el("form", { class: "correction", id: "correction-" + n, hidden: true },
      ...inputs.map(({ name, input }) => el("label", {}, name, input)),
      submit,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const fields = {};
      for (const { name, kind, original, input } of inputs) {
        if (kind === "checkbox") fields[name] = input.checked;
        else if (kind === "number") {
          // An emptied box would read as 0: refused, naming the field.
          const value = input.value.trim() === "" ? NaN : Number(input.value);
          if (!Number.isFinite(value)) {
            status.replaceChildren(errorBox(new ApiError(0, "invalid_field", "field `" + name + "` must be a number")));
            return;
          }
          fields[name] = value;
        }
        else if (typeof original === "string") fields[name] = input.value;
        else {
          try {
            fields[name] = JSON.parse(input.value);
          } catch (_) {
            status.replaceChildren(errorBox(new ApiError(0, "invalid_field", "field `" + name + "` must be JSON, as it was")));
            return;
          }
        }
      }
      decide(submit, () => send(fields))();
    });
    return form;
  };
  // Rows are numbered across pages, for their elements' ids.
  let objectionsShown = 0;
  const objectionRow = (objection) => {
    const n = objectionsShown++;
    const resolve = (outcome, label) => {
      const button = el("button", { class: "secondary", id: outcome + "-" + n }, label);
      button.addEventListener("click", decide(button, () => sendResolution(objection, outcome, {})));
      return button;
    };
    const correction = correctionForm(objection, n, (fields) => sendResolution(objection, "corrected", { type: objection.record_type, fields }));
    const correct = el("button", { class: "secondary", id: "correct-" + n, type: "button" }, "Correct…");
    correct.addEventListener("click", () => {
      correction.hidden = !correction.hidden;
    });
    return el("tr", {},
      el("td", {}, objection.subject),
      el("td", {}, recordKey(objection.record) + " (" + objection.record_type + ")", el("div", { class: "muted" }, fieldsText(objection.fields))),
      el("td", { class: "date" }, objection.since),
      el("td", { class: "date" }, objection.resolve_by),
      el("td", {}, objection.overdue ? "overdue" : "within time"),
      el("td", {}, objection.statement || ""),
      el("td", {}, el("div", { class: "actions" }, resolve("upheld", "Uphold"), correct, resolve("retracted", "Retract the record")), correction),
    );
  };
  // Each queue a page at a time: "More" reads the next with this token.
  const nextPage = (path) => (after) => api(path + "?limit=" + PAGE + "&after=" + encodeURIComponent(after), { token });
  const appendTo = (id, row) => (rows) => document.querySelector("#" + id + " tbody").append(...rows.map(row));
  const morePending = moreButton("pending-more", "More waiting items", pending, nextPage("/v1/review/pending"), appendTo("pending", pendingRow), "items");
  const moreObjections = moreButton("objections-more", "More objections", objections, nextPage("/v1/review/objections"), appendTo("objections", objectionRow), "objections");
  const signOutButton = staffSignOut(REVIEW_DESK);
  show(
    el("h2", {}, "Review"),
    el("p", {}, "Signed in as ", el("strong", { id: "reviewer" }, me.name + " (" + me.id + ")"), ". Every decision is logged where its subject sees it."),
    el("div", { class: "actions" }, signOutButton),
    status,
    el("h3", {}, "Waiting for a second person"),
    table("pending", ["#", "Subject", "What", "Submitted by", ""], pending.items.map(pendingRow), "Nothing waits for review."),
    el("div", { class: "actions" }, morePending),
    el("h3", {}, "Open objections, as of " + objections.as_of),
    table("objections", ["Subject", "Record", "Since", "Resolve by", "Deadline", "Statement", ""], objections.objections.map(objectionRow), "No objection is open."),
    el("div", { class: "actions" }, moreObjections),
  );
}

// ---- the operator's desk ---------------------------------------------------

// A term list of `pairs` ([label, value, id]).
function summaryList(id, pairs) {
  return el("dl", { class: "summary", id },
    pairs.flatMap(([label, value, key]) => [el("dt", {}, label), el("dd", key ? { id: key } : {}, typeof value === "number" ? value.toLocaleString("en") : String(value))]));
}

// The rulebook's problems (line, column, message) under an error.
function problemsList(error) {
  const problems = (error.detail && error.detail.problems) || [];
  if (problems.length === 0) return null;
  return el("ul", { id: "rulebook-problems", class: "problems" },
    problems.map((p) => el("li", {}, "line " + p.line + ", column " + p.column + ": " + p.message)));
}

async function operator() {
  const desk = await openDesk(OPERATOR_DESK, "Reading the dashboard…", ["/v1/me", "/v1/admin/dashboard", "/v1/admin/principals", "/v1/admin/rulebooks"]);
  if (!desk) return;
  const { token, answers: [me, board, principals, rulebooks] } = desk;
  const status = el("div", { id: "operator-status" });
  // Runs one change, then shows the desk again with what it answered.
  const change = deskActions(operator, "operator-status", problemsList);

  const store = board.store;
  const since = board.since_start;
  const figures = summaryList("dashboard", [
    ["Rulebook in force", board.rulebook, "board-rulebook"],
    ["As of", board.as_of],
    ["Subjects", store.subjects, "board-subjects"],
    ["Records in effect", store.records, "board-records"],
    ["Later facts in effect", store.facts],
    ["Waiting for review", store.pending, "board-pending"],
    ["Audit entries", store.audit_entries, "board-audit"],
    ["Audit head", board.audit_head ? "#" + board.audit_head.seq + " " + board.audit_head.hash : "none"],
    ["Principals", store.principals],
    ["Rulebook versions", store.rulebooks],
  ]);
  const activity = summaryList("since-start", [
    ["Requests answered", since.requests.success],
    ["Requests refused (4xx)", since.requests.refused],
    ["Requests failed (5xx)", since.requests.failed, "board-failed"],
    ["Items sent in", Object.entries(since.ingest).map(([k, v]) => k + " " + v).join(", ")],
    ["Decisions", "applies " + since.decisions.applies + ", does not apply " + since.decisions.does_not_apply, "board-decisions"],
    ["Erased at the end of retention", since.erasure.runs + " runs: " + since.erasure.records + " records, " + since.erasure.facts + " facts, " + since.erasure.rejected + " rejected and " + since.erasure.pending + " waiting records; " + since.erasure.held_back + " held back in the last run", "board-erasure"],
    ["Handlers that panicked", since.panics],
  ]);

  // Erasure runs by itself once a day; the operator may run it now.
  const erase = el("button", { class: "secondary", id: "erase-now" }, "Erase what is past retention now");
  erase.addEventListener("click", change(erase, async () => {
    const run = await api("/v1/admin/erasure", { method: "POST", token });
    return "Erased as of " + run.as_of + ": " + run.records + " records and " + run.facts + " facts about them from " + run.subjects + " subjects, " + run.rejected + " rejected and " + run.pending + " waiting records; " + run.held_back + " held back, because a record still in the file depends on them.";
  }));

  // Days are YYYY-MM-DD, so text order is date order.
  const principalStatus = (p, today) =>
    p.revoked ? "revoked"
      : !p.valid_until ? "active"
      : p.valid_until < today ? "expired (its last day was " + p.valid_until + ")"
      : "active until " + p.valid_until;
  const principalRows = principals.principals.map((p) => {
    const revoke = el("button", { class: "secondary", id: "revoke-" + p.id, hidden: p.revoked || p.id === me.id }, "Revoke");
    revoke.addEventListener("click", change(revoke, async () => {
      await api("/v1/admin/principals/" + encodeURIComponent(p.id), { method: "DELETE", token });
      return "Revoked " + p.id + ": its token no longer works.";
    }));
    return el("tr", {},
      el("td", {}, p.id),
      el("td", {}, p.name),
      el("td", {}, p.role),
      el("td", {}, p.scope || ""),
      el("td", {}, (p.record_types || []).join(", ")),
      el("td", {}, principalStatus(p, board.as_of)),
      el("td", {}, revoke),
    );
  });
  const field = (name, attrs = {}) => el("input", { id: "principal-" + name, name, autocomplete: "off", spellcheck: "false", ...attrs });
  const id = field("id", { required: true, placeholder: "e.g. bank" });
  const name = field("name", { required: true, placeholder: "e.g. National bank" });
  const role = el("select", { id: "principal-role", name: "role" },
    ["provider", "agency", "reviewer", "subject", "auditor", "admin"].map((r) => el("option", { value: r }, r)));
  const scope = field("scope", { placeholder: "provider id, agency id or subject identifier" });
  const types = field("record-types", { placeholder: "record types, comma-separated (providers)" });
  const validUntil = field("valid-until", { type: "date" });
  const register = el("button", { type: "submit", id: "principal-submit" }, "Register and issue a token");
  const registerForm = el("form", { id: "principal-form" },
    el("label", {}, "Id", id), el("label", {}, "Name", name), el("label", {}, "Role", role),
    el("label", {}, "Scope", scope), el("label", {}, "Record types", types),
    el("label", {}, "Valid until (the token's last day; empty: until revoked)", validUntil), register);
  registerForm.addEventListener("submit", (event) => {
    event.preventDefault();
    change(register, async () => {
      const body = { id: id.value.trim(), name: name.value.trim(), role: role.value };
      if (scope.value.trim()) body.scope = scope.value.trim();
      const wanted = types.value.split(",").map((t) => t.trim()).filter((t) => t);
      if (wanted.length) body.record_types = wanted;
      if (validUntil.value) body.valid_until = validUntil.value;
      const issued = await api("/v1/admin/principals", { method: "POST", token, body });
      return [
        el("p", { class: "notice" }, "Registered " + issued.principal.id + " (" + issued.principal.role + "). Its token, shown only now:"),
        el("pre", { id: "issued-token", class: "token" }, issued.token),
        ...(issued.warnings || []).map((w) => el("p", { class: "muted" }, "Warning: " + w)),
      ];
    })();
  });

  const versionRows = rulebooks.versions.map((v) =>
    el("tr", {},
      el("td", {}, v.label + (v.label === rulebooks.current ? " (in force)" : "")),
      el("td", { class: "date" }, chinaTime(v.uploaded_at_ms)),
      el("td", {}, v.uploaded_by),
    ),
  );
  const rulebookText = el("textarea", { id: "rulebook-text", name: "rulebook", rows: 12, spellcheck: "false", required: true, placeholder: "The whole rulebook, in TOML (see docs/rulebook.md)" });
  const upload = el("button", { type: "submit", id: "rulebook-submit" }, "Check and install");
  // What the rulebook would do if installed today: counts only, nothing
  // installed, the text left in place to install next.
  const impact = el("button", { type: "button", class: "secondary", id: "rulebook-impact" }, "See what it would do");
  impact.addEventListener("click", async () => {
    impact.disabled = true;
    const said = document.getElementById("operator-status");
    try {
      const report = await api("/v1/admin/rulebook/impact", { method: "POST", token, text: rulebookText.value, type: "application/toml" });
      const moves = (what, counts) => Object.entries(counts).map(([name, m]) =>
        el("li", {}, what + " " + name + ": " + m.entered + " would enter, " + m.left + " would leave"));
      const refused = report.refused ? "; its catalog refuses " + report.refused + " records in effect" : "";
      said.replaceChildren(
        el("p", { class: "notice" }, "Installed today, " + report.other.rulebook + " would change the standing of " + report.changed + " of " + report.subjects + " subjects" + refused + ". Nothing was installed."),
        el("ul", { id: "impact-moves" }, moves("list", report.lists), moves("measure", report.measures)),
      );
    } catch (error) {
      if (error.name === "AbortError") return;
      said.replaceChildren(errorBox(error), problemsList(error) || "");
    } finally {
      impact.disabled = false;
    }
  });
  const uploadForm = el("form", { id: "rulebook-form" }, el("label", {}, "Rulebook", rulebookText), el("div", { class: "actions" }, impact, upload));
  uploadForm.addEventListener("submit", (event) => {
    event.preventDefault();
    change(upload, async () => {
      const installed = await api("/v1/admin/rulebook", { method: "PUT", token, text: rulebookText.value, type: "application/toml" });
      return "Installed " + installed.label + "; " + installed.recomputed + " files recomputed with it.";
    })();
  });

  show(
    el("h2", {}, "Operator"),
    el("p", {}, "Signed in as ", el("strong", { id: "operator" }, me.name + " (" + me.id + ")"), ". Every change is in the audit log."),
    el("div", { class: "actions" }, staffSignOut(OPERATOR_DESK)),
    status,
    el("h3", {}, "The registry"),
    figures,
    el("h3", {}, "Since this server started"),
    activity,
    el("h3", {}, "Retention"),
    el("p", { class: "muted" }, "Records past their retention, with the facts about them, are erased once a day, unless a record still in the file depends on them. Each erasure is in the subject's access log."),
    el("div", { class: "actions" }, erase),
    el("h3", {}, "Principals"),
    el("p", { class: "muted" }, "Providers, agencies, reviewers, subjects, auditors and operators, each with the token it signs in with. A token is shown once, when it is issued; registering an id again issues a new one and the old one stops."),
    table("principals", ["Id", "Name", "Role", "Scope", "Record types", "Status", ""], principalRows, "No principal is registered."),
    el("h3", {}, "Register a principal"),
    registerForm,
    el("h3", {}, "Rulebook versions"),
    table("rulebooks", ["Label", "Uploaded", "By"], versionRows, "No rulebook was uploaded."),
    el("p", { class: "muted" }, "A new rulebook is checked first: every problem comes back with its line and column. Before installing it, see what it would do to the registry today (counts only). Once installed, every credit file is recomputed with it; earlier versions stay stored."),
    uploadForm,
  );
}

// ---- the auditors' desk ----------------------------------------------------

// The audit log, or only the entries about `subject` (its access log; the
// auditor's read of it is then in that log too).
async function audit(subject) {
  const desk = await openDesk(AUDIT_DESK, "Reading the audit log…", ["/v1/me"]);
  if (!desk) return;
  const { token, answers: [me] } = desk;
  const about = subject ? "&subject=" + encodeURIComponent(subject) : "";
  let page;
  let problem = null;
  try {
    page = await api("/v1/audit?limit=" + PAGE + about, { token });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    problem = error;
    page = { entries: [] };
  }
  const filter = el("input", { id: "audit-subject", name: "subject", value: subject || "", autocomplete: "off", spellcheck: "false", placeholder: "a subject's identifier (empty: every entry)" });
  const filterForm = el("form", { id: "audit-filter" },
    el("label", {}, "Entries about one subject", filter),
    el("button", { type: "submit", id: "audit-filter-submit", class: "secondary" }, "Show"));
  filterForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const wanted = filter.value.trim();
    location.hash = wanted ? "#/audit/" + encodeURIComponent(wanted) : "#/audit";
  });
  const row = (entry) =>
    el("tr", {},
      el("td", { class: "num" }, String(entry.seq)),
      el("td", { class: "date" }, chinaTime(entry.at_ms)),
      el("td", {}, entry.actor), el("td", {}, entry.role), el("td", {}, entry.purpose), el("td", {}, entry.action),
      el("td", {}, entry.subject || ""), el("td", {}, entry.detail),
      el("td", { class: "hash" }, entry.hash.slice(0, 16) + "…"),
    );
  const log = table("audit-entries", ["#", "When", "Who", "Role", "Purpose", "What", "Subject", "Detail", "Hash"], page.entries.map(row), "The audit log is empty.");
  const more = moreButton("more-audit", "Later entries", page,
    (after) => api("/v1/audit?limit=" + PAGE + about + "&after=" + encodeURIComponent(after), { token }),
    (entries) => log.querySelector("tbody").append(...entries.map(row)));
  const verdict = el("div", { id: "chain" });
  const verify = el("button", { id: "verify-chain" }, "Verify the hash chain");
  verify.addEventListener("click", async () => {
    verify.disabled = true;
    verdict.replaceChildren(el("p", { class: "muted" }, "Checking every entry…"));
    try {
      const report = await api("/v1/audit/verify", { token });
      verdict.replaceChildren(report.ok
        ? el("p", { class: "notice" }, "The chain holds: " + report.entries + " entries, each hashed over the one before.")
        : el("p", { class: "error" }, "The chain is broken at entry " + report.broken.seq + ": " + report.broken.reason));
    } catch (error) {
      verdict.replaceChildren(errorBox(error));
    }
    verify.disabled = false;
  });
  show(
    el("h2", {}, subject ? "Audit log about " + subject : "Audit log"),
    el("p", {}, "Signed in as ", el("strong", { id: "auditor" }, me.name + " (" + me.id + ")"), "."),
    el("div", { class: "actions" }, verify, staffSignOut(AUDIT_DESK)),
    verdict,
    filterForm,
    el("p", { class: "muted" }, subject
      ? "The entries about this subject, oldest first: its access log as it reads it. This read is logged there too."
      : "Every write and every read of a credit file, oldest first; each entry's hash covers the entry and the hash before it, so an edit or a deletion anywhere breaks the chain from there on."),
    problem ? errorBox(problem) : log,
    el("div", { class: "actions" }, more),
  );
}

// ---- routing ---------------------------------------------------------------

async function render() {
  viewRequests.abort();
  viewRequests = new AbortController();
  try {
    // A malformed escape in the address is reported like any other error.
    const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
    switch (parts[0]) {
      case "lists":
        if (parts[1]) await listMembers(parts[1]);
        else await lists();
        break;
      case "company":
        await company(parts[1] || "");
        break;
      case "me":
        await myFile();
        break;
      case "rulebook":
        await rulebook();
        break;
      case "review":
        await review();
        break;
      case "operator":
        await operator();
        break;
      case "audit":
        await audit(parts[1] || "");
        break;
      default:
        home();
    }
  } catch (error) {
    if (error.name === "AbortError") return; // another view took over
    if (error instanceof URIError) {
      markNav(null);
      show(errorBox(new ApiError(0, "invalid_address", "the address after # holds a malformed %-escape: " + location.hash)));
      return;
    }
    show(errorBox(error instanceof ApiError ? error : new ApiError(0, "portal", String(error))));
  }
}

async function footer() {
  try {
    const rulebook = await api("/v1/rulebook");
    const label = rulebook.label;
    if (label) document.getElementById("rulebook").textContent = "Rulebook in force: " + label + ".";
  } catch (_) {
    // The footer is a courtesy; the views report their own errors.
  }
}

window.addEventListener("hashchange", render);
window.addEventListener("DOMContentLoaded", () => {
  render();
  footer();
});
