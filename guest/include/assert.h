/* assert(): a failed assertion aborts the guest with the expression, file and line. */
#undef assert
#ifdef NDEBUG
#define assert(e) ((void)0)
#else
#define assert(e) ((e) ? (void)0 : __assert_fail(#e, __FILE__, __LINE__, __func__))
#endif

#ifndef VMLET_ASSERT_H
#define VMLET_ASSERT_H
_Noreturn void __assert_fail(const char *expr, const char *file, unsigned int line, const char *func);
#if !defined(__cplusplus) && !defined(static_assert)
#define static_assert _Static_assert
#endif
#endif
