/* Non-local jumps: jmp_buf holds the callee-saved registers, RSP and the return address. */
#ifndef VMLET_SETJMP_H
#define VMLET_SETJMP_H

#include "vmlet_c_begin.h"

typedef long jmp_buf[8];
typedef long sigjmp_buf[8];

int setjmp(jmp_buf env) __attribute__((returns_twice));
_Noreturn void longjmp(jmp_buf env, int value);
#define _setjmp setjmp
#define _longjmp longjmp
/* No signals in a guest: the mask argument is ignored. */
#define sigsetjmp(env, savemask) setjmp(env)
#define siglongjmp longjmp

#include "vmlet_c_end.h"

#endif
