/* The wire codec (docs/abi.md): 24-byte header, then values of
 * [u32 tag][u32 length][payload padded to 8]. Every read is bounds-checked. */
#include "runtime.h"

static uint32_t pad8(uint32_t n) { return (n + 7u) & ~7u; }

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

void vmlet__w_begin(vmlet_writer *w, uint8_t *buf, uint32_t cap, uint16_t kind, uint32_t a, uint32_t b) {
  w->buf = buf;
  w->cap = cap;
  w->off = VMLET_MSG_HEADER_SIZE;
  w->count = 0;
  w->overflow = cap < VMLET_MSG_HEADER_SIZE;
  if (w->overflow) return;
  uint16_t version = VMLET_ABI_VERSION;
  put32(buf + VMLET_MSG_MAGIC, VMLET_MESSAGE_MAGIC);
  memcpy(buf + VMLET_MSG_VERSION, &version, 2);
  memcpy(buf + VMLET_MSG_KIND, &kind, 2);
  put32(buf + VMLET_MSG_A, a);
  put32(buf + VMLET_MSG_B, b);
}

static void put_value(vmlet_writer *w, uint32_t tag, const void *payload, uint32_t len, bool nul) {
  uint32_t stored = len + (nul ? 1u : 0u);
  if (w->overflow || stored < len || w->cap - w->off < VMLET_VALUE_HEADER_SIZE + pad8(stored)) {
    w->overflow = true;
    return;
  }
  uint8_t *p = w->buf + w->off;
  /* Payload first: it may come from this same buffer (a host-call result). */
  if (len) memmove(p + VMLET_VALUE_HEADER_SIZE, payload, len);
  if (nul) p[VMLET_VALUE_HEADER_SIZE + len] = 0;
  memset(p + VMLET_VALUE_HEADER_SIZE + stored, 0, pad8(stored) - stored);
  put32(p, tag);
  put32(p + 4, stored);
  w->off += VMLET_VALUE_HEADER_SIZE + pad8(stored);
  w->count++;
}

void vmlet__w_value(vmlet_writer *w, const vmlet_value *v) {
  uint64_t scalar = 0;
  switch (v->type) {
    case VMLET_T_STRING: put_value(w, v->type, v->as.str ? v->as.str : "", v->as.str ? v->len : 0, true); return;
    case VMLET_T_BYTES: put_value(w, v->type, v->as.bytes, v->as.bytes ? v->len : 0, false); return;
    case VMLET_T_I32: scalar = (uint64_t)(int64_t)v->as.i32; break;
    case VMLET_T_U32: scalar = v->as.u32; break;
    case VMLET_T_F32: memcpy(&scalar, &v->as.f32, 4); break;
    case VMLET_T_BOOL: scalar = v->as.b ? 1 : 0; break;
    default: scalar = v->as.u64; break; /* I64, U64, F64 share the 8 bytes */
  }
  put_value(w, v->type, &scalar, 8, false);
}

void vmlet__w_string(vmlet_writer *w, const char *s) {
  vmlet_value v = vmlet_string(s);
  vmlet__w_value(w, &v);
}

bool vmlet__w_finish(vmlet_writer *w) {
  if (w->overflow) return false;
  put32(w->buf + VMLET_MSG_LENGTH, w->off);
  put32(w->buf + VMLET_MSG_COUNT, w->count);
  return true;
}

bool vmlet__r_begin(vmlet_reader *r, const uint8_t *buf, uint32_t cap, uint16_t kind, uint32_t *count, uint32_t *a,
                    uint32_t *b) {
  if (cap < VMLET_MSG_HEADER_SIZE || get32(buf + VMLET_MSG_MAGIC) != VMLET_MESSAGE_MAGIC) return false;
  uint16_t version, got_kind;
  memcpy(&version, buf + VMLET_MSG_VERSION, 2);
  memcpy(&got_kind, buf + VMLET_MSG_KIND, 2);
  uint32_t len = get32(buf + VMLET_MSG_LENGTH);
  if (version != VMLET_ABI_VERSION || got_kind != kind || len < VMLET_MSG_HEADER_SIZE || len > cap) return false;
  r->buf = buf;
  r->len = len;
  r->off = VMLET_MSG_HEADER_SIZE;
  *count = get32(buf + VMLET_MSG_COUNT);
  *a = get32(buf + VMLET_MSG_A);
  *b = get32(buf + VMLET_MSG_B);
  return true;
}

bool vmlet__r_value(vmlet_reader *r, vmlet_value *out) {
  if (r->len - r->off < VMLET_VALUE_HEADER_SIZE) return false;
  const uint8_t *p = r->buf + r->off;
  uint32_t tag = get32(p), len = get32(p + 4);
  if (len > r->len - r->off - VMLET_VALUE_HEADER_SIZE || pad8(len) > r->len - r->off - VMLET_VALUE_HEADER_SIZE)
    return false;
  const uint8_t *payload = p + VMLET_VALUE_HEADER_SIZE;
  out->type = tag;
  out->len = 0;
  out->as.u64 = 0;
  switch (tag) {
    case VMLET_T_STRING:
      if (len == 0 || payload[len - 1] != 0) return false;
      out->as.str = (const char *)payload;
      out->len = len - 1;
      break;
    case VMLET_T_BYTES:
      out->as.bytes = payload;
      out->len = len;
      break;
    case VMLET_T_I32: case VMLET_T_U32: case VMLET_T_I64: case VMLET_T_U64:
    case VMLET_T_F32: case VMLET_T_F64: case VMLET_T_BOOL:
      if (len != 8) return false;
      memcpy(&out->as.u64, payload, 8);
      if (tag == VMLET_T_BOOL) out->as.b = out->as.u64 != 0;
      break;
    default:
      return false;
  }
  r->off += VMLET_VALUE_HEADER_SIZE + pad8(len);
  return true;
}

vmlet_value vmlet_string(const char *s) {
  vmlet_value v = {VMLET_T_STRING, s ? (uint32_t)strlen(s) : 0, {.str = s}};
  return v;
}

vmlet_value vmlet_bytes_value(const void *p, uint32_t len) {
  vmlet_value v = {VMLET_T_BYTES, len, {.bytes = p}};
  return v;
}

size_t vmlet__strlen_or_zero(const char *s) { return s ? strlen(s) : 0; }
