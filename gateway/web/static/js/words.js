// Problems in words a person can act on, next to the file they concern.
import { NetworkError, Problem } from "./api.js";
import { formatBytes } from "./format.js";

const BY_SLUG = {
  "not-a-wav": () => "This is not a WAV file. riffle converts WAV (RIFF/WAVE or RF64) recordings only.",
  "upload-too-large": (p, limits) =>
    limits?.maxBytes
      ? `This file is too large: the limit is ${formatBytes(limits.maxBytes)}.`
      : "This file is larger than the server accepts.",
  "quota-exceeded": () => "Your storage is full: delete some recordings to make room for this one.",
  "audio-too-long": (p) => `This recording is too long. ${p.detail}`,
  "undecodable-audio": (p) =>
    `The audio in this WAV file cannot be converted: it is corrupt, truncated or empty. ${p.detail}`,
  "invalid-credentials": () =>
    "Your user id and token were not accepted. Sign out, then sign in with the token you saved.",
  "transcode-timeout": () => "The conversion took too long and was stopped; nothing was stored.",
  "upload-expired": () => "This unfinished upload expired on the server; start it again.",
  "upload-not-found": () => "The server no longer has this unfinished upload; start it again.",
  "insufficient-storage": () => "The server is out of disk space; try again later.",
  "upload-timeout": () => "The upload took too long to arrive; try again on a faster connection.",
};

/** What went wrong, in words; ``retryIn`` (seconds) when riffle said when to try again. */
export function describe(error, limits) {
  if (error instanceof NetworkError) {
    return navigator.onLine === false
      ? "You are offline. The upload goes on by itself when the connection is back."
      : "The connection to riffle was lost. Trying again…";
  }
  if (!(error instanceof Problem)) return `Something went wrong: ${error?.message || error}`;
  const words = BY_SLUG[error.slug];
  if (words) return words(error, limits).trim();
  if (error.status === 429) {
    return "You have as many uploads in progress as riffle allows at once; this one waits its turn.";
  }
  if (error.status === 503) return "riffle is busy or a part of it is down.";
  if (error.status === 401) return BY_SLUG["invalid-credentials"]();
  const title = error.title || `Error ${error.status}`;
  return error.detail ? `${title}: ${error.detail}` : title;
}
