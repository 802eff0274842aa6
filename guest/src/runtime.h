/* Internal to the guest SDK: control block access and the wire codec. */
#ifndef VMLET_RUNTIME_H
#define VMLET_RUNTIME_H

#include "vmlet.h"

#define VMLET_CB(type, offset) (*(volatile type *)(uintptr_t)(VMLET_CONTROL_BLOCK_ADDR + (offset)))

/* The I/O buffers, from the control block at start-up. */
extern uint8_t *vmlet__in;
extern uint32_t vmlet__in_size;
extern uint8_t *vmlet__out;
extern uint32_t vmlet__out_size;

/* Leaves the guest through `out` to a fixed port; the host resumes after it. */
#define VMLET_EXIT(port) __asm__ volatile("outb %%al, %0" : : "N"(port), "a"(0) : "memory")

typedef struct {
  uint8_t *buf;
  uint32_t cap;
  uint32_t off;
  uint32_t count;
  bool overflow;
} vmlet_writer;

void vmlet__w_begin(vmlet_writer *w, uint8_t *buf, uint32_t cap, uint16_t kind, uint32_t a, uint32_t b);
void vmlet__w_value(vmlet_writer *w, const vmlet_value *v);
void vmlet__w_string(vmlet_writer *w, const char *s);
/* Writes length and count into the header; false if the message did not fit. */
bool vmlet__w_finish(vmlet_writer *w);

typedef struct {
  const uint8_t *buf;
  uint32_t len;
  uint32_t off;
} vmlet_reader;

/* Checks magic, version, kind and length; fills count, a and b. */
bool vmlet__r_begin(vmlet_reader *r, const uint8_t *buf, uint32_t cap, uint16_t kind, uint32_t *count, uint32_t *a,
                    uint32_t *b);
/* Reads one value, checking its bounds; STRING values must end in NUL. */
bool vmlet__r_value(vmlet_reader *r, vmlet_value *out);

void vmlet__scratch_release(void);

#endif
