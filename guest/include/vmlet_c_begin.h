/* Opens the declarations of an SDK libc header (paired with vmlet_c_end.h, which closes
 * them; no include guard on purpose). For C++ guests: C linkage, so calls reach the SDK's C
 * functions, and the C11 spellings the headers use mapped to C++ ones for the header only. */
#ifdef __cplusplus
#pragma push_macro("restrict")
#pragma push_macro("_Noreturn")
#define restrict __restrict
#define _Noreturn [[noreturn]]
extern "C" {
#endif
