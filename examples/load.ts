/**
 * A small load generator for examples/http-service.ts: latency percentiles and
 * throughput per route, over loopback with keep-alive connections.
 *
 *   node dist/examples/load.js                       # starts the service as a child process
 *   node dist/examples/load.js http://127.0.0.1:8080 # or measures a running one
 *   options: --requests N (2000)  --concurrency C (16)
 *
 * /stats answers without a sandbox, so its row is the HTTP cost alone; the difference
 * to /add is what the sandbox costs a request.
 */
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

interface Result {
  route: string;
  concurrency: number;
  requests: number;
  p50: number;
  p99: number;
  perSecond: number;
  statuses: Record<number, number>;
}

function get(agent: http.Agent, url: string): Promise<{ status: number; ms: number }> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - start }));
      })
      .on("error", reject);
  });
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;

export async function measureRoute(base: string, route: string, requests: number, concurrency: number): Promise<Result> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  try {
    for (let i = 0; i < Math.min(100, requests); i++) await get(agent, base + route); // warm-up
    const times: number[] = [];
    const statuses: Record<number, number> = {};
    let next = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < requests) {
          next++;
          const { status, ms } = await get(agent, base + route);
          times.push(ms);
          statuses[status] = (statuses[status] ?? 0) + 1;
        }
      }),
    );
    const elapsed = performance.now() - start;
    times.sort((a, b) => a - b);
    return { route, concurrency, requests, p50: quantile(times, 0.5), p99: quantile(times, 0.99), perSecond: (requests / elapsed) * 1000, statuses };
  } finally {
    agent.destroy();
  }
}

/** Starts dist/examples/http-service.js and resolves with its URL once it prints it. */
export function startServiceProcess(env: Record<string, string> = {}): Promise<{ url: string; child: ChildProcess }> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), "http-service.js");
  const child = spawn(process.execPath, [script], { env: { ...process.env, PORT: "0", ...env }, stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      out += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) resolve({ url: match[1]!, child });
    });
    child.once("exit", (code) => reject(new Error(`the service exited with ${code} before listening: ${out}`)));
  });
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const requests = arg("--requests", 2000);
  const concurrency = arg("--concurrency", 16);
  const given = process.argv.slice(2).find((a) => a.startsWith("http"));
  const started = given ? undefined : await startServiceProcess();
  const base = given ?? started!.url;
  try {
    const rows: Result[] = [];
    for (const route of ["/stats", "/add?a=1&b=2", "/echo?s=hello%20world"]) {
      rows.push(await measureRoute(base, route, requests, 1));
      rows.push(await measureRoute(base, route, requests, concurrency));
    }
    rows.push(await measureRoute(base, "/crash", Math.min(requests, 500), concurrency));
    console.log(`${base}, ${requests} requests per row, keep-alive, loopback\n`);
    console.log("route                    conc   p50 ms   p99 ms    req/s  statuses");
    for (const r of rows) {
      console.log(
        `${r.route.padEnd(24)} ${String(r.concurrency).padStart(4)} ${r.p50.toFixed(3).padStart(8)} ${r.p99.toFixed(3).padStart(8)} ${r.perSecond.toFixed(0).padStart(8)}  ${JSON.stringify(r.statuses)}`,
      );
    }
  } finally {
    started?.child.kill("SIGTERM");
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
