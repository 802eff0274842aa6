/* Guest entry. The host starts the vCPU here at CPL 3 with RSP at the stack top
 * (16-byte aligned) and the page tables, GDT, IDT and TSS already in place. */
#include "vmlet_abi.h"

  .section .text.entry, "ax"
  .globl _start
  .type _start, @function  /* a function symbol, so profiles and debuggers name the outermost frame */
_start:
  xor %ebp, %ebp
  and $-16, %rsp
  call vmlet__main
  ud2
  .size _start, . - _start

/* void vmlet__ready(void): tell the host the call returned (`out READY`) and wait for the
 * next one. The FPU state goes through an area on the stack: saved before the exit,
 * reloaded as the first thing after it. Every snapshot's RIP is the resume point, so after
 * a restore the guest reloads the snapshot's FPU state from the snapshot's own memory and
 * the host may skip KVM_SET_XSAVE (src/hypervisor/fpu-reload.ts checks these exact bytes;
 * docs/snapshots.md#fpu-state-on-restore).
 *
 * The host says how in VMLET_CB_FPU_XSAVE_MASK: 0 means fxsave64 (x87 and SSE: all a guest
 * can reach on hardware KVM, where vmlet leaves CR4.OSXSAVE clear); otherwise xsave64 of
 * those components (under PVM the guest runs with the host's XCR0: AVX, PKRU, ...). The
 * mask used is kept in the area's bytes 464..511, which neither instruction writes, and the
 * resume point reloads the same way, so the area and the reload always agree. */
#define FPU_AREA 2752 /* x87 .. AVX-512 and PKRU (XCR0 bits 0-7, 9) in the standard XSAVE layout */
#define FPU_MARK 464

  .text
  .globl vmlet__ready
  .type vmlet__ready, @function
vmlet__ready:
  push %rbp                 /* entered with RSP = 8 mod 16 */
  mov %rsp, %rbp
  sub $FPU_AREA, %rsp
  and $-64, %rsp            /* XSAVE needs 64-byte alignment */
  mov (VMLET_CONTROL_BLOCK_ADDR + VMLET_CB_FPU_XSAVE_MASK), %eax
  xor %edx, %edx
  mov %eax, FPU_MARK(%rsp)
  test %eax, %eax
  jz 1f
  /* The area is stack memory an earlier call left anything in. XSAVE updates only the
   * XSTATE_BV bits of the components it saves and keeps the others, and XRSTOR raises #GP
   * on an XSTATE_BV bit outside XCR0 or non-zero header bytes 8..63: clear the whole header. */
  movq $0, 512(%rsp)        /* XSTATE_BV */
  movq $0, 520(%rsp)        /* XCOMP_BV and the reserved bytes */
  movq $0, 528(%rsp)
  movq $0, 536(%rsp)
  movq $0, 544(%rsp)
  movq $0, 552(%rsp)
  movq $0, 560(%rsp)
  movq $0, 568(%rsp)
  xsave64 (%rsp)
  jmp 2f
1:
  fxsave64 (%rsp)
2:
  out %al, $VMLET_PORT_READY
  .globl vmlet__resume
vmlet__resume:              /* the resume point: RIP of every snapshot */
  mov FPU_MARK(%rsp), %eax
  xor %edx, %edx
  test %eax, %eax
  jz 3f
  xrstor64 (%rsp)
  jmp 4f
3:
  fxrstor64 (%rsp)
4:
  leave
  ret
  .size vmlet__ready, . - vmlet__ready
