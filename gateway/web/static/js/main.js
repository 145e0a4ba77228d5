// riffle's page: sign up or in, drop WAVs, watch them upload and convert, play and share.

import { createUser, deleteRecord, listRecords, uploadLimits } from "./api.js";
import { formatBytes } from "./format.js";
import { RecordList } from "./records.js";
import { forgetSession, isUuid, loadSession, saveSession } from "./session.js";
import { UploadStore, fingerprint } from "./tus.js";
import { UploadItem } from "./uploads.js";
import { copyText } from "./ui.js";
import { describe } from "./words.js";

const $ = (id) => document.getElementById(id);
const views = ["view-welcome", "view-token", "view-app"];

let shown = null;

function show(view) {
  for (const id of views) $(id).hidden = id !== view;
  $("account").hidden = view !== "view-app";
  const heading = $(view).querySelector("h1");
  // After a change of view, a screen reader starts at its heading (not on the first load).
  if (shown !== null) heading?.focus({ preventScroll: true });
  shown = view;
  document.title = `${heading ? heading.textContent : "riffle"} · riffle`;
}

function setError(element, error) {
  element.hidden = !error;
  element.textContent = error ? (typeof error === "string" ? error : describe(error)) : "";
}

// --- signed out ---------------------------------------------------------------------------------

function welcome() {
  show("view-welcome");
  $("create-form").onsubmit = async (event) => {
    event.preventDefault();
    const name = $("create-name").value.trim();
    const errorBox = $("create-error");
    if (!name) {
      setError(errorBox, "Enter a name (1 to 100 characters).");
      $("create-name").focus();
      return;
    }
    setError(errorBox, null);
    const button = event.submitter || $("create-form").querySelector("button");
    button.disabled = true;
    try {
      const user = await createUser(name);
      const session = { userId: user.id, token: user.token, name: user.name };
      saveSession(session, $("create-remember").checked);
      tokenOnce(session);
    } catch (error) {
      setError(errorBox, error);
    } finally {
      button.disabled = false;
    }
  };
  $("signin-form").onsubmit = async (event) => {
    event.preventDefault();
    const userId = $("signin-user").value.trim();
    const token = $("signin-token").value.trim();
    const errorBox = $("signin-error");
    if (!isUuid(userId)) {
      setError(errorBox, "The user id is the UUID shown when the account was made, like 0b7c9a1e-3f52-4d6a-8e21-5c4b3a291f00.");
      $("signin-user").focus();
      return;
    }
    if (!token) {
      setError(errorBox, "Enter the token you saved when the account was made.");
      $("signin-token").focus();
      return;
    }
    setError(errorBox, null);
    const session = { userId: userId.toLowerCase(), token, name: null };
    try {
      await listRecords(session, { limit: 1 }); // the token is checked here, nothing changes
    } catch (error) {
      setError(errorBox, error);
      return;
    }
    saveSession(session, $("signin-remember").checked);
    $("signin-token").value = "";
    app(session);
  };
}

function tokenOnce(session) {
  show("view-token");
  $("new-user-id").textContent = session.userId;
  $("new-token").textContent = session.token;
  $("token-saved").checked = false;
  $("token-continue").disabled = true;
  $("token-saved").onchange = () => {
    $("token-continue").disabled = !$("token-saved").checked;
  };
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.onclick = async () => {
      const text = $(button.dataset.copy).textContent;
      $("copy-status").textContent = (await copyText(text)) ? "Copied." : "Select the text and copy it.";
    };
  }
  $("token-continue").onclick = () => app(session);
}

// --- signed in ----------------------------------------------------------------------------------

async function app(session) {
  show("view-app");
  $("who").textContent = session.name ? `${session.name} (${session.userId})` : session.userId;
  $("sign-out").onclick = () => {
    forgetSession();
    // A fresh page: every stream and upload of this session stops with it.
    location.assign("/");
  };
  const limits = await uploadLimits();
  if (limits.maxBytes) {
    $("limits").textContent = `WAV files up to ${formatBytes(limits.maxBytes)}. Uploads resume after a lost connection or a reload.`;
  }
  const store = new UploadStore(session.userId);
  const items = new Map(); // fingerprint → UploadItem
  const uploads = $("uploads");

  const onDelete = async (record) => {
    await deleteRecord(session, record.id);
    for (const element of document.querySelectorAll(`[data-record-id="${record.id}"]`)) {
      (element.closest("li") || element).remove();
    }
    records.remove(record.id);
  };
  const records = new RecordList({
    session,
    list: $("records"),
    more: $("records-more"),
    status: $("records-status"),
    onDelete,
  });
  $("records-refresh").onclick = () => records.load({ reset: true });

  const newItem = (options) => {
    const item = new UploadItem({
      session,
      limits,
      store,
      onDelete,
      onRecord: (record, row) => {
        row.element.dataset.recordId = record.id;
        records.prepend(record, row.name);
      },
      ...options,
    });
    items.set(item.key, item);
    uploads.prepend(item.element);
    return item;
  };

  const addFiles = (files) => {
    for (const file of files) {
      const existing = items.get(fingerprint(file));
      if (existing?.element.isConnected) {
        if (existing.element.dataset.state === "stalled") existing.attach(file);
        continue; // already on its way
      }
      newItem({ file }).start();
    }
  };

  // Uploads an earlier visit left unfinished: each comes back as a row.
  for (const [key, entry] of Object.entries(store.all())) {
    newItem({ key, entry }).restore(entry);
  }

  const input = $("file-input");
  $("choose-files").onclick = () => input.click();
  input.onchange = () => {
    addFiles([...input.files]);
    input.value = "";
  };
  const zone = $("drop-zone");
  const dragging = (on) => (event) => {
    event.preventDefault();
    zone.classList.toggle("dragging", on);
  };
  zone.ondragenter = dragging(true);
  zone.ondragover = dragging(true);
  zone.ondragleave = dragging(false);
  zone.ondrop = (event) => {
    dragging(false)(event);
    event.stopPropagation();
    addFiles([...(event.dataTransfer?.files || [])]);
  };
  // A file dropped beside the zone must not navigate away from the page (and its uploads).
  window.ondragover = (event) => event.preventDefault();
  window.ondrop = (event) => {
    event.preventDefault();
    addFiles([...(event.dataTransfer?.files || [])]);
  };

  await records.load({ reset: true });
}

const session = loadSession();
if (session) app(session);
else welcome();
