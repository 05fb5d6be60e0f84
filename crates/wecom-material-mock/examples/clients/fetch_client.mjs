// Testing a Node client (plain fetch, no npm packages; Node 18+) against `wecom-material mock`.
//
//   wecom-material mock &            # prints the base URL, then export lines
//   export WECOM_BASE_URL=... WECOM_CORP_ID=... WECOM_SECRET=...
//   node fetch_client.mjs
//
// The client part (token cache, one refresh on 40014/42001, retries of -1 with backoff) is the
// kind of code under test; the admin API ($WECOM_BASE_URL/__mock/..., JSON, no token) injects
// the faults and shows what was sent. Exit status 0 when every check passed.

import assert from "node:assert/strict";

const BASE = process.env.WECOM_BASE_URL.replace(/\/$/, "");
const CORP_ID = process.env.WECOM_CORP_ID;
const SECRET = process.env.WECOM_SECRET;

async function admin(method, path, { json, query, body } = {}) {
  const url = new URL(`${BASE}/__mock/${path}`);
  for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
  const r = await fetch(url, {
    method,
    headers: json ? { "content-type": "application/json" } : {},
    body: json ? JSON.stringify(json) : body,
  });
  const answer = await r.json();
  assert.equal(r.status, 200, `${method} ${path}: ${JSON.stringify(answer)}`);
  return answer;
}

// ---- a minimal WeCom client ----
let token = null;
async function getToken() {
  if (!token) {
    const url = new URL(`${BASE}/cgi-bin/gettoken`);
    url.searchParams.set("corpid", CORP_ID);
    url.searchParams.set("corpsecret", SECRET);
    const j = await (await fetch(url)).json();
    assert.equal(j.errcode, 0, JSON.stringify(j));
    token = j.access_token;
  }
  return token;
}

// One business call: refresh once on 40014/42001, retry -1 up to 3 times with backoff.
async function call(method, path, query, makeBody) {
  let refreshed = false;
  for (let attempt = 0; ; attempt++) {
    const url = new URL(`${BASE}/cgi-bin/${path}`);
    url.searchParams.set("access_token", await getToken());
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v); // percent-encodes
    const r = await fetch(url, { method, body: makeBody?.() });
    // A file carries Content-Disposition; an error is a JSON object (whatever its
    // Content-Type says: servers and proxies relabel bodies).
    if (r.headers.has("content-disposition")) {
      return { file: Buffer.from(await r.arrayBuffer()), status: r.status };
    }
    const j = JSON.parse(await r.text());
    if ((j.errcode === 40014 || j.errcode === 42001) && !refreshed) {
      refreshed = true;
      token = null;
      continue;
    }
    if (j.errcode === -1 && attempt < 3) {
      await new Promise((done) => setTimeout(done, 50 * 2 ** attempt));
      continue;
    }
    return j;
  }
}

function uploadForm(name, bytes) {
  const form = new FormData();
  form.append("media", new Blob([bytes]), name);
  return form;
}

// ---- the checks ----
await admin("DELETE", "faults");
await admin("DELETE", "requests");

// Two -1 answers on the upload: the client retries and succeeds on the third attempt.
await admin("POST", "faults", { json: { endpoint: "media/upload", errcode: -1, times: 2 } });
const up = await call("POST", "media/upload", { type: "file" }, () =>
  uploadForm("hello.txt", Buffer.from("hello from node")),
);
assert.equal(up.errcode, 0, JSON.stringify(up));
assert.equal(up.errmsg, "");

// A 42001 on the download: one refresh, then the file.
await admin("POST", "faults", { json: { endpoint: "media/get", errcode: 42001, times: 1 } });
const got = await call("GET", "media/get", { media_id: up.media_id });
assert.equal(got.file.toString(), "hello from node");

// A media over 20 MB added through the admin API: 830002 without Range, 206 with one.
const big = Buffer.alloc(20_000_001, 7);
const added = await admin("POST", "media", {
  query: { filename: "big.bin", content_type: "application/octet-stream" },
  body: big,
});
const whole = await call("GET", "media/get", { media_id: added.media_id });
assert.equal(whole.errcode, 830002);
const url = new URL(`${BASE}/cgi-bin/media/get`);
url.searchParams.set("access_token", await getToken());
url.searchParams.set("media_id", added.media_id);
const part = await fetch(url, { headers: { range: "bytes=19999991-" } });
assert.equal(part.status, 206);
assert.equal(part.headers.get("content-range"), "bytes 19999991-20000000/20000001");
assert.equal((await part.arrayBuffer()).byteLength, 10);

// The request log: methods, paths, errcodes, Range; never the token or the secret.
const log = await admin("GET", "requests");
assert.ok(!JSON.stringify(log).includes(token) && !JSON.stringify(log).includes(SECRET));
assert.deepEqual(
  log.filter((e) => e.path === "/cgi-bin/media/upload").map((e) => e.errcode),
  [-1, -1, 0],
);
assert.deepEqual(
  log.filter((e) => e.path === "/cgi-bin/media/get").map((e) => [e.errcode, e.range]),
  [[42001, null], [null, null], [830002, null], [null, "bytes=19999991-"]],
);
const stats = await admin("GET", "stats");
assert.equal(stats["media/get"], 4);
console.log("fetch client against the emulator: all checks passed");
