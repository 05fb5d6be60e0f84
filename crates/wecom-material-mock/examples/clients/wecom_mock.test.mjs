// node --test for the startWecomMock() helper, against the real emulator binary
// ($WECOM_MOCK_BIN or wecom-material-mock on PATH).

import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import { WecomMockError, startWecomMock } from "./wecom_mock.mjs";

let mock;
before(async () => { mock = await startWecomMock(); });
beforeEach(async () => { await mock.reset(); });
after(async () => { await mock.stop(); });

async function token() {
  const r = await fetch(`${mock.baseUrl}/cgi-bin/gettoken?corpid=${mock.corpId}&corpsecret=${mock.secret}`);
  const answer = await r.json();
  assert.equal(answer.errcode, 0);
  return answer.access_token;
}

// The id spliced in unencoded, as many clients do: the default ids allow it.
const getMedia = (t, id, headers) =>
  fetch(`${mock.baseUrl}/cgi-bin/media/get?access_token=${t}&media_id=${id}`, { headers });

test("the emulator is up with its credentials", async () => {
  assert.match(mock.baseUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(mock.corpId, "ww-mock-corp");
  assert.equal(mock.secret, "mock-secret");
  assert.ok(mock.pid > 0);
  const stats = await mock.stats();
  for (const key of ["gettoken", "media/get", "other", "media_bytes", "evicted_budget"]) {
    assert.equal(stats[key], 0, key);
  }
});

test("addMedia, a download, a fault applied once", async () => {
  const t = await token();
  const id = await mock.addMedia(Buffer.from("hello from node"), "a.txt", "text/plain");
  assert.match(id, /^[A-Za-z0-9_-]+$/);
  assert.deepEqual(await mock.fault("media/get", { errcode: -1 }), { endpoint: "media/get", fault: "errcode", times: 1 });
  assert.equal((await (await getMedia(t, id)).json()).errcode, -1);
  assert.equal(await (await getMedia(t, id)).text(), "hello from node");
  const log = await mock.requests();
  assert.deepEqual(log.map((e) => e.errcode), [0, -1, null]);
  assert.ok(!JSON.stringify(log).includes(t), "the token is masked");
});

test("revokeTokens answers 42001 and advance expires media", async () => {
  const t = await token();
  const id = await mock.addMedia(Buffer.from("three days"), "a.txt");
  assert.equal(await mock.revokeTokens(), 1);
  assert.equal((await (await getMedia(t, id)).json()).errcode, 42001);
  await mock.advance(3 * 24 * 3600);
  assert.equal((await (await getMedia(await token(), id)).json()).errcode, 40007);
});

test("reset forgets media and settings", async () => {
  await mock.addMedia(Buffer.from("123456"), "a.bin");
  await mock.settings({ latency_ms: 30 });
  await mock.reset();
  assert.equal((await mock.stats()).media_count, 0);
  assert.equal((await mock.settings()).latency_ms, 0);
});

test("serveFile answers Range requests", async () => {
  const data = Buffer.from([...Array(1000).keys()].map((i) => i % 256));
  const url = await mock.serveFile(data, "clip.mp4");
  const r = await fetch(url, { headers: { range: "bytes=5-9" } });
  assert.equal(r.status, 206);
  assert.deepEqual(Buffer.from(await r.arrayBuffer()), data.subarray(5, 10));
});

test("bad input rejects with the emulator's message", async () => {
  await assert.rejects(mock.addMedia(Buffer.alloc(0), "a.bin"), (e) => e instanceof WecomMockError && /empty/.test(e.message));
  await assert.rejects(mock.deleteMedia("nope"), /HTTP 404/);
});

test("a binary that is not there is a clear error", async () => {
  await assert.rejects(startWecomMock({ bin: "/nonexistent/wecom-material-mock" }), /could not run/);
});
