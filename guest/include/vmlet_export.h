/*
 * VMLET_EXPORT(name, RET, P1, P2, ...): registers `name` in the guest's function
 * table with its signature and a wrapper that unpacks decoded arguments.
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

#define VMLET_EXPORT(name, ret, ...)                                                              \
  static void vmlet__wrap_##name(const vmlet_value *vmlet__a, vmlet_value *vmlet__r) {           \
    (void)vmlet__a;                                                                               \
    VMLET__RET_##ret(vmlet__r, name(VMLET__CAT(VMLET__ARGS_, VMLET__NARGS(__VA_ARGS__))(         \
                                   vmlet__a, ##__VA_ARGS__)));                                    \
  }                                                                                               \
  static const uint8_t vmlet__params_##name[] = {                                                 \
      VMLET__CAT(VMLET__TAGS_, VMLET__NARGS(__VA_ARGS__))(__VA_ARGS__)};                           \
  _Static_assert(VMLET__NARGS(__VA_ARGS__) <= VMLET_MAX_PARAMS, "too many parameters");          \
  __attribute__((used, section("vmlet_fns"), aligned(8))) static const vmlet_fn_entry              \
      vmlet__entry_##name = {#name, vmlet__params_##name, VMLET__NARGS(__VA_ARGS__),              \
                             VMLET__TAG_##ret, vmlet__wrap_##name}

#endif
