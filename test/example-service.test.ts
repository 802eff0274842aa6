/**
 * examples/http-service.ts under load: 200 concurrent requests (16 at a time) mixing
 * calls that return, crash their guest and hang it; every response is checked, and
 * the service answers normally afterwards. Also: bad input, a full pool (503), and a
 * graceful SIGTERM shutdown of the service run as a child process. Loopback only.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { startService, type Service } from "../examples/http-service.js";
import { startServiceProcess } from "../examples/load.js";

interface Reply {
  status: number;
  body: { result?: unknown; error?: { code: string; message: string } } & Record<string, unknown>;
}

function get(url: string, agent?: http.Agent): Promise<Reply> {
  return new Promise((resolve, reject) => {
    http
      .get(url, agent ? { agent } : {}, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("end", () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
          } catch (error) {
            reject(new Error(`not JSON (status ${res.statusCode}): ${text}`, { cause: error }));
          }
        });
      })
      .on("error", reject);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe("example HTTP service, in-process", () => {
  let service: Service;
  before(async () => {
    service = await startService({ port: 0, host: "127.0.0.1", poolSize: 4, timeoutMs: 100, acquireTimeoutMs: 30_000 });
  });
  after(() => service.close());

  test("200 concurrent requests mixing add, echo, crash and hang all get the right answer", async () => {
    assert.match(service.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const total = 200;
    const concurrency = 16;
    const kinds = ["add", "echo", "add", "crash", "echo", "add", "hang", "add", "echo", "crash"] as const;
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    const counts = { add: 0, echo: 0, crash: 0, hang: 0 };
    let next = 0;
    const check = async (i: number): Promise<void> => {
      const kind = kinds[i % kinds.length]!;
      counts[kind]++;
      switch (kind) {
        case "add": {
          const r = await get(`${service.url}/add?a=${i}&b=${-3 * i + 7}`, agent);
          assert.deepEqual(r, { status: 200, body: { result: -2 * i + 7 } }, `request ${i}`);
          break;
        }
        case "echo": {
          const s = `request ${i}: ünïcødé ✓ & = ? ${"x".repeat(i)}`;
          const r = await get(`${service.url}/echo?s=${encodeURIComponent(s)}`, agent);
          assert.deepEqual(r, { status: 200, body: { result: s } }, `request ${i}`);
          break;
        }
        case "crash": {
          const r = await get(`${service.url}/crash`, agent);
          assert.equal(r.status, 500, `request ${i}`);
          assert.equal(r.body.error?.code, "GUEST_FAULT");
          assert.match(r.body.error!.message, /read of 0x0/);
          break;
        }
        case "hang": {
          const start = performance.now();
          const r = await get(`${service.url}/hang`, agent);
          assert.equal(r.status, 504, `request ${i}`);
          assert.equal(r.body.error?.code, "TIMEOUT");
          assert.ok(performance.now() - start >= 95, "a hang answers after the pool's timeoutMs");
          break;
        }
      }
    };
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) await check(next++);
      }),
    );
    agent.destroy();
    assert.equal(counts.add + counts.echo + counts.crash + counts.hang, total);
    assert.deepEqual(counts, { add: 80, echo: 60, crash: 40, hang: 20 });

    // Still up, and every sandbox went back to the pool clean.
    assert.deepEqual(await get(`${service.url}/add?a=40&b=2`), { status: 200, body: { result: 42 } });
    let stats = (await get(`${service.url}/stats`)).body;
    for (let i = 0; i < 100 && ((stats.restoring as number) > 0 || (stats.busy as number) > 0); i++) {
      await sleep(5);
      stats = (await get(`${service.url}/stats`)).body;
    }
    assert.equal(stats.busy, 0);
    assert.equal(stats.waiting, 0);
    assert.equal(stats.restoring, 0);
    assert.equal(stats.poisonedRecycled, counts.crash + counts.hang, "every crashed or hung sandbox was restored");
    assert.equal(stats.recycled, 0, "no restore failed");
    assert.ok((stats.created as number) <= 4, `at most pool-size sandboxes created (${String(stats.created)})`);
    assert.equal(stats.restored, total + 1);
  });

  test("bad input is 400, unknown routes 404, other methods 405", async () => {
    assert.equal((await get(`${service.url}/add?a=1`)).status, 400);
    assert.equal((await get(`${service.url}/add?a=1&b=2.5`)).status, 400);
    assert.equal((await get(`${service.url}/add?a=1&b=${2 ** 31}`)).status, 400);
    assert.equal((await get(`${service.url}/echo`)).status, 400);
    const nul = await get(`${service.url}/echo?s=a%00b`);
    assert.equal(nul.status, 400);
    assert.equal(nul.body.error?.code, "ARGUMENT_MISMATCH");
    const big = await get(`${service.url}/echo?s=${"y".repeat(70_000)}`);
    assert.equal(big.status, 413);
    assert.equal(big.body.error?.code, "BUFFER_TOO_SMALL");
    assert.equal((await get(`${service.url}/nope`)).status, 404);
    const post = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${service.url}/add?a=1&b=2`, { method: "POST" }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
    assert.equal(post, 405);
    assert.deepEqual(await get(`${service.url}/add?a=1&b=2`), { status: 200, body: { result: 3 } });
  });
});

describe("example HTTP service, limits and shutdown", () => {
  test("when every sandbox is busy past acquireTimeoutMs, a request gets 503 POOL_TIMEOUT", async () => {
    const service = await startService({ port: 0, host: "127.0.0.1", poolSize: 1, timeoutMs: 300, acquireTimeoutMs: 20 });
    try {
      const hang = get(`${service.url}/hang`);
      await sleep(30);
      const busy = await get(`${service.url}/add?a=1&b=1`);
      assert.equal(busy.status, 503);
      assert.equal(busy.body.error?.code, "POOL_TIMEOUT");
      assert.equal((await hang).status, 504);
      assert.deepEqual(await get(`${service.url}/add?a=1&b=1`), { status: 200, body: { result: 2 } });
    } finally {
      await service.close();
    }
  });

  test("run as a process: prints its URL, serves, and on SIGTERM finishes the request in flight and exits 0", async () => {
    const { url, child } = await startServiceProcess({ TIMEOUT_MS: "300" });
    let stdout = "";
    child.stdout!.on("data", (chunk: string) => (stdout += chunk));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.deepEqual(await get(`${url}/add?a=2&b=3`), { status: 200, body: { result: 5 } });
      const inFlight = get(`${url}/hang`);
      // SIGTERM once the service is running the request (a new connection asks).
      for (let i = 0; i < 200 && (await get(`${url}/stats`)).body.busy !== 1; i++) await sleep(1);
      child.kill("SIGTERM");
      const reply = await inFlight;
      assert.equal(reply.status, 504, "the request in flight still gets its answer");
      assert.equal(await exited, 0);
      assert.match(stdout, /SIGTERM: closing the server and the pool/);
      assert.match(stdout, /closed; pool stats: .*"busy":0/);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  });
});
