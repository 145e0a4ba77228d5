// A conversion job's progress: its SSE stream (EventSource, token in the query, as API.md §7
// allows), with GET /jobs/<id> to learn why a stream could not open or ended early.

import { getJob, Problem } from "./api.js";

const RECONNECT_SECONDS = 2;

/**
 * Watch the job at ``jobUrl`` until it ends. ``onProgress(fraction)``; resolves with the record;
 * rejects with the job's problem (a Problem) when the conversion failed.
 */
export function watchJob(session, jobUrl, { onProgress }) {
  return new Promise((resolve, reject) => {
    let source = null;
    let finished = false;

    const finish = (outcome) => {
      finished = true;
      source?.close();
      outcome();
    };

    const settle = (job) => {
      if (job.status === "succeeded") finish(() => resolve(job.record));
      else if (job.status === "failed") finish(() => reject(new Problem(job.error?.status || 422, job.error)));
      else return false;
      return true;
    };

    const open = () => {
      const url = new URL(`${jobUrl}/events`, location.href);
      url.searchParams.set("token", session.token);
      source = new EventSource(url);
      source.addEventListener("progress", (event) => onProgress(JSON.parse(event.data).progress));
      source.addEventListener("succeeded", (event) =>
        finish(() => resolve(JSON.parse(event.data).record)),
      );
      source.addEventListener("failed", (event) => {
        const problem = JSON.parse(event.data).error || {};
        finish(() => reject(new Problem(problem.status || 422, problem)));
      });
      source.onerror = async () => {
        if (finished) return;
        // The stream ended without an outcome, or never opened (401/404, a lost connection):
        // the job's own answer tells which.
        source.close();
        try {
          const job = await getJob(session, jobUrl);
          if (settle(job)) return;
          onProgress(job.progress);
        } catch (error) {
          if (error instanceof Problem && !error.transient) {
            finish(() => reject(error));
            return;
          }
        }
        setTimeout(() => finished || open(), RECONNECT_SECONDS * 1000);
      };
    };
    open();
  });
}
