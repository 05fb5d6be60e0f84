// startWecomMock(): the WeCom emulator for Node tests. No npm packages (Node 18+: fetch).
//
//   import { startWecomMock } from "./wecom_mock.mjs";
//   const mock = await startWecomMock();            // or startWecomMock({ args: ["--strict-ids"] })
//   process.env.WECOM_BASE_URL = mock.baseUrl;      // point the client under test at it
//   await mock.fault("media/get", { errcode: 42001 });
//   ...
//   await mock.reset();                             // between tests
//   await mock.stop();                              // after all
//
// The binary: $WECOM_MOCK_BIN, else `wecom-material-mock` on PATH. Get it with
// `pip install` of the wheel that scripts/python-package builds (it lands in the venv's bin/),
// or `cargo install --path crates/wecom-material-mock --features cli`.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

/** The emulator's admin API answered an error, or it did not start. */
export class WecomMockError extends Error {}

/**
 * Starts the emulator and resolves, once it listens, to an object with `baseUrl`, `corpId`,
 * `secret`, `apps`, `pid` and the admin API as methods.
 * @param {{ bin?: string, args?: string[], timeoutMs?: number }} [options]
 */
export function startWecomMock(options = {}) {
  const bin = options.bin ?? process.env.WECOM_MOCK_BIN ?? "wecom-material-mock";
  const args = ["--json", ...(options.args ?? [])];
  const timeoutMs = options.timeoutMs ?? 30_000;
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    const fail = (message) => {
      clearTimeout(timer);
      child.kill();
      reject(new WecomMockError(message));
    };
    const timer = setTimeout(() => fail(`${bin} printed no JSON line within ${timeoutMs} ms`), timeoutMs);
    child.once("error", (e) => fail(`could not run ${bin}: ${e.message} (set WECOM_MOCK_BIN)`));
    child.once("exit", (code) => fail(`${bin} exited (status ${code}) before printing its JSON line`));
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (line) => {
      clearTimeout(timer);
      child.removeAllListeners("exit");
      child.removeAllListeners("error");
      lines.close();
      child.stdout.resume(); // nothing more comes; never let the pipe fill
      let info;
      try {
        info = JSON.parse(line);
      } catch {
        child.kill();
        reject(new WecomMockError(`not the --json line: ${line}`));
        return;
      }
      resolve(new WecomMock(info, child));
    });
  });
}

/** A running emulator (see startWecomMock). */
export class WecomMock {
  constructor(info, child) {
    this.info = info;
    this.baseUrl = info.base_url;
    this.corpId = info.corp_id;
    this.secret = info.secret;
    this.apps = info.apps ?? [];
    this.pid = info.pid;
    this.child = child;
  }

  /** One admin call (path after /__mock/); the JSON answer, or a WecomMockError. */
  async admin(method, path, { json, body, params } = {}) {
    const url = new URL(`${this.baseUrl}/__mock/${path}`);
    for (const [k, v] of Object.entries(params ?? {})) url.searchParams.set(k, String(v));
    const init = { method };
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers = { "content-type": "application/json" };
    } else if (body !== undefined) {
      init.body = body;
    }
    const r = await fetch(url, init);
    const answer = await r.json();
    if (r.status !== 200) {
      throw new WecomMockError(`${method} /__mock/${path}: HTTP ${r.status}: ${answer.error}`);
    }
    return answer;
  }

  /**
   * Queues a fault for the next `times` requests (default 1; null = until reset) of an
   * endpoint ("media/get", "media/upload", "gettoken", …): one of errcode (with
   * contentType), status (with body), delayMs, dropAfterBytes.
   */
  fault(endpoint, { errcode, status, body, contentType, delayMs, dropAfterBytes, times = 1 } = {}) {
    const fault = { endpoint };
    const put = (k, v) => { if (v !== undefined && v !== null) fault[k] = v; };
    put("errcode", errcode);
    put("status", status);
    put("body", body);
    put("content_type", contentType);
    put("delay_ms", delayMs);
    put("drop_after_bytes", dropAfterBytes);
    put("times", times);
    return this.admin("POST", "faults", { json: fault });
  }

  /** Every token issued so far answers 42001; how many were live. */
  async revokeTokens() { return (await this.admin("POST", "tokens/revoke")).revoked; }

  /** Moves the clock forward (259200 s = 3 days: media expire); the new time. */
  async advance(seconds) { return (await this.admin("POST", "clock", { json: { advance_secs: seconds } })).now; }

  /** Stores bytes (Buffer/Uint8Array/string) as a media; its media id. */
  async addMedia(data, filename, contentType) {
    const params = { filename };
    if (contentType) params.content_type = contentType;
    return (await this.admin("POST", "media", { body: data, params })).media_id;
  }

  /** Removes a media (later gets answer 40007). */
  deleteMedia(mediaId) { return this.admin("DELETE", `media/${encodeURIComponent(mediaId)}`); }

  /** Serves bytes at a loopback URL with Range (for media/upload_by_url); the URL. */
  async serveFile(data, name) { return (await this.admin("POST", "files", { body: data, params: { name } })).url; }

  /** The request log, oldest first (token and secret masked). */
  requests() { return this.admin("GET", "requests"); }

  /** Requests per endpoint, eviction counters and what the store holds. */
  stats() { return this.admin("GET", "stats"); }

  /** The settings; with an object, changes those first. */
  settings(changes) {
    return changes ? this.admin("POST", "settings", { json: changes }) : this.admin("GET", "settings");
  }

  /** Back to the start state: media, tokens, clock, quota, faults, log, settings. */
  reset() { return this.admin("POST", "reset"); }

  /** Stops the emulator process. */
  stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once("exit", () => resolve());
      this.child.kill("SIGTERM");
    });
  }
}
