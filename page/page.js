// Sign-in page for connecting a Microsoft 365 mailbox to an EQuIS Enterprise site.
//
// The OAuth token identifier returned by /api/auth/result is secret: it is only
// ever written to the read-only #identifier box, never to the URL, to storage or
// to the console. Only the site URL and mailbox address are kept in
// sessionStorage, so that they are filled in again after the return from Microsoft.

const STORAGE_KEY = "microsoft365-oauth-form";
const REQUEST_TIMEOUT_MS = 30000;
const COPIED_LABEL_MS = 2000;

const MESSAGES = {
  unreachable:
    "The sign-in service could not be reached. Check your connection and try again.",
  timedOut:
    "The sign-in service did not respond in time. Wait a minute and try again.",
  unexpected:
    "The sign-in service returned an unexpected response. Wait a minute and try again.",
  signInAgain:
    "To get a new OAuth token identifier, select Sign in with Microsoft and sign in again. If the mailbox is already connected, the page then offers to issue a new identifier.",
  siteUrlMissing:
    "Enter the EQuIS site URL, for example https://mysite.equisonline.com.",
  siteUrlInvalid:
    "The EQuIS site URL is not a valid web address. Enter it like https://mysite.equisonline.com.",
  siteUrlNotHttps:
    "The EQuIS site URL must start with https://. Enter it like https://mysite.equisonline.com.",
  emailMissing: "Enter the mailbox address, for example EQuIS@mycompany.com.",
  emailInvalid:
    "The mailbox address is not valid. Enter it like EQuIS@mycompany.com.",
  starting: "Starting sign-in with Microsoft…",
  redirecting: "Opening the Microsoft sign-in page…",
  finishing: "Finishing sign-in…",
  finished: "Sign-in finished. Copy the OAuth token identifier below.",
  renewed: "Sign-in finished. This mailbox was already connected.",
  issuing: "Issuing a new identifier…",
  issued:
    "New identifier issued. Copy it below; the old identifier no longer works.",
  copied: "Copied",
  copyFailed:
    "The identifier could not be copied. Select it and press Ctrl+C, or Command+C on a Mac.",
};

// Values that Microsoft 365 requires for IMAP and SMTP. They are used only when
// a successful result lacks its settings, so that the identifier, which cannot
// be fetched a second time, is still shown together with complete instructions.
const DEFAULT_SETTINGS = {
  imap: { host: "outlook.office365.com", port: 993, security: "SSL/TLS" },
  smtp: { host: "smtp.office365.com", port: 587, security: "STARTTLS" },
};

const form = document.getElementById("sign-in-form");
const signInButton = document.getElementById("sign-in");
const errorArea = document.getElementById("error");
const statusArea = document.getElementById("status");
const resultSection = document.getElementById("result");
const identifierBox = document.getElementById("identifier");
const copyButton = document.getElementById("copy-identifier");
const newIdentifierOffer = document.getElementById("new-identifier-offer");
const newIdentifierButton = document.getElementById("new-identifier");

// The tag of the sign-in whose result this page shows, for a new identifier.
let signInTag = "";

// Form fields by the names the API uses in `field` and in request bodies.
const FIELDS = {
  siteUrl: {
    input: document.getElementById("site-url"),
    error: document.getElementById("site-url-error"),
    hintId: "site-url-hint",
  },
  email: {
    input: document.getElementById("email"),
    error: document.getElementById("email-error"),
    hintId: "email-hint",
  },
};

function setStatus(text) {
  statusArea.textContent = text;
}

function setBusy(busy) {
  signInButton.disabled = busy;
  form.setAttribute("aria-busy", String(busy));
}

// Storage can be unavailable (blocked by a browser setting), so every access
// is guarded and a failure only means the fields are not filled in again.
function saveFormValues(siteUrl, email) {
  try {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ siteUrl, email }));
  } catch {
    // The form still works, the fields are just empty after the return.
  }
}

function restoreFormValues() {
  let saved;
  try {
    saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "null");
  } catch {
    return;
  }
  fillForm(saved);
}

function fillForm(values) {
  if (values === null || typeof values !== "object") {
    return;
  }
  for (const [name, field] of Object.entries(FIELDS)) {
    if (typeof values[name] === "string" && values[name] !== "") {
      field.input.value = values[name];
    }
  }
}

function clearErrors() {
  errorArea.replaceChildren();
  errorArea.hidden = true;
  for (const field of Object.values(FIELDS)) {
    field.error.textContent = "";
    field.error.hidden = true;
    field.input.removeAttribute("aria-invalid");
    field.input.setAttribute("aria-describedby", field.hintId);
  }
}

function showFieldError(name, message) {
  const field = FIELDS[name];
  field.error.textContent = message;
  field.error.hidden = false;
  field.input.setAttribute("aria-invalid", "true");
  field.input.setAttribute(
    "aria-describedby",
    `${field.hintId} ${field.error.id}`,
  );
}

// Shows each sentence as its own paragraph in the general error area and moves
// focus there, so that screen readers read it and keyboard users start from it.
function showGeneralError(...sentences) {
  const paragraphs = sentences.map((sentence) => {
    const paragraph = document.createElement("p");
    paragraph.textContent = sentence;
    return paragraph;
  });
  errorArea.replaceChildren(...paragraphs);
  errorArea.hidden = false;
  errorArea.focus();
}

// Returns a list of { field, message } for the values the server would reject.
// The server validates again and its response is final.
function validateForm(siteUrl, email) {
  const errors = [];

  if (siteUrl === "") {
    errors.push({ field: "siteUrl", message: MESSAGES.siteUrlMissing });
  } else {
    let parsed = null;
    try {
      parsed = new URL(siteUrl);
    } catch {
      errors.push({ field: "siteUrl", message: MESSAGES.siteUrlInvalid });
    }
    if (parsed !== null && parsed.protocol !== "https:") {
      errors.push({ field: "siteUrl", message: MESSAGES.siteUrlNotHttps });
    } else if (parsed !== null && parsed.hostname === "") {
      errors.push({ field: "siteUrl", message: MESSAGES.siteUrlInvalid });
    }
  }

  if (email === "") {
    errors.push({ field: "email", message: MESSAGES.emailMissing });
  } else if (!/^[^\s@]+@[^\s@]+$/.test(email)) {
    errors.push({ field: "email", message: MESSAGES.emailInvalid });
  }

  return errors;
}

// Sends a POST to the same-origin API and returns one of
// { kind: "response", status, data } with data null when the body is not JSON,
// { kind: "timeout" } or { kind: "network" }. It never throws.
async function postToApi(path, body) {
  const init = {
    method: "POST",
    credentials: "same-origin",
    cache: "no-store",
    headers: { Accept: "application/json" },
    signal: window.AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }

  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    return { kind: error?.name === "TimeoutError" ? "timeout" : "network" };
  }

  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    if (error?.name === "TimeoutError") {
      return { kind: "timeout" };
    }
  }
  return { kind: "response", status: response.status, data };
}

function isObject(value) {
  return value !== null && typeof value === "object";
}

function errorMessageOf(data) {
  if (isObject(data) && typeof data.message === "string" && data.message) {
    return data.message;
  }
  return null;
}

// Returns the plain message for a request that got no usable response.
function failureMessage(outcome) {
  if (outcome.kind === "network") {
    return MESSAGES.unreachable;
  }
  if (outcome.kind === "timeout") {
    return MESSAGES.timedOut;
  }
  return MESSAGES.unexpected;
}

function authorizeUrlOf(data) {
  if (!isObject(data) || typeof data.authorizeUrl !== "string") {
    return null;
  }
  try {
    // Only an https address may be opened, so a malformed response cannot send
    // the browser to a javascript: or plain-http address.
    return new URL(data.authorizeUrl).protocol === "https:"
      ? data.authorizeUrl
      : null;
  } catch {
    return null;
  }
}

async function startSignIn(event) {
  event.preventDefault();
  clearErrors();

  const siteUrl = FIELDS.siteUrl.input.value.trim();
  const email = FIELDS.email.input.value.trim();
  FIELDS.siteUrl.input.value = siteUrl;
  FIELDS.email.input.value = email;

  const errors = validateForm(siteUrl, email);
  if (errors.length > 0) {
    for (const { field, message } of errors) {
      showFieldError(field, message);
    }
    setStatus("");
    FIELDS[errors[0].field].input.focus();
    return;
  }

  setBusy(true);
  setStatus(MESSAGES.starting);
  const outcome = await postToApi("/api/auth/start", { siteUrl, email });

  if (outcome.kind === "response" && outcome.status === 200) {
    const authorizeUrl = authorizeUrlOf(outcome.data);
    if (authorizeUrl !== null) {
      saveFormValues(siteUrl, email);
      setStatus(MESSAGES.redirecting);
      location.assign(authorizeUrl);
      return;
    }
  }

  setBusy(false);
  setStatus("");
  const message =
    outcome.kind === "response" && outcome.status >= 400
      ? errorMessageOf(outcome.data)
      : null;
  if (message === null) {
    showGeneralError(failureMessage(outcome));
    return;
  }
  const field = outcome.data.field;
  if (Object.hasOwn(FIELDS, field)) {
    showFieldError(field, message);
    FIELDS[field].input.focus();
  } else {
    showGeneralError(message);
  }
}

function textOr(value, fallback) {
  if (typeof value === "string" && value !== "") {
    return value;
  }
  if (typeof value === "number" && Number.isFinite(value)) {
    return String(value);
  }
  return String(fallback);
}

function fillServerSettings(prefix, server, defaults, username) {
  const values = isObject(server) ? server : {};
  document.getElementById(`${prefix}-host`).textContent = textOr(
    values.host,
    defaults.host,
  );
  document.getElementById(`${prefix}-port`).textContent = textOr(
    values.port,
    defaults.port,
  );
  document.getElementById(`${prefix}-security`).textContent = textOr(
    values.security,
    defaults.security,
  );
  document.getElementById(`${prefix}-username`).textContent = username;
}

function showResult(data) {
  fillForm(data);
  saveFormValues(FIELDS.siteUrl.input.value, FIELDS.email.input.value);

  const settings = isObject(data.settings) ? data.settings : {};
  const username = textOr(
    settings.username,
    textOr(data.email, FIELDS.email.input.value),
  );
  fillServerSettings("imap", settings.imap, DEFAULT_SETTINGS.imap, username);
  fillServerSettings("smtp", settings.smtp, DEFAULT_SETTINGS.smtp, username);

  const alreadyConnected = document.getElementById("already-connected");
  const hasIdentifier = typeof data.identifier === "string";
  alreadyConnected.hidden = data.alreadyConnected !== true;
  newIdentifierOffer.hidden = hasIdentifier;
  resultSection.hidden = false;

  if (hasIdentifier) {
    showIdentifier(data.identifier, MESSAGES.finished);
  } else {
    document.getElementById("identifier-block").hidden = true;
    identifierBox.value = "";
    setStatus(MESSAGES.renewed);
    alreadyConnected.focus();
  }
}

function showIdentifier(identifier, status) {
  document.getElementById("identifier-block").hidden = false;
  identifierBox.value = identifier;
  setStatus(status);
  identifierBox.focus();
  identifierBox.select();
}

// Replaces the identifier of a grant that this sign-in restored. The old one
// stops working, so the button is offered only on request.
async function requestNewIdentifier() {
  clearErrors();
  newIdentifierButton.disabled = true;
  setStatus(MESSAGES.issuing);

  const outcome = await postToApi("/api/auth/identifier", {
    signin: signInTag,
  });
  const data = outcome.kind === "response" ? outcome.data : null;
  if (
    outcome.kind === "response" &&
    outcome.status === 200 &&
    isObject(data) &&
    typeof data.identifier === "string" &&
    data.identifier !== ""
  ) {
    newIdentifierOffer.hidden = true;
    // The notice states that the old identifier keeps working, which is no longer true.
    document.getElementById("already-connected").hidden = true;
    showIdentifier(data.identifier, MESSAGES.issued);
    return;
  }

  newIdentifierButton.disabled = false;
  setStatus("");
  const message =
    outcome.kind === "response" && outcome.status >= 400
      ? errorMessageOf(data)
      : null;
  showGeneralError(message ?? failureMessage(outcome), MESSAGES.signInAgain);
}

async function finishSignIn(tag) {
  restoreFormValues();
  setBusy(true);
  setStatus(MESSAGES.finishing);
  // Drop ?signin=<tag>, so that reloading the page does not ask again for a
  // result that can be shown only once.
  history.replaceState(null, "", location.pathname);

  signInTag = tag;
  const outcome = await postToApi("/api/auth/result", { signin: tag });
  setBusy(false);

  const data = outcome.kind === "response" ? outcome.data : null;
  if (
    outcome.kind === "response" &&
    outcome.status === 200 &&
    isObject(data) &&
    ((typeof data.identifier === "string" && data.identifier !== "") ||
      (data.identifier === null && data.alreadyConnected === true))
  ) {
    showResult(data);
    return;
  }

  setStatus("");
  const message =
    outcome.kind === "response" && outcome.status >= 400
      ? errorMessageOf(data)
      : null;
  showGeneralError(message ?? failureMessage(outcome), MESSAGES.signInAgain);
}

// Announces the message even when the live region already shows the same
// text, as it does after a second click on Copy.
function announce(text) {
  setStatus("");
  window.setTimeout(() => setStatus(text), 100);
}

// Copies through the selection, for browsers without the Clipboard API or
// where it is not allowed. Focus goes back to the Copy button afterwards.
function copyWithSelection() {
  identifierBox.focus();
  identifierBox.select();
  let copied;
  try {
    copied = document.execCommand("copy");
  } catch {
    copied = false;
  }
  copyButton.focus();
  return copied;
}

async function copyIdentifier() {
  let copied = false;
  if (navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(identifierBox.value);
      copied = true;
    } catch {
      copied = false;
    }
  }
  if (!copied) {
    copied = copyWithSelection();
  }
  announce(copied ? MESSAGES.copied : MESSAGES.copyFailed);
  if (copied) {
    showCopiedOnButton();
  }
}

let copyLabelTimer;

// The live region sits above the result, so the button itself also shows
// "Copied" for a moment where the person is looking.
function showCopiedOnButton() {
  window.clearTimeout(copyLabelTimer);
  copyButton.textContent = MESSAGES.copied;
  copyLabelTimer = window.setTimeout(() => {
    copyButton.textContent = "Copy";
  }, COPIED_LABEL_MS);
}

form.addEventListener("submit", startSignIn);
copyButton.addEventListener("click", copyIdentifier);
newIdentifierButton.addEventListener("click", requestNewIdentifier);

// A page restored from the back-forward cache after the redirect to Microsoft
// still has its disabled button and "Opening…" status, so reset them.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) {
    setBusy(false);
    setStatus("");
  }
});

// The callback sends the browser back with ?signin=<tag>, which names the
// sign-in's cookie; the tag reveals nothing of the sign-in and is useless in
// another browser.
const returnedTag = new URLSearchParams(location.search).get("signin");
if (returnedTag !== null && /^[0-9a-f]{16}$/.test(returnedTag)) {
  finishSignIn(returnedTag);
} else {
  restoreFormValues();
}
