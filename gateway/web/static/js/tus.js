// A small tus 1.0.0 client (core + creation + termination), resumable across reloads: the
// upload URL is kept under the file's fingerprint, and HEAD says where to go on from.

import { NetworkError, Problem, problemOf } from "./api.js";

const TUS_VERSION = "1.0.0";
const CHUNK_BYTES = 8 * 1024 * 1024;
// Waits between tries after a lost connection or a busy server, unless Retry-After says.
const RETRY_SECONDS = [1, 2, 4, 8, 15, 30];
const MAX_TRIES = 20;

/** A file's identity for resuming: the same file picked again after a reload matches. */
export function fingerprint(file) {
  return `${file.name}\u0000${file.size}\u0000${file.lastModified}`;
}

function base64(text) {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** ``Upload-Metadata``: ``key base64(value)`` pairs; empty values are left out. */
export function encodeMetadata(metadata) {
  return Object.entries(metadata)
    .filter(([, value]) => value !== undefined && value !== null && value !== "")
    .map(([key, value]) => `${key} ${base64(String(value))}`)
    .join(",");
}

/** The job that converts an upload: ``/jobs/<upload id>`` (its id is the upload's). */
export function jobUrlOf(uploadUrl) {
  const id = new URL(uploadUrl, location.href).pathname.split("/").filter(Boolean).pop();
  return `/jobs/${id}`;
}

class Paused extends Error {}

/**
 * One file's upload. ``onProgress(sent, total)``, ``onRetry(error, seconds)`` while waiting to
 * try again. ``start()`` resolves with ``{uploadUrl, jobUrl}`` once the last byte is in, or with
 * null when paused; it rejects with a Problem the upload cannot get past.
 */
export class TusUpload {
  constructor({ file, token, metadata, store, endpoint = "/uploads/", onProgress, onRetry }) {
    this.file = file;
    this.token = token;
    this.metadata = metadata;
    this.store = store;
    this.endpoint = endpoint;
    this.onProgress = onProgress || (() => {});
    this.onRetry = onRetry || (() => {});
    this.key = fingerprint(file);
    this.url = store.get(this.key)?.url || null;
    this.offset = null;
    this.paused = false;
    this.xhr = null;
    this.wake = null;
    this.resumedFrom = null;
  }

  headers(extra = {}) {
    return { "Tus-Resumable": TUS_VERSION, Authorization: `Bearer ${this.token}`, ...extra };
  }

  async start() {
    this.paused = false;
    let tries = 0;
    for (;;) {
      try {
        return await this.send();
      } catch (error) {
        if (error instanceof Paused || this.paused) return null;
        if (error instanceof Problem && error.status === 409) {
          this.offset = null; // someone else's view of the offset was newer: ask again
          continue;
        }
        if (!error.transient || ++tries > MAX_TRIES) throw error;
        const wait = error.retryAfter ?? RETRY_SECONDS[Math.min(tries, RETRY_SECONDS.length) - 1];
        this.onRetry(error, wait);
        await this.sleep(wait, error instanceof NetworkError);
        if (this.paused) return null;
        this.offset = null; // the cut request may have been partly kept: HEAD says how much
      }
    }
  }

  /** Stop sending; ``start()`` again goes on from the server's offset. */
  pause() {
    this.paused = true;
    this.xhr?.abort();
    this.wake?.();
  }

  /** Give up: the server drops the partial data, the fingerprint is forgotten. */
  async cancel() {
    this.pause();
    if (this.url) {
      await fetch(this.url, { method: "DELETE", headers: this.headers() }).catch(() => {});
    }
    this.store.remove(this.key);
  }

  async send() {
    if (this.url && this.offset === null) await this.head();
    if (!this.url) await this.create();
    let link = null;
    while (this.offset < this.file.size) {
      if (this.paused) throw new Paused();
      link = (await this.patch()) || link;
    }
    return { uploadUrl: this.url, jobUrl: link || jobUrlOf(this.url) };
  }

  async head() {
    const response = await this.fetch(this.url, { method: "HEAD", headers: this.headers() });
    if ([403, 404, 410].includes(response.status)) {
      // Expired, removed or never ours: start over.
      this.store.remove(this.key);
      this.url = null;
      return;
    }
    if (!response.ok) throw new Problem(response.status, null, response.headers);
    this.offset = Number(response.headers.get("Upload-Offset"));
    if (this.resumedFrom === null) this.resumedFrom = this.offset;
    this.onProgress(this.offset, this.file.size);
  }

  async create() {
    const response = await this.fetch(this.endpoint, {
      method: "POST",
      headers: this.headers({
        "Upload-Length": String(this.file.size),
        "Upload-Metadata": encodeMetadata(this.metadata),
      }),
    });
    if (response.status !== 201) throw await problemOf(response);
    this.url = new URL(response.headers.get("Location"), location.href).href;
    this.offset = 0;
    this.store.put(this.key, {
      url: this.url,
      name: this.file.name,
      size: this.file.size,
      createdAt: new Date().toISOString(),
    });
    this.onProgress(0, this.file.size);
  }

  /** One chunk by XMLHttpRequest (fetch reports no upload progress); returns the monitor link. */
  patch() {
    const start = this.offset;
    const end = Math.min(this.file.size, start + CHUNK_BYTES);
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      this.xhr = xhr;
      xhr.open("PATCH", this.url);
      const headers = this.headers({
        "Upload-Offset": String(start),
        "Content-Type": "application/offset+octet-stream",
      });
      for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
      xhr.upload.onprogress = (event) => this.onProgress(start + event.loaded, this.file.size);
      xhr.onload = () => {
        this.xhr = null;
        if (xhr.status === 204) {
          this.offset = Number(xhr.getResponseHeader("Upload-Offset"));
          this.onProgress(this.offset, this.file.size);
          resolve(monitorLink(xhr.getResponseHeader("Link")));
          return;
        }
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          body = { title: xhr.statusText };
        }
        reject(new Problem(xhr.status, body, { get: (name) => xhr.getResponseHeader(name) }));
      };
      xhr.onerror = () => {
        this.xhr = null;
        reject(new NetworkError());
      };
      xhr.onabort = () => {
        this.xhr = null;
        reject(new Paused());
      };
      xhr.send(this.file.slice(start, end));
    });
  }

  async fetch(url, init) {
    try {
      return await fetch(url, { ...init, cache: "no-store" });
    } catch {
      throw new NetworkError();
    }
  }

  /** Wait ``seconds``; offline, wait for the connection instead. ``pause()`` wakes it early. */
  sleep(seconds, untilOnline) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        window.removeEventListener("online", done);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, untilOnline && !navigator.onLine ? 3_600_000 : seconds * 1000);
      window.addEventListener("online", done);
      this.wake = done;
    });
  }
}

/** ``<…/jobs/<id>>; rel="monitor"`` → the URL, else null. */
export function monitorLink(header) {
  if (!header) return null;
  for (const part of header.split(",")) {
    const match = /<([^>]*)>\s*;\s*rel="?monitor"?/i.exec(part);
    if (match) return match[1];
  }
  return null;
}

/** Upload URLs by fingerprint, per user, in localStorage (so a reload can resume). */
export class UploadStore {
  constructor(userId) {
    this.key = `riffle.uploads.${userId}`;
  }

  all() {
    try {
      return JSON.parse(localStorage.getItem(this.key) || "{}");
    } catch {
      return {};
    }
  }

  get(fingerprintKey) {
    return this.all()[fingerprintKey] || null;
  }

  put(fingerprintKey, entry) {
    const entries = this.all();
    entries[fingerprintKey] = { ...entries[fingerprintKey], ...entry };
    localStorage.setItem(this.key, JSON.stringify(entries));
  }

  remove(fingerprintKey) {
    const entries = this.all();
    delete entries[fingerprintKey];
    if (Object.keys(entries).length) localStorage.setItem(this.key, JSON.stringify(entries));
    else localStorage.removeItem(this.key);
  }

  clear() {
    localStorage.removeItem(this.key);
  }
}
