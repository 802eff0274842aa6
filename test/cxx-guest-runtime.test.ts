/**
 * C++ guests use the language's run-time pieces without anything written for vmlet: new and
 * delete (plain, array, nothrow, placement, over-aligned), static objects with destructors,
 * virtual calls, a pure virtual call as a typed error, and a `new` the heap cannot satisfy
 * as OUT_OF_MEMORY. C guests get aligned_alloc and posix_memalign from the same allocator.
 * The guest is built the way users build theirs: `vmlet guest build` with the shipped SDK.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { GuestAbortedError, OutOfMemoryError, SandboxBuilder, type Sandbox } from "../src/index.js";
import { repoRoot } from "./helpers.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-cxx-runtime-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SOURCE = String.raw`
#include <vmlet.h>
#include <new>
#include <stdlib.h>

namespace {
struct Shape {
  virtual ~Shape() = default;
  virtual int32_t area() const = 0;
};
struct Square : Shape {
  explicit Square(int32_t side) : side_(side) {}
  int32_t area() const override { return side_ * side_; }
  int32_t side_;
};
struct Counter {
  Counter() { constructed++; }
  ~Counter() { destroyed++; }
  static int32_t constructed, destroyed;
};
int32_t Counter::constructed = 0, Counter::destroyed = 0;
Counter global_counter;  // constructed at start-up; its destructor is registered, never due

struct alignas(256) Wide { uint8_t bytes[300]; };

}  // namespace

// Calls a pure virtual function: in Abstract's constructor the object's vtable is Abstract's.
// Outside the anonymous namespace, so the compiler cannot know every class deriving from it.
int32_t area_of(const struct Abstract *a);
int32_t (*volatile probe)(const Abstract *) = area_of;  // volatile: the compiler cannot see the call's target
struct Abstract {
  Abstract() { probed = probe(this); }
  virtual ~Abstract() = default;
  virtual int32_t area() const = 0;
  int32_t probed;
};
int32_t area_of(const Abstract *a) { return a->area(); }
struct Broken : Abstract {
  int32_t area() const override { return 1; }
};

static int32_t objects(int32_t n) {
  int32_t total = 0;
  Shape **shapes = new Shape *[n];
  for (int32_t i = 0; i < n; i++) shapes[i] = new Square(i + 1);
  for (int32_t i = 0; i < n; i++) total += shapes[i]->area();
  for (int32_t i = 0; i < n; i++) delete shapes[i];
  delete[] shapes;
  return total;
}
VMLET_EXPORT(objects, I32, I32);

static uint64_t aligned_news(int32_t n) {
  uint64_t misaligned = 0;
  for (int32_t i = 0; i < n; i++) {
    Wide *w = new Wide;
    Wide *ws = new Wide[3];
    misaligned |= (reinterpret_cast<uintptr_t>(w) | reinterpret_cast<uintptr_t>(ws)) & 255;
    w->bytes[299] = 1;
    ws[2].bytes[299] = 2;
    delete w;
    delete[] ws;
  }
  return misaligned;
}
VMLET_EXPORT(aligned_news, U64, I32);

static int32_t placement(int32_t side) {
  alignas(Square) unsigned char storage[sizeof(Square)];
  Square *s = new (storage) Square(side);
  int32_t area = s->area();
  s->~Square();
  return area;
}
VMLET_EXPORT(placement, I32, I32);

static bool nothrow_too_big(void) { return new (std::nothrow) uint8_t[size_t(1) << 40] == nullptr; }
VMLET_EXPORT(nothrow_too_big, BOOL);

uint8_t *volatile kept;  // a new whose result is unused may be elided
static void throwing_too_big(void) { kept = new uint8_t[size_t(1) << 40]; }
VMLET_EXPORT(throwing_too_big, VOID);

static int32_t statics(void) { return Counter::constructed * 10 + Counter::destroyed; }
VMLET_EXPORT(statics, I32);

static int32_t pure_virtual(void) { Broken b; return b.area(); }
VMLET_EXPORT(pure_virtual, I32);

static uint64_t c_aligned(uint32_t align) {
  void *a = aligned_alloc(align, 100), *b = nullptr;
  if (posix_memalign(&b, align, 100) != 0) return ~0ull;
  uint64_t bits = (reinterpret_cast<uintptr_t>(a) | reinterpret_cast<uintptr_t>(b)) & (align - 1);
  free(a);
  free(b);
  return bits;
}
VMLET_EXPORT(c_aligned, U64, U32);

static int32_t bad_alignments(void) {
  void *p = nullptr;
  return (aligned_alloc(24, 8) == nullptr) + (posix_memalign(&p, 4, 8) == 22) + (posix_memalign(&p, 48, 8) == 22);
}
VMLET_EXPORT(bad_alignments, I32);
`;

let elf = "";

before(() => {
  const source = path.join(tmp, "runtime.cpp");
  fs.writeFileSync(source, SOURCE);
  elf = path.join(tmp, "runtime.elf");
  const r = spawnSync(process.execPath, [path.join(repoRoot, "dist/src/cli/main.js"), "guest", "build", source, "-o", elf], { encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, `vmlet guest build failed:\n${r.stderr}`);
});

async function guest(): Promise<Sandbox> {
  return new SandboxBuilder().guest(elf).heapSize(4 << 20).build();
}

test("new/delete of objects and arrays, virtual calls, placement new; the heap is whole afterwards", async () => {
  const sb = await guest();
  try {
    const before = sb.stats().heap.used;
    assert.equal(sb.callSync("objects", 100), Array.from({ length: 100 }, (_, i) => (i + 1) ** 2).reduce((a, b) => a + b));
    assert.equal(sb.stats().heap.used, before, "every new was deleted");
    assert.equal(sb.callSync("placement", 9), 81);
    for (let i = 0; i < 3; i++) assert.equal(sb.callSync("objects", 1000), 333_833_500);
    assert.equal(sb.stats().heap.used, before);
  } finally {
    sb.close();
  }
});

test("over-aligned new (alignas(256)) and C's aligned_alloc/posix_memalign return aligned memory that free() takes back", async () => {
  const sb = await guest();
  try {
    const before = sb.stats().heap.used;
    assert.equal(sb.callSync("aligned_news", 200), 0n);
    for (const align of [32, 64, 4096, 65536]) assert.equal(sb.callSync("c_aligned", align), 0n, `align ${align}`);
    assert.equal(sb.stats().heap.used, before, "the gaps aligned allocation split off were freed and merged");
    assert.equal(sb.callSync("bad_alignments"), 3);
  } finally {
    sb.close();
  }
});

test("static objects are constructed at start-up; their destructors are registered and never run", async () => {
  const sb = await guest();
  try {
    assert.equal(sb.callSync("statics"), 10);
  } finally {
    sb.close();
  }
});

test("an allocation the heap cannot hold: nothrow new gives nullptr, plain new fails the call with OUT_OF_MEMORY", async () => {
  const sb = await guest();
  try {
    const base = sb.snapshot();
    assert.equal(sb.callSync("nothrow_too_big"), true);
    assert.throws(() => sb.callSync("throwing_too_big"), OutOfMemoryError);
    sb.restore(base);
    assert.throws(() => sb.callSync("pure_virtual"), (e: unknown) => e instanceof GuestAbortedError && /pure virtual function called/.test(e.message));
  } finally {
    sb.close();
  }
});
