/*
 * The fuzzing guest (fuzz/exit-records.ts, fuzz/host-results.ts): it writes what the host
 * asks, or random bytes, where the host reads guest messages (the output buffer), then
 * leaves through any port with any I/O instruction, bypassing the SDK's own encoder. The
 * host must answer every such exit with a result or a typed error.
 */
#include <vmlet.h>

#define CB_U32(off) (*(volatile uint32_t *)(uintptr_t)(VMLET_CONTROL_BLOCK_ADDR + (off)))
#define CB_U64(off) (*(volatile uint64_t *)(uintptr_t)(VMLET_CONTROL_BLOCK_ADDR + (off)))

static uint8_t *out_buffer(void) { return (uint8_t *)(uintptr_t)CB_U64(VMLET_CB_OUTPUT_ADDR); }
static uint32_t out_size(void) { return CB_U32(VMLET_CB_OUTPUT_SIZE); }

static uint32_t get32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* The I/O instructions a guest can leave by; the port goes in DX so any port is reachable. */
enum { OUT_B, OUT_W, OUT_L, IN_B, IN_L, FORMS };

static void leave(uint32_t port, uint32_t form) {
  uint16_t dx = (uint16_t)port;
  uint32_t eax = 0;
  switch (form % FORMS) {
    case OUT_B: __asm__ volatile("outb %%al, %%dx" : : "a"(eax), "d"(dx) : "memory"); break;
    case OUT_W: __asm__ volatile("outw %%ax, %%dx" : : "a"(eax), "d"(dx) : "memory"); break;
    case OUT_L: __asm__ volatile("outl %%eax, %%dx" : : "a"(eax), "d"(dx) : "memory"); break;
    case IN_B: __asm__ volatile("inb %%dx, %%al" : "+a"(eax) : "d"(dx) : "memory"); break;
    case IN_L: __asm__ volatile("inl %%dx, %%eax" : "+a"(eax) : "d"(dx) : "memory"); break;
  }
}

/*
 * Runs a script of exits: each step is [u32 port][u32 form][u32 offset][u32 length][length
 * bytes], copied to the output buffer at `offset` (clipped to the buffer) before leaving
 * through `port`. Whatever the host wrote in between (a HOST_RETURN) is left for the next
 * step to overwrite or not. A script that ends returns normally through the SDK.
 */
static void run_script(vmlet_bytes script) {
  const uint8_t *p = script.ptr;
  const uint8_t *end = script.ptr + script.len;
  uint8_t *out = out_buffer();
  uint32_t size = out_size();
  while (end - p >= 16) {
    uint32_t port = get32(p), form = get32(p + 4), offset = get32(p + 8), length = get32(p + 12);
    p += 16;
    if (length > (uint32_t)(end - p)) length = (uint32_t)(end - p);
    if (offset < size) memcpy(out + offset, p, length < size - offset ? length : size - offset);
    p += length;
    leave(port, form);
  }
}

/* One export per return type: the host checks a RETURN against the declared type. */
static void script_void(vmlet_bytes s) { run_script(s); }
VMLET_EXPORT(script_void, VOID, BYTES);
static int32_t script_i32(vmlet_bytes s) { run_script(s); return 0; }
VMLET_EXPORT(script_i32, I32, BYTES);
static uint32_t script_u32(vmlet_bytes s) { run_script(s); return 0; }
VMLET_EXPORT(script_u32, U32, BYTES);
static int64_t script_i64(vmlet_bytes s) { run_script(s); return 0; }
VMLET_EXPORT(script_i64, I64, BYTES);
static uint64_t script_u64(vmlet_bytes s) { run_script(s); return 0; }
VMLET_EXPORT(script_u64, U64, BYTES);
static float script_f32(vmlet_bytes s) { run_script(s); return 0; }
VMLET_EXPORT(script_f32, F32, BYTES);
static double script_f64(vmlet_bytes s) { run_script(s); return 0; }
VMLET_EXPORT(script_f64, F64, BYTES);
static bool script_bool(vmlet_bytes s) { run_script(s); return false; }
VMLET_EXPORT(script_bool, BOOL, BYTES);
static const char *script_string(vmlet_bytes s) { run_script(s); return ""; }
VMLET_EXPORT(script_string, STRING, BYTES);
static vmlet_bytes script_bytes(vmlet_bytes s) { run_script(s); return (vmlet_bytes){0, 0}; }
VMLET_EXPORT(script_bytes, BYTES, BYTES);

/* Random bytes (xorshift64 from `seed`, so the host can reproduce them) over the first
 * `length` bytes of the output buffer, then one exit through `port`. */
static void random_exit(uint64_t seed, uint32_t length, uint32_t port) {
  uint8_t *out = out_buffer();
  uint64_t x = seed | 1;
  if (length > out_size()) length = out_size();
  for (uint32_t i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = (uint8_t)(x >> 24);
  }
  leave(port, OUT_B);
}
VMLET_EXPORT(random_exit, VOID, U64, U32, U32);

/* Calls host function `name` (no arguments) expecting `ret_type`; returns the SDK's status
 * and, for a scalar result, folds it into the high bits so the host sees it arrived. */
static uint64_t call_host(const char *name, uint32_t ret_type) {
  vmlet_value result;
  int status = vmlet_host_call(name, ret_type, &result, 0, NULL);
  if (status != 0) return (uint64_t)status;
  uint64_t seen = result.type == VMLET_T_STRING || result.type == VMLET_T_BYTES ? result.len : result.as.u64;
  return seen << 8;
}
VMLET_EXPORT(call_host, U64, STRING, U32);
