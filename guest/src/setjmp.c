/*
 * setjmp/longjmp (System V x86-64): jmp_buf holds RBX, RBP, R12-R15, the
 * caller's RSP and the return address. The FPU control words are left alone:
 * a guest does not change them between a setjmp and its longjmp in practice,
 * and C does not require restoring them.
 * The names go through the preprocessor (SYMBOL) so the host-side test can rename them.
 */
#define STRING(x) #x
#define SYMBOL(x) STRING(x)

__asm__(".text\n"
        ".globl " SYMBOL(setjmp) "\n"
        ".type " SYMBOL(setjmp) ", @function\n"
        SYMBOL(setjmp) ":\n"
        "  mov %rbx, 0(%rdi)\n"
        "  mov %rbp, 8(%rdi)\n"
        "  mov %r12, 16(%rdi)\n"
        "  mov %r13, 24(%rdi)\n"
        "  mov %r14, 32(%rdi)\n"
        "  mov %r15, 40(%rdi)\n"
        "  lea 8(%rsp), %rdx\n" /* RSP after our return */
        "  mov %rdx, 48(%rdi)\n"
        "  mov (%rsp), %rdx\n" /* the return address */
        "  mov %rdx, 56(%rdi)\n"
        "  xor %eax, %eax\n"
        "  ret\n"
        ".size " SYMBOL(setjmp) ", . - " SYMBOL(setjmp) "\n"
        "\n"
        ".globl " SYMBOL(longjmp) "\n"
        ".type " SYMBOL(longjmp) ", @function\n"
        SYMBOL(longjmp) ":\n"
        "  mov %esi, %eax\n"
        "  test %eax, %eax\n" /* longjmp(env, 0) makes setjmp return 1 */
        "  jnz 1f\n"
        "  inc %eax\n"
        "1:\n"
        "  mov 0(%rdi), %rbx\n"
        "  mov 8(%rdi), %rbp\n"
        "  mov 16(%rdi), %r12\n"
        "  mov 24(%rdi), %r13\n"
        "  mov 32(%rdi), %r14\n"
        "  mov 40(%rdi), %r15\n"
        "  mov 48(%rdi), %rsp\n"
        "  jmp *56(%rdi)\n"
        ".size " SYMBOL(longjmp) ", . - " SYMBOL(longjmp) "\n");
