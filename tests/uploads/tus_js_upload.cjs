// Uploads a file with tus-js-client under Node, as a browser app would; prints one JSON line.
// node tus_js_upload.cjs <endpoint> <file> <user id> <token> <chunk size>
const fs = require("fs");
const tus = require("tus-js-client");
const { version } = require("tus-js-client/package.json");

const [endpoint, path, user, token, chunkSize] = process.argv.slice(2);
const retries = [];
const upload = new tus.Upload(fs.readFileSync(path), {
  endpoint,
  chunkSize: Number(chunkSize),
  retryDelays: [0, 100, 250, 500, 1000, 2000],
  metadata: { user, filename: "take.wav" },
  headers: { Authorization: `Bearer ${token}` },
  // The stock rule (network errors, 409, 423, 5xx), recording each retry for the test.
  onShouldRetry(error) {
    const status = error.originalResponse ? error.originalResponse.getStatus() : 0;
    retries.push(status || String(error.message || error).split("\n")[0]);
    return status === 0 || status === 409 || status === 423 || status >= 500;
  },
  onError(error) {
    console.log(JSON.stringify({ version, error: String(error), retries }));
    process.exitCode = 1;
  },
  onSuccess({ lastResponse }) {
    const link = lastResponse.getHeader("Link");
    console.log(JSON.stringify({ version, url: upload.url, link, retries }));
  },
});
upload.start();
