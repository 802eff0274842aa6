/**
 * A small HTTP service where every request runs a guest function in a clean, pooled
 * sandbox (guests/build/demo.elf). Run it with
 *
 *   node dist/examples/http-service.js          # PORT=8080 to pick a port; 0 (default) = any free port
 *
 * and try:
 *
 *   curl 'http://127.0.0.1:PORT/add?a=1&b=2'   → 200 {"result":3}
 *   curl 'http://127.0.0.1:PORT/echo?s=hello'  → 200 {"result":"hello"}
 *   curl 'http://127.0.0.1:PORT/crash'         → 500 {"error":{"code":"GUEST_FAULT",…}}  (the guest reads address 0)
 *   curl 'http://127.0.0.1:PORT/hang'          → 504 {"error":{"code":"TIMEOUT",…}}      (the guest loops forever)
 *   curl 'http://127.0.0.1:PORT/stats'         → 200 pool.stats()
 *
 * A crashing or hanging guest only fails its own request: its sandbox is restored to
 * the snapshot before the next request gets it. SIGTERM/SIGINT shut down gracefully.
 * Environment: PORT, HOST (default 127.0.0.1), POOL_SIZE (4), TIMEOUT_MS (100),
 * ACQUIRE_TIMEOUT_MS (1000). In your own code, import from "vmlet" instead of ../src.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { SandboxBuilder, SandboxPool, VmletError, type PoolStats } from "../src/index.js";

/** The repository root: this file runs from dist/examples/. */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const demoGuest = path.join(root, "guests/build/demo.elf");

export interface ServiceOptions {
  port?: number;
  host?: string;
  poolSize?: number;
  /** Per-call guest time limit (the pool's timeoutMs): /hang answers 504 after this. */
  timeoutMs?: number;
  /** Longest a request waits for a free sandbox before it gets 503. */
  acquireTimeoutMs?: number;
}

export interface Service {
  readonly url: string;
  readonly server: http.Server;
  readonly pool: SandboxPool;
  /** Stops accepting connections, lets in-flight requests finish, then closes the pool. */
  close(): Promise<void>;
}

/** HTTP status for each error code a request can end with. */
const STATUS: Record<string, number> = {
  ARGUMENT_MISMATCH: 400,
  BUFFER_TOO_SMALL: 413,
  TIMEOUT: 504,
  POOL_TIMEOUT: 503,
  POOL_CLOSED: 503,
};

class BadRequest extends Error {}

function int32(params: URLSearchParams, name: string): number {
  const raw = params.get(name);
  const value = Number(raw);
  if (raw === null || raw.trim() === "" || !Number.isInteger(value) || value < -(2 ** 31) || value > 2 ** 31 - 1) {
    throw new BadRequest(`query parameter "${name}" must be a 32-bit integer`);
  }
  return value;
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(json) });
  res.end(json);
}

export async function startService(options: ServiceOptions = {}): Promise<Service> {
  // Build the demo guest once, snapshot it after start-up, and serve every request from that snapshot.
  const template = await new SandboxBuilder().guest(demoGuest).maxGuestLogLevel("warn").build();
  template.callSync("noop"); // one call, so the snapshot has the guest's call path warm
  const snapshot = template.snapshot();
  template.close();

  const timeoutMs = options.timeoutMs ?? 100;
  const pool = new SandboxPool(snapshot, {
    size: options.poolSize ?? 4,
    timeoutMs,
    acquireTimeoutMs: options.acquireTimeoutMs ?? 1000,
  });

  const routes: Record<string, (params: URLSearchParams) => Promise<unknown>> = {
    // call() runs the guest on the sandbox's own thread: the event loop keeps serving other requests.
    "/add": (p) => {
      const a = int32(p, "a");
      const b = int32(p, "b");
      return pool.run((sb) => sb.call("add", a, b));
    },
    "/echo": (p) => {
      const s = p.get("s");
      if (s === null) throw new BadRequest('query parameter "s" is required');
      return pool.run((sb) => sb.call("echo", s));
    },
    "/crash": () => pool.run((sb) => sb.call("read_address", 0n)),
    "/hang": () => pool.run((sb) => sb.call("spin_forever")),
  };

  // Long /echo query strings: allow request heads up to 128 KiB (Node's default is 16 KiB).
  const server = http.createServer({ maxHeaderSize: 128 << 10 }, (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === "/stats") return send(res, 200, pool.stats() satisfies PoolStats);
    const route = routes[url.pathname];
    if (!route) return send(res, 404, { error: { code: "NOT_FOUND", message: `no route ${url.pathname}` } });
    if (req.method !== "GET") return send(res, 405, { error: { code: "METHOD_NOT_ALLOWED", message: "use GET" } });
    let pending: Promise<unknown>;
    try {
      pending = route(url.searchParams);
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (result) => send(res, 200, { result }),
      (error: unknown) => {
        if (error instanceof BadRequest) return send(res, 400, { error: { code: "BAD_REQUEST", message: error.message } });
        if (error instanceof VmletError) return send(res, STATUS[error.code] ?? 500, { error: { code: error.code, message: error.message } });
        send(res, 500, { error: { code: "INTERNAL", message: String(error) } });
      },
    );
  });
  server.keepAliveTimeout = 5000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections(); // keep-alive sockets with no request in flight
      await stopped; // in-flight requests finish (each within timeoutMs + acquireTimeoutMs)
      await pool.close();
    })());

  return { url: `http://${host}:${address.port}`, server, pool, close };
}

async function main(): Promise<void> {
  const env = (name: string): number | undefined => (process.env[name] ? Number(process.env[name]) : undefined);
  const service = await startService({
    port: env("PORT") ?? 0,
    host: process.env.HOST ?? "127.0.0.1",
    poolSize: env("POOL_SIZE") ?? 4,
    timeoutMs: env("TIMEOUT_MS") ?? 100,
    acquireTimeoutMs: env("ACQUIRE_TIMEOUT_MS") ?? 1000,
  });
  console.log(`vmlet example service listening on ${service.url} (pool size ${service.pool.size})`);
  console.log(`  try: curl '${service.url}/add?a=1&b=2'`);
  const shutdown = (signal: string): void => {
    console.log(`${signal}: closing the server and the pool`);
    service.close().then(
      () => {
        console.log(`closed; pool stats: ${JSON.stringify(service.pool.stats())}`);
        process.exitCode = 0;
      },
      (error: unknown) => {
        console.error("shutdown failed:", error);
        process.exitCode = 1;
      },
    );
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
