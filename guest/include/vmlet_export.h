/*
 * VMLET_EXPORT(name, RET, P1, P2, ...): registers `name` in the guest's function
 * table with its signature and a wrapper that unpacks decoded arguments. The
 * compiler checks that `name` has exactly the C type the tokens declare (a
 * mismatch would otherwise convert values silently), in C and in C++.
 * Internal to vmlet.h; up to VMLET_MAX_PARAMS (16) parameters.
 */
#ifndef VMLET_EXPORT_H
#define VMLET_EXPORT_H

/* Type token -> tag, C argument expression, result store. */
#define VMLET__TAG_VOID VMLET_T_VOID
#define VMLET__TAG_I32 VMLET_T_I32
#define VMLET__TAG_U32 VMLET_T_U32
#define VMLET__TAG_I64 VMLET_T_I64
#define VMLET__TAG_U64 VMLET_T_U64
#define VMLET__TAG_F32 VMLET_T_F32
#define VMLET__TAG_F64 VMLET_T_F64
#define VMLET__TAG_BOOL VMLET_T_BOOL
#define VMLET__TAG_STRING VMLET_T_STRING
#define VMLET__TAG_BYTES VMLET_T_BYTES

/* Type token -> the C type the function must use, and its spelling for messages. */
#define VMLET__CTYPE_VOID void
#define VMLET__CTYPE_I32 int32_t
#define VMLET__CTYPE_U32 uint32_t
#define VMLET__CTYPE_I64 int64_t
#define VMLET__CTYPE_U64 uint64_t
#define VMLET__CTYPE_F32 float
#define VMLET__CTYPE_F64 double
#define VMLET__CTYPE_BOOL bool
#define VMLET__CTYPE_STRING const char *
#define VMLET__CTYPE_BYTES vmlet_bytes

/* A STRING result may also be returned as `char *` (a scratch buffer just written). */
#define VMLET__CRET_ALT_VOID void
#define VMLET__CRET_ALT_I32 int32_t
#define VMLET__CRET_ALT_U32 uint32_t
#define VMLET__CRET_ALT_I64 int64_t
#define VMLET__CRET_ALT_U64 uint64_t
#define VMLET__CRET_ALT_F32 float
#define VMLET__CRET_ALT_F64 double
#define VMLET__CRET_ALT_BOOL bool
#define VMLET__CRET_ALT_STRING char *
#define VMLET__CRET_ALT_BYTES vmlet_bytes

#define VMLET__CNAME_VOID "void"
#define VMLET__CNAME_I32 "int32_t"
#define VMLET__CNAME_U32 "uint32_t"
#define VMLET__CNAME_I64 "int64_t"
#define VMLET__CNAME_U64 "uint64_t"
#define VMLET__CNAME_F32 "float"
#define VMLET__CNAME_F64 "double"
#define VMLET__CNAME_BOOL "bool"
#define VMLET__CNAME_STRING "const char *"
#define VMLET__CNAME_BYTES "vmlet_bytes"

#define VMLET__ARG_I32(a, i) (a)[i].as.i32
#define VMLET__ARG_U32(a, i) (a)[i].as.u32
#define VMLET__ARG_I64(a, i) (a)[i].as.i64
#define VMLET__ARG_U64(a, i) (a)[i].as.u64
#define VMLET__ARG_F32(a, i) (a)[i].as.f32
#define VMLET__ARG_F64(a, i) (a)[i].as.f64
#define VMLET__ARG_BOOL(a, i) (a)[i].as.b
#define VMLET__ARG_STRING(a, i) (a)[i].as.str
#define VMLET__ARG_BYTES(a, i) ((vmlet_bytes){(a)[i].as.bytes, (a)[i].len})

#define VMLET__RET_VOID(r, call) ((void)(r), call)
#define VMLET__RET_I32(r, call) ((r)->as.i32 = (call))
#define VMLET__RET_U32(r, call) ((r)->as.u32 = (call))
#define VMLET__RET_I64(r, call) ((r)->as.i64 = (call))
#define VMLET__RET_U64(r, call) ((r)->as.u64 = (call))
#define VMLET__RET_F32(r, call) ((r)->as.f32 = (call))
#define VMLET__RET_F64(r, call) ((r)->as.f64 = (call))
#define VMLET__RET_BOOL(r, call) ((r)->as.b = (call))
#define VMLET__RET_STRING(r, call) ((r)->as.str = (call), (r)->len = vmlet__strlen_or_zero((r)->as.str))
#define VMLET__RET_BYTES(r, call) \
  do { vmlet_bytes vmlet__b = (call); (r)->as.bytes = vmlet__b.ptr; (r)->len = vmlet__b.len; } while (0)

size_t vmlet__strlen_or_zero(const char *s);

/* Argument counting (0..16). */
#define VMLET__NARGS(...) VMLET__NARGS_(_0, ##__VA_ARGS__, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define VMLET__NARGS_(_0, _1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, N, ...) N
#define VMLET__CAT(a, b) VMLET__CAT_(a, b)
#define VMLET__CAT_(a, b) a##b

/* Parameter tag lists. */
#define VMLET__TAGS_0() 0
#define VMLET__TAGS_1(t) VMLET__TAG_##t
#define VMLET__TAGS_2(t, ...) VMLET__TAG_##t, VMLET__TAGS_1(__VA_ARGS__)
#define VMLET__TAGS_3(t, ...) VMLET__TAG_##t, VMLET__TAGS_2(__VA_ARGS__)
#define VMLET__TAGS_4(t, ...) VMLET__TAG_##t, VMLET__TAGS_3(__VA_ARGS__)
#define VMLET__TAGS_5(t, ...) VMLET__TAG_##t, VMLET__TAGS_4(__VA_ARGS__)
#define VMLET__TAGS_6(t, ...) VMLET__TAG_##t, VMLET__TAGS_5(__VA_ARGS__)
#define VMLET__TAGS_7(t, ...) VMLET__TAG_##t, VMLET__TAGS_6(__VA_ARGS__)
#define VMLET__TAGS_8(t, ...) VMLET__TAG_##t, VMLET__TAGS_7(__VA_ARGS__)
#define VMLET__TAGS_9(t, ...) VMLET__TAG_##t, VMLET__TAGS_8(__VA_ARGS__)
#define VMLET__TAGS_10(t, ...) VMLET__TAG_##t, VMLET__TAGS_9(__VA_ARGS__)
#define VMLET__TAGS_11(t, ...) VMLET__TAG_##t, VMLET__TAGS_10(__VA_ARGS__)
#define VMLET__TAGS_12(t, ...) VMLET__TAG_##t, VMLET__TAGS_11(__VA_ARGS__)
#define VMLET__TAGS_13(t, ...) VMLET__TAG_##t, VMLET__TAGS_12(__VA_ARGS__)
#define VMLET__TAGS_14(t, ...) VMLET__TAG_##t, VMLET__TAGS_13(__VA_ARGS__)
#define VMLET__TAGS_15(t, ...) VMLET__TAG_##t, VMLET__TAGS_14(__VA_ARGS__)
#define VMLET__TAGS_16(t, ...) VMLET__TAG_##t, VMLET__TAGS_15(__VA_ARGS__)

/* Parameter C type lists, and their spellings joined by ", ". */
#define VMLET__CTYPES_0() void
#define VMLET__CTYPES_1(t) VMLET__CTYPE_##t
#define VMLET__CTYPES_2(t, ...) VMLET__CTYPE_##t, VMLET__CTYPES_1(__VA_ARGS__)
#define VMLET__CTYPES_3(t, ...) VMLET__CTYPE_##t, VMLET__CTYPES_2(__VA_ARGS__)
#define VMLET__CTYPES_4(t, ...) VMLET__CTYPE_##t, VMLET__CTYPES_3(__VA_ARGS__)
#define VMLET__CTYPES_5(t, ...) VMLET__CTYPE_##t, VMLET__CTYPES_4(__VA_ARGS__)
#define VMLET__CTYPES_6(t, ...) VMLET__CTYPE_##t, VMLET__CTYPES_5(__VA_ARGS__)
#define VMLET__CTYPES_7(t, ...) VMLET__CTYPE_##t, VMLET__CTYPES_6(__VA_ARGS__)
#define VMLET__CTYPES_8(t, ...) VMLET__CTYPE_##t, VMLET__CTYPES_7(__VA_ARGS__)
#define VMLET__CTYPES_9(t, ...) VMLET__CTYPE_##t, VMLET__CTYPES_8(__VA_ARGS__)
#define VMLET__CTYPES_10(t, ...) VMLET__CTYPE_##t, VMLET__CTYPES_9(__VA_ARGS__)
#define VMLET__CTYPES_11(t, ...) VMLET__CTYPE_##t, VMLET__CTYPES_10(__VA_ARGS__)
#define VMLET__CTYPES_12(t, ...) VMLET__CTYPE_##t, VMLET__CTYPES_11(__VA_ARGS__)
#define VMLET__CTYPES_13(t, ...) VMLET__CTYPE_##t, VMLET__CTYPES_12(__VA_ARGS__)
#define VMLET__CTYPES_14(t, ...) VMLET__CTYPE_##t, VMLET__CTYPES_13(__VA_ARGS__)
#define VMLET__CTYPES_15(t, ...) VMLET__CTYPE_##t, VMLET__CTYPES_14(__VA_ARGS__)
#define VMLET__CTYPES_16(t, ...) VMLET__CTYPE_##t, VMLET__CTYPES_15(__VA_ARGS__)

#define VMLET__CNAMES_0() "void"
#define VMLET__CNAMES_1(t) VMLET__CNAME_##t
#define VMLET__CNAMES_2(t, ...) VMLET__CNAME_##t ", " VMLET__CNAMES_1(__VA_ARGS__)
#define VMLET__CNAMES_3(t, ...) VMLET__CNAME_##t ", " VMLET__CNAMES_2(__VA_ARGS__)
#define VMLET__CNAMES_4(t, ...) VMLET__CNAME_##t ", " VMLET__CNAMES_3(__VA_ARGS__)
#define VMLET__CNAMES_5(t, ...) VMLET__CNAME_##t ", " VMLET__CNAMES_4(__VA_ARGS__)
#define VMLET__CNAMES_6(t, ...) VMLET__CNAME_##t ", " VMLET__CNAMES_5(__VA_ARGS__)
#define VMLET__CNAMES_7(t, ...) VMLET__CNAME_##t ", " VMLET__CNAMES_6(__VA_ARGS__)
#define VMLET__CNAMES_8(t, ...) VMLET__CNAME_##t ", " VMLET__CNAMES_7(__VA_ARGS__)
#define VMLET__CNAMES_9(t, ...) VMLET__CNAME_##t ", " VMLET__CNAMES_8(__VA_ARGS__)
#define VMLET__CNAMES_10(t, ...) VMLET__CNAME_##t ", " VMLET__CNAMES_9(__VA_ARGS__)
#define VMLET__CNAMES_11(t, ...) VMLET__CNAME_##t ", " VMLET__CNAMES_10(__VA_ARGS__)
#define VMLET__CNAMES_12(t, ...) VMLET__CNAME_##t ", " VMLET__CNAMES_11(__VA_ARGS__)
#define VMLET__CNAMES_13(t, ...) VMLET__CNAME_##t ", " VMLET__CNAMES_12(__VA_ARGS__)
#define VMLET__CNAMES_14(t, ...) VMLET__CNAME_##t ", " VMLET__CNAMES_13(__VA_ARGS__)
#define VMLET__CNAMES_15(t, ...) VMLET__CNAME_##t ", " VMLET__CNAMES_14(__VA_ARGS__)
#define VMLET__CNAMES_16(t, ...) VMLET__CNAME_##t ", " VMLET__CNAMES_15(__VA_ARGS__)

/* Argument expression lists: position i counts up from 0. */
#define VMLET__ARGS_0(a)
#define VMLET__ARGS_1(a, t1) VMLET__ARG_##t1(a, 0)
#define VMLET__ARGS_2(a, t1, t2) VMLET__ARGS_1(a, t1), VMLET__ARG_##t2(a, 1)
#define VMLET__ARGS_3(a, t1, t2, t3) VMLET__ARGS_2(a, t1, t2), VMLET__ARG_##t3(a, 2)
#define VMLET__ARGS_4(a, t1, t2, t3, t4) VMLET__ARGS_3(a, t1, t2, t3), VMLET__ARG_##t4(a, 3)
#define VMLET__ARGS_5(a, t1, t2, t3, t4, t5) VMLET__ARGS_4(a, t1, t2, t3, t4), VMLET__ARG_##t5(a, 4)
#define VMLET__ARGS_6(a, t1, t2, t3, t4, t5, t6) VMLET__ARGS_5(a, t1, t2, t3, t4, t5), VMLET__ARG_##t6(a, 5)
#define VMLET__ARGS_7(a, t1, t2, t3, t4, t5, t6, t7) \
  VMLET__ARGS_6(a, t1, t2, t3, t4, t5, t6), VMLET__ARG_##t7(a, 6)
#define VMLET__ARGS_8(a, t1, t2, t3, t4, t5, t6, t7, t8) \
  VMLET__ARGS_7(a, t1, t2, t3, t4, t5, t6, t7), VMLET__ARG_##t8(a, 7)
#define VMLET__ARGS_9(a, t1, t2, t3, t4, t5, t6, t7, t8, t9) \
  VMLET__ARGS_8(a, t1, t2, t3, t4, t5, t6, t7, t8), VMLET__ARG_##t9(a, 8)
#define VMLET__ARGS_10(a, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10) \
  VMLET__ARGS_9(a, t1, t2, t3, t4, t5, t6, t7, t8, t9), VMLET__ARG_##t10(a, 9)
#define VMLET__ARGS_11(a, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11) \
  VMLET__ARGS_10(a, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10), VMLET__ARG_##t11(a, 10)
#define VMLET__ARGS_12(a, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12) \
  VMLET__ARGS_11(a, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11), VMLET__ARG_##t12(a, 11)
#define VMLET__ARGS_13(a, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13) \
  VMLET__ARGS_12(a, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12), VMLET__ARG_##t13(a, 12)
#define VMLET__ARGS_14(a, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14) \
  VMLET__ARGS_13(a, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13), VMLET__ARG_##t14(a, 13)
#define VMLET__ARGS_15(a, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15) \
  VMLET__ARGS_14(a, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14), VMLET__ARG_##t15(a, 14)
#define VMLET__ARGS_16(a, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16) \
  VMLET__ARGS_15(a, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15), VMLET__ARG_##t16(a, 15)

/* The function type the tokens declare: RET (P1, P2, ...), or RET (void). */
#define VMLET__FN_TYPE(ret, ...) VMLET__CTYPE_##ret(VMLET__CAT(VMLET__CTYPES_, VMLET__NARGS(__VA_ARGS__))(__VA_ARGS__))
#define VMLET__FN_TYPE_ALT(ret, ...) VMLET__CRET_ALT_##ret(VMLET__CAT(VMLET__CTYPES_, VMLET__NARGS(__VA_ARGS__))(__VA_ARGS__))
#define VMLET__FN_TYPE_TEXT(ret, ...) \
  VMLET__CNAME_##ret " (" VMLET__CAT(VMLET__CNAMES_, VMLET__NARGS(__VA_ARGS__))(__VA_ARGS__) ")"

#ifdef __cplusplus
#define VMLET__STATIC_ASSERT(cond, msg) static_assert(cond, msg)
extern "C++" {
template <typename A, typename B> struct vmlet__same { enum { value = 0 }; };
template <typename A> struct vmlet__same<A, A> { enum { value = 1 }; };
}
#if defined(__cpp_noexcept_function_type)
/* In C++17 noexcept is part of a function's type: a noexcept function matches too. */
#define VMLET__HAS_TYPE(name, F) (vmlet__same<decltype(name), F>::value || vmlet__same<decltype(name), F noexcept>::value)
#else
#define VMLET__HAS_TYPE(name, F) (vmlet__same<decltype(name), F>::value)
#endif
#else
#define VMLET__STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#define VMLET__HAS_TYPE(name, F) __builtin_types_compatible_p(__typeof__(name), F)
#endif

#define VMLET__CHECK_TYPE(name, ret, ...)                                                          \
  VMLET__STATIC_ASSERT(VMLET__HAS_TYPE(name, VMLET__FN_TYPE(ret, ##__VA_ARGS__)) ||                \
                           VMLET__HAS_TYPE(name, VMLET__FN_TYPE_ALT(ret, ##__VA_ARGS__)),          \
                       "VMLET_EXPORT(" #name "): " #name " must have the type "                   \
                       VMLET__FN_TYPE_TEXT(ret, ##__VA_ARGS__) " to match the declared signature")

#define VMLET_EXPORT(name, ret, ...)                                                              \
  VMLET__CHECK_TYPE(name, ret, ##__VA_ARGS__);                                                    \
  static void vmlet__wrap_##name(const vmlet_value *vmlet__a, vmlet_value *vmlet__r) {           \
    (void)vmlet__a;                                                                               \
    VMLET__RET_##ret(vmlet__r, name(VMLET__CAT(VMLET__ARGS_, VMLET__NARGS(__VA_ARGS__))(         \
                                   vmlet__a, ##__VA_ARGS__)));                                    \
  }                                                                                               \
  static const uint8_t vmlet__params_##name[] = {                                                 \
      VMLET__CAT(VMLET__TAGS_, VMLET__NARGS(__VA_ARGS__))(__VA_ARGS__)};                           \
  VMLET__STATIC_ASSERT(VMLET__NARGS(__VA_ARGS__) <= VMLET_MAX_PARAMS, "too many parameters");    \
  __attribute__((used, section("vmlet_fns"), aligned(8))) static const vmlet_fn_entry              \
      vmlet__entry_##name = {#name, vmlet__params_##name, VMLET__NARGS(__VA_ARGS__),              \
                             VMLET__TAG_##ret, vmlet__wrap_##name}

#endif
