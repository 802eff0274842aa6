/* Guest start-up and the call loop: publish the function table, then forever
 * `out READY` (the previous result is in the output buffer) and dispatch the
 * CALL the host left in the input buffer. */
#include "internal.h"
#include "runtime.h"

extern const vmlet_fn_entry __start_vmlet_fns[], __stop_vmlet_fns[];
extern void (*__init_array_start[])(void), (*__init_array_end[])(void);

/* start.S: `out READY` with the FPU state saved around it, reloaded first thing on resume. */
void vmlet__ready(void);

uint8_t *vmlet__in;
uint32_t vmlet__in_size;
uint8_t *vmlet__out;
uint32_t vmlet__out_size;

/* Optional one-time set-up a guest may define. */
__attribute__((weak)) void vmlet_init(void) {}

static void write_status(uint32_t status, const char *text) {
  vmlet_writer w;
  vmlet__w_begin(&w, vmlet__out, vmlet__out_size, VMLET_MSG_RETURN, status, VMLET_T_STRING);
  if (text) vmlet__w_string(&w, text);
  vmlet__w_finish(&w);
}

static void write_result(const vmlet_fn_entry *fn, const vmlet_value *ret) {
  vmlet_writer w;
  vmlet__w_begin(&w, vmlet__out, vmlet__out_size, VMLET_MSG_RETURN, VMLET_STATUS_OK, fn->ret);
  if (fn->ret != VMLET_T_VOID) {
    vmlet_value v = *ret;
    v.type = fn->ret;
    vmlet__w_value(&w, &v);
  }
  if (!vmlet__w_finish(&w)) write_status(VMLET_STATUS_RESULT_TOO_LARGE, "result does not fit the output buffer");
}

/* Decodes the CALL in the input buffer, checks it against the signature, runs it. */
static void dispatch(void) {
  vmlet_reader r;
  uint32_t argc, index, unused;
  if (!vmlet__r_begin(&r, vmlet__in, vmlet__in_size, VMLET_MSG_CALL, &argc, &index, &unused)) {
    write_status(VMLET_STATUS_MALFORMED, "malformed call message");
    return;
  }
  uint32_t nfns = (uint32_t)(__stop_vmlet_fns - __start_vmlet_fns);
  if (index >= nfns) {
    write_status(VMLET_STATUS_UNKNOWN_FUNCTION, "no function with that index");
    return;
  }
  const vmlet_fn_entry *fn = &__start_vmlet_fns[index];
  vmlet_value args[VMLET_MAX_PARAMS];
  if (argc != fn->n_params) {
    write_status(VMLET_STATUS_BAD_ARGUMENTS, "wrong number of arguments");
    return;
  }
  for (uint32_t i = 0; i < argc; i++) {
    if (!vmlet__r_value(&r, &args[i]) || args[i].type != fn->params[i]) {
      write_status(VMLET_STATUS_BAD_ARGUMENTS, "argument type does not match the signature");
      return;
    }
  }
  vmlet_value ret;
  memset(&ret, 0, sizeof ret);
  fn->wrapper(args, &ret);
  write_result(fn, &ret);
  vmlet__scratch_release();
}

static void check_control_block(void) {
  if (VMLET_CB(uint32_t, VMLET_CB_MAGIC) != VMLET_CONTROL_MAGIC ||
      VMLET_CB(uint32_t, VMLET_CB_ABI_VERSION) != VMLET_ABI_VERSION) {
    __asm__ volatile("ud2"); /* no usable buffers to report through: the host sees #UD at start-up */
  }
  vmlet__in = (uint8_t *)(uintptr_t)VMLET_CB(uint64_t, VMLET_CB_INPUT_ADDR);
  vmlet__in_size = VMLET_CB(uint32_t, VMLET_CB_INPUT_SIZE);
  vmlet__out = (uint8_t *)(uintptr_t)VMLET_CB(uint64_t, VMLET_CB_OUTPUT_ADDR);
  vmlet__out_size = VMLET_CB(uint32_t, VMLET_CB_OUTPUT_SIZE);
}

void vmlet__main(void) {
  check_control_block();
  vmlet_heap_init((void *)(uintptr_t)VMLET_CB(uint64_t, VMLET_CB_HEAP_ADDR),
                  (size_t)VMLET_CB(uint64_t, VMLET_CB_HEAP_SIZE));
  vmlet_heap_report_to(&VMLET_CB(uint64_t, VMLET_CB_HEAP_USED));
  VMLET_CB(uint64_t, VMLET_CB_FN_TABLE_ADDR) = (uint64_t)(uintptr_t)__start_vmlet_fns;
  VMLET_CB(uint32_t, VMLET_CB_FN_COUNT) = (uint32_t)(__stop_vmlet_fns - __start_vmlet_fns);
  VMLET_CB(uint32_t, VMLET_CB_GUEST_ABI) = VMLET_ABI_VERSION;
  for (void (**ctor)(void) = __init_array_start; ctor < __init_array_end; ctor++) (*ctor)();
  vmlet_init();
  write_status(VMLET_STATUS_OK, NULL);
  vmlet__scratch_release();
  for (;;) {
    vmlet__ready();
    dispatch();
  }
}

/* ---- per-call scratch memory ---- */

typedef struct scratch {
  struct scratch *next;
  uint64_t pad; /* keeps the payload 16-byte aligned */
} scratch;

static scratch *scratch_list;

void *vmlet_scratch(size_t n) {
  if (n > SIZE_MAX - sizeof(scratch)) return NULL;
  scratch *s = malloc(sizeof *s + n);
  if (!s) return NULL;
  s->next = scratch_list;
  scratch_list = s;
  return s + 1;
}

void vmlet__scratch_release(void) {
  while (scratch_list) {
    scratch *next = scratch_list->next;
    free(scratch_list);
    scratch_list = next;
  }
}

/* ---- randomness: xoshiro256**, reseeded whenever the host bumps the generation ---- */

static uint64_t rng[4];
static uint64_t rng_generation = ~0ull;

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t vmlet_random_u64(void) {
  uint64_t generation = VMLET_CB(uint64_t, VMLET_CB_RNG_GENERATION);
  if (generation != rng_generation) {
    uint64_t seed = VMLET_CB(uint64_t, VMLET_CB_RNG_SEED);
    for (int i = 0; i < 4; i++) rng[i] = splitmix64(&seed);
    rng_generation = generation;
  }
  uint64_t result = rotl(rng[1] * 5, 7) * 9, t = rng[1] << 17;
  rng[2] ^= rng[0];
  rng[3] ^= rng[1];
  rng[1] ^= rng[2];
  rng[0] ^= rng[3];
  rng[2] ^= t;
  rng[3] = rotl(rng[3], 45);
  return result;
}
