/* Calling host functions, logging and aborting: each writes a message into the
 * output buffer and leaves the guest through its port. */
#include "runtime.h"

static char host_error[256];

int vmlet_host_call(const char *name, uint32_t ret_type, vmlet_value *result, uint32_t argc, const vmlet_value *argv) {
  vmlet_writer w;
  vmlet__w_begin(&w, vmlet__out, vmlet__out_size, VMLET_MSG_HOST_CALL, 0, ret_type);
  vmlet__w_string(&w, name);
  for (uint32_t i = 0; i < argc; i++) vmlet__w_value(&w, &argv[i]);
  if (argc > VMLET_MAX_PARAMS) {
    strcpy(host_error, "host calls take at most 16 arguments");
    return VMLET_HOST_SIGNATURE;
  }
  if (!vmlet__w_finish(&w)) {
    strcpy(host_error, "host call does not fit the output buffer");
    return VMLET_HOST_TOO_LARGE;
  }
  VMLET_EXIT(VMLET_PORT_HOST_CALL);
  vmlet_reader r;
  uint32_t count, status, unused;
  vmlet_value v;
  if (!vmlet__r_begin(&r, vmlet__out, vmlet__out_size, VMLET_MSG_HOST_RETURN, &count, &status, &unused))
    vmlet_abort_at(VMLET_ABORT_PROTOCOL, __FILE__, __LINE__, "malformed host return");
  if (status != VMLET_HOST_OK) {
    bool has_text = count == 1 && vmlet__r_value(&r, &v) && v.type == VMLET_T_STRING;
    strncpy(host_error, has_text ? v.as.str : "host call failed", sizeof host_error - 1);
    return (int)status;
  }
  if (ret_type == VMLET_T_VOID) return count == 0 ? VMLET_HOST_OK : VMLET_HOST_SIGNATURE;
  if (count != 1 || !vmlet__r_value(&r, &v) || v.type != ret_type)
    vmlet_abort_at(VMLET_ABORT_PROTOCOL, __FILE__, __LINE__, "host returned a value of the wrong type");
  if (result) *result = v;
  return VMLET_HOST_OK;
}

const char *vmlet_host_error(void) { return host_error; }

bool vmlet_log_enabled(int level) { return level <= (int)VMLET_CB(uint32_t, VMLET_CB_MAX_LOG_LEVEL); }

/* Formats straight into the output buffer: no copy, and filtered records cost no exit. */
void vmlet_log(int level, const char *file, int line, const char *fmt, ...) {
  level = level < VMLET_LOG_ERROR ? VMLET_LOG_ERROR : level > VMLET_LOG_TRACE ? VMLET_LOG_TRACE : level;
  if (!vmlet_log_enabled(level)) return;
  uint32_t header = VMLET_MSG_HEADER_SIZE + VMLET_VALUE_HEADER_SIZE;
  uint32_t room = vmlet__out_size > header + 512 ? vmlet__out_size - header - 512 : 0; /* leave room for file, line */
  if (room == 0) return;
  char *text = (char *)vmlet__out + header;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(text, room, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  vmlet_writer w;
  vmlet__w_begin(&w, vmlet__out, vmlet__out_size, VMLET_MSG_LOG, 0, (uint32_t)level);
  vmlet__w_string(&w, text); /* memmove onto itself: the payload already sits where it belongs */
  vmlet__w_string(&w, file);
  vmlet_value l = vmlet_u32((uint32_t)line);
  vmlet__w_value(&w, &l);
  if (vmlet__w_finish(&w)) VMLET_EXIT(VMLET_PORT_LOG);
}

_Noreturn void vmlet_abort_at(uint32_t code, const char *file, int line, const char *msg) {
  vmlet_writer w;
  vmlet__w_begin(&w, vmlet__out, vmlet__out_size, VMLET_MSG_ABORT, 0, code);
  vmlet__w_string(&w, msg);
  vmlet__w_string(&w, file);
  vmlet_value l = vmlet_u32((uint32_t)line);
  vmlet__w_value(&w, &l);
  vmlet__w_finish(&w);
  for (;;) VMLET_EXIT(VMLET_PORT_ABORT); /* the host never resumes an aborted guest */
}

_Noreturn void vmlet_panic_at(const char *file, int line, const char *fmt, ...) {
  static char message[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  vmlet_abort_at(VMLET_ABORT_PANIC, file, line, message);
}
