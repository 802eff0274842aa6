/* Closes what vmlet_c_begin.h opened (no include guard on purpose). */
#ifdef __cplusplus
}
#pragma pop_macro("_Noreturn")
#pragma pop_macro("restrict")
#endif
