// The person's recordings, newest first, a page at a time (GET /users/<id>/records).

import { listRecords } from "./api.js";
import { formatTime } from "./format.js";
import { h, recordView, uid } from "./ui.js";
import { describe } from "./words.js";

const PAGE_SIZE = 10;

export class RecordList {
  constructor({ session, list, more, status, onDelete }) {
    this.session = session;
    this.list = list;
    this.more = more;
    this.status = status;
    this.onDelete = onDelete;
    this.cursor = null;
    this.shown = new Set();
    this.more.onclick = () => this.load();
  }

  /** The first page again (``reset``) or the next one. */
  async load({ reset = false } = {}) {
    if (reset) {
      this.cursor = null;
      this.shown.clear();
      this.list.replaceChildren();
    }
    this.status.textContent = "Loading your recordings…";
    this.more.disabled = true;
    try {
      const page = await listRecords(this.session, { limit: PAGE_SIZE, cursor: this.cursor });
      for (const record of page.items) this.append(record);
      this.cursor = page.next_cursor;
      this.more.hidden = !this.cursor;
      this.status.textContent = this.shown.size ? "" : "No recordings yet: drop a WAV file above.";
    } catch (error) {
      this.status.textContent = `Your recordings could not be loaded. ${describe(error)}`;
    } finally {
      this.more.disabled = false;
    }
  }

  row(record) {
    const nameId = uid("record");
    return h(
      "li",
      { class: "row record", "aria-labelledby": nameId, dataset: { recordId: record.id } },
      h(
        "div",
        { class: "row-head" },
        h("p", { class: "row-name", id: nameId }, record.original_filename || record.id),
        record.created_at ? h("p", { class: "row-meta" }, formatTime(record.created_at)) : null,
      ),
      recordView(record, { name: record.original_filename, onDelete: this.onDelete }),
    );
  }

  append(record) {
    if (this.shown.has(record.id)) return;
    this.shown.add(record.id);
    this.list.append(this.row(record));
  }

  /** A record just converted, on top (it is the newest). */
  prepend(record, name) {
    if (this.shown.has(record.id)) return;
    this.shown.add(record.id);
    this.list.prepend(this.row({ original_filename: name, created_at: new Date().toISOString(), ...record }));
    this.status.textContent = "";
  }

  remove(recordId) {
    this.shown.delete(recordId);
    if (!this.shown.size) this.status.textContent = "No recordings yet: drop a WAV file above.";
  }
}
