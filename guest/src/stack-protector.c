/* The stack protector's failure path. Code compiled with -fstack-protector* keeps a copy
 * of the canary at %fs:0x28 (random per sandbox, written by the host into the thread
 * control block) below its local arrays and compares it on return: a write past an array
 * that changed it ends here, never in a return through a smashed frame. */
#include "vmlet.h"

_Noreturn void __stack_chk_fail(void);

_Noreturn void __stack_chk_fail(void) {
  vmlet_abort_at(VMLET_ABORT_PANIC, "__stack_chk_fail", 0, "stack smashing detected");
}
