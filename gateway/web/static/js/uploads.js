// One row per file: tus upload progress, then the job's conversion progress, then the result
// (or the problem, in words, next to the file).

import { Problem } from "./api.js";
import { formatBytes, formatPercent } from "./format.js";
import { watchJob } from "./jobs.js";
import { TusUpload, fingerprint, jobUrlOf } from "./tus.js";
import { h, recordView, uid } from "./ui.js";
import { describe } from "./words.js";

function meter(labelText, accessibleName) {
  const id = uid("meter");
  const progress = h("progress", { id, max: "100", value: "0", "aria-label": accessibleName });
  const percent = h("span", { class: "percent", "aria-hidden": "true" }, "0 %");
  const element = h("div", { class: "meter" }, h("label", { for: id }, labelText), progress, percent);
  return {
    element,
    set(fraction) {
      const value = Math.floor(Math.max(0, Math.min(1, fraction)) * 100);
      progress.setAttribute("value", String(value));
      percent.textContent = formatPercent(fraction);
    },
  };
}

export class UploadItem {
  /**
   * ``entry``: what the store remembers (name, size, url) when the row comes back after a
   * reload without its file; ``file``: the picked file. ``metadata``: extra tus metadata
   * (title, bitrate, … of API.md §9) beside ``user`` and ``filename``.
   */
  constructor({ session, limits, store, key, file = null, entry = null, metadata = {}, onRecord, onDelete }) {
    this.session = session;
    this.limits = limits;
    this.store = store;
    this.key = key || fingerprint(file);
    this.file = file;
    this.name = file?.name || entry?.name || "recording.wav";
    this.size = file?.size ?? entry?.size ?? 0;
    this.metadata = metadata;
    this.onRecord = onRecord;
    this.onDelete = onDelete;
    this.tus = null;
    this.countdown = null;
    this.build();
  }

  build() {
    const nameId = uid("file");
    this.upload = meter("Upload", `Upload of ${this.name}`);
    this.conversion = meter("Conversion", `Conversion of ${this.name}`);
    this.conversion.element.hidden = true;
    this.status = h("p", { class: "status", role: "status" });
    this.error = h("p", { class: "error", role: "alert", hidden: true });
    this.pauseButton = this.button("Pause", () => this.pause(), "secondary pause");
    this.resumeButton = this.button("Resume", () => this.resume(), "resume");
    this.chooseButton = this.button("Choose the file again", () => this.choose(), "choose");
    this.cancelButton = this.button("Cancel", () => this.cancel(), "secondary cancel");
    this.dismissButton = this.button("Dismiss", () => this.element.remove(), "secondary dismiss");
    this.actions = h(
      "div",
      { class: "actions" },
      this.pauseButton,
      this.resumeButton,
      this.chooseButton,
      this.cancelButton,
      this.dismissButton,
    );
    this.picker = h("input", { type: "file", hidden: true, accept: ".wav,.wave,audio/wav,audio/x-wav" });
    this.picker.addEventListener("change", () => {
      const [file] = this.picker.files;
      this.picker.value = "";
      if (file) this.attach(file);
    });
    this.result = h("div", { class: "result-slot" });
    this.element = h(
      "li",
      { class: "row upload", "aria-labelledby": nameId, dataset: { state: "new" } },
      h(
        "div",
        { class: "row-head" },
        h("p", { class: "row-name", id: nameId }, this.name),
        h("p", { class: "row-meta" }, formatBytes(this.size)),
      ),
      this.status,
      this.upload.element,
      this.conversion.element,
      this.error,
      this.actions,
      this.picker,
      this.result,
    );
  }

  button(text, onclick, className) {
    return h("button", { type: "button", class: className, onclick, "aria-label": `${text}: ${this.name}` }, text);
  }

  /** The row's state (``data-state``, for styles and tests) and which buttons it offers. */
  setState(state, words) {
    this.element.dataset.state = state;
    if (words !== undefined) this.status.textContent = words;
    const show = {
      uploading: ["pause", "cancel"],
      retrying: ["pause", "cancel"],
      paused: ["resume", "cancel"],
      stalled: ["choose", "cancel"],
      converting: [],
      failed: ["dismiss"],
      retryable: ["resume", "cancel"],
      done: [],
    }[state] || [];
    this.pauseButton.hidden = !show.includes("pause");
    this.resumeButton.hidden = !show.includes("resume");
    this.chooseButton.hidden = !show.includes("choose");
    this.cancelButton.hidden = !show.includes("cancel");
    this.dismissButton.hidden = !show.includes("dismiss");
    this.resumeButton.textContent = state === "retryable" ? "Try again" : "Resume";
  }

  showError(error) {
    this.stopCountdown();
    if (!error) {
      this.error.hidden = true;
      this.error.textContent = "";
      return;
    }
    this.error.hidden = false;
    this.error.textContent = describe(error, this.limits);
    if (error instanceof Problem) this.error.dataset.status = String(error.status);
  }

  /** A row for an upload left unfinished by an earlier visit: HEAD says where it is. */
  async restore(entry) {
    this.setState("stalled", "Checking the unfinished upload…");
    const tus = new TusUpload({ file: { name: this.name, size: this.size, lastModified: 0 }, token: this.session.token, store: this.store, metadata: {} });
    tus.key = this.key;
    tus.url = entry.url;
    try {
      await tus.head();
    } catch (error) {
      this.setState("stalled", `Unfinished upload at ${entry.url}`);
      this.showError(error);
      return;
    }
    if (!tus.url) {
      this.element.remove(); // expired or gone
      return;
    }
    this.upload.set(tus.offset / Math.max(1, this.size));
    if (tus.offset >= this.size) {
      await this.convert(jobUrlOf(entry.url));
      return;
    }
    this.setState(
      "stalled",
      `Paused at ${formatPercent(tus.offset / Math.max(1, this.size))}. Choose the same file again to resume.`,
    );
  }

  choose() {
    this.picker.click();
  }

  /** The file for a stalled row (picked again, or dropped): it resumes where it stopped. */
  attach(file) {
    if (fingerprint(file) !== this.key) {
      this.showError(new Error(`${file.name} is not the file this upload was made from.`));
      return;
    }
    this.file = file;
    this.start();
  }

  start() {
    this.showError(null);
    if (this.file.size < 12) {
      // Too short to hold a WAV header; the server would answer 415 for it.
      this.showError(new Problem(415, { type: "https://riffle.dev/problems/not-a-wav", status: 415 }));
      this.setState("failed", "Not uploaded.");
      return;
    }
    this.tus ||= new TusUpload({
      file: this.file,
      token: this.session.token,
      store: this.store,
      metadata: { user: this.session.userId, filename: this.file.name, ...this.metadata },
      onProgress: (sent, total) => {
        this.upload.set(total ? sent / total : 1);
        if (this.element.dataset.state === "retrying") {
          this.showError(null);
          this.setState("uploading", "Uploading…");
        }
      },
      onRetry: (error, seconds) => this.waitToRetry(error, seconds),
    });
    this.run();
  }

  async run() {
    this.setState("uploading", "Uploading…");
    let sent;
    try {
      sent = await this.tus.start();
    } catch (error) {
      this.showError(error);
      if (error.transient) {
        this.setState("retryable", "Upload stopped.");
      } else {
        // The server turned it down for good (not a WAV, too large, wrong token …).
        this.store.remove(this.key);
        this.setState("failed", "Not uploaded.");
      }
      return;
    }
    if (this.tus.resumedFrom !== null) this.element.dataset.resumedFrom = String(this.tus.resumedFrom);
    if (!sent) return; // paused
    this.showError(null);
    this.upload.set(1);
    await this.convert(sent.jobUrl);
  }

  waitToRetry(error, seconds) {
    this.setState("retrying", "Waiting to try again…");
    this.showError(error);
    const base = this.error.textContent;
    let left = Math.ceil(seconds);
    const tick = () => {
      if (navigator.onLine === false) this.error.textContent = base;
      else this.error.textContent = left > 0 ? `${base} Trying again in ${left} s.` : `${base} Trying again now.`;
      left -= 1;
    };
    tick();
    this.countdown = setInterval(tick, 1000);
  }

  stopCountdown() {
    if (this.countdown) clearInterval(this.countdown);
    this.countdown = null;
  }

  pause() {
    this.tus?.pause();
    this.stopCountdown();
    this.showError(null);
    this.setState("paused", "Paused. Resume goes on from where it stopped.");
  }

  resume() {
    if (!this.file) {
      this.choose();
      return;
    }
    this.start();
  }

  async cancel() {
    this.stopCountdown();
    if (this.tus) await this.tus.cancel();
    else {
      const url = this.store.get(this.key)?.url;
      if (url) {
        await fetch(url, {
          method: "DELETE",
          headers: { "Tus-Resumable": "1.0.0", Authorization: `Bearer ${this.session.token}` },
        }).catch(() => {});
      }
      this.store.remove(this.key);
    }
    this.element.remove();
  }

  async convert(jobUrl) {
    this.conversion.element.hidden = false;
    this.setState("converting", "Uploaded. Waiting for the converter…");
    try {
      const record = await watchJob(this.session, jobUrl, {
        onProgress: (fraction) => {
          this.conversion.set(fraction);
          if (fraction > 0) this.status.textContent = "Converting to MP3…";
        },
      });
      this.store.remove(this.key);
      this.conversion.set(1);
      this.setState("done", "Converted.");
      this.result.replaceChildren(recordView(record, { name: this.name, onDelete: this.onDelete }));
      this.onRecord?.(record, this);
    } catch (error) {
      this.store.remove(this.key);
      this.showError(error);
      this.setState("failed", "Not converted.");
    }
  }

}
