// Small DOM helpers and the view of one stored recording (player, link, download, delete).

import { formatBytes, formatDuration, formatTime, mp3Name } from "./format.js";

let nextId = 0;

/** A fresh element id (labels point at controls by id). */
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** ``h("p", {class: "x"}, "text", child)``: an element; ``on*`` attributes become listeners. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) element.append(child);
  }
  return element;
}

/** Copy ``text``; the Clipboard API needs a secure context, so plain http falls back. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // fall through to the selection copy
    }
  }
  const area = h("textarea", { readonly: true, "aria-hidden": "true", class: "offscreen" });
  area.value = text;
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  let copied = false;
  try {
    copied = document.execCommand("copy");
  } finally {
    area.remove();
  }
  return copied;
}

/**
 * A stored recording: facts, an ``<audio>`` player, "Copy link", "Download" and "Delete".
 * ``onDelete(record)`` is called after the person confirmed; it returns a promise.
 */
export function recordView(record, { name, onDelete }) {
  const label = name || record.original_filename || record.id;
  const status = h("p", { class: "hint", role: "status" });
  const facts = h(
    "dl",
    { class: "facts" },
    h("div", {}, h("dt", {}, "Duration"), h("dd", { class: "duration" }, formatDuration(record.duration_seconds))),
    h("div", {}, h("dt", {}, "Size"), h("dd", { class: "size" }, formatBytes(record.size_bytes))),
    record.created_at
      ? h("div", {}, h("dt", {}, "Added"), h("dd", {}, formatTime(record.created_at)))
      : null,
  );
  const audio = h("audio", {
    controls: true,
    preload: "metadata",
    src: record.url,
    "aria-label": `Play ${mp3Name(label)}`,
  });
  const copy = h(
    "button",
    {
      type: "button",
      class: "secondary copy-link",
      "aria-label": `Copy link of ${mp3Name(label)}`,
      onclick: async () => {
        status.textContent = (await copyText(record.url))
          ? "Link copied. Anyone with the link can download this recording."
          : `Copy this link: ${record.url}`;
      },
    },
    "Copy link",
  );
  const download = h(
    "a",
    {
      class: "button secondary",
      href: record.url,
      download: mp3Name(label),
      "aria-label": `Download ${mp3Name(label)}`,
    },
    "Download",
  );
  const remove = h(
    "button",
    {
      type: "button",
      class: "danger delete-record",
      "aria-label": `Delete ${mp3Name(label)}`,
      onclick: async () => {
        if (!window.confirm(`Delete ${mp3Name(label)}? Its link stops working.`)) return;
        remove.disabled = true;
        try {
          await onDelete(record);
        } catch (error) {
          remove.disabled = false;
          status.textContent = `Not deleted: ${error.message}`;
        }
      },
    },
    "Delete",
  );
  return h(
    "div",
    { class: "result", dataset: { recordId: record.id } },
    facts,
    audio,
    h("div", { class: "actions" }, copy, download, remove),
    status,
  );
}
