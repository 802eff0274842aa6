/* Guest entry. The host starts the vCPU here at CPL 3 with RSP at the stack top
 * (16-byte aligned) and the page tables, GDT, IDT and TSS already in place. */
  .section .text.entry, "ax"
  .globl _start
_start:
  xor %ebp, %ebp
  and $-16, %rsp
  call vmlet__main
  ud2
