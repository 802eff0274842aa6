/* Guest entry. The host starts the vCPU here at CPL 3 with RSP at the stack top
 * (16-byte aligned) and the page tables, GDT, IDT and TSS already in place. */
#include "vmlet_abi.h"

  .section .text.entry, "ax"
  .globl _start
_start:
  xor %ebp, %ebp
  and $-16, %rsp
  call vmlet__main
  ud2

/* void vmlet__ready(void): tell the host the call returned (`out READY`) and wait for the
 * next one. The FPU/SSE state goes through a 512-byte FXSAVE area on the stack, and
 * `fxrstor64` is the first instruction after the exit: every snapshot's RIP points at it,
 * so after a restore the guest reloads the snapshot's FPU state from the snapshot's own
 * memory, and the host may skip KVM_SET_XSAVE (src/hypervisor/fpu-reload.ts checks these
 * exact bytes at RIP; docs/snapshots.md#fpu-state-on-restore). */
  .text
  .globl vmlet__ready
  .type vmlet__ready, @function
vmlet__ready:
  sub $520, %rsp            /* entered with RSP = 8 mod 16: the area is 16-byte aligned */
  fxsave64 (%rsp)
  xor %eax, %eax
  out %al, $VMLET_PORT_READY
  fxrstor64 (%rsp)          /* the resume point: 48 0f ae 0c 24 */
  add $520, %rsp
  ret
  .size vmlet__ready, . - vmlet__ready
