/**
 * Where each user XSAVE component lives in the standard (non-compacted) format, by XCR0 bit:
 * architectural offsets, the same on every x86-64 CPU (CPUID leaf 0xD reports them). Bits 0
 * and 1 (x87, SSE) share the legacy area, bytes 0–511; the 64-byte header follows.
 */
export const XSAVE_COMPONENTS: ReadonlyMap<number, { readonly offset: number; readonly size: number }> = new Map([
  [2, { offset: 576, size: 256 }], // AVX: upper halves of YMM0–15
  [3, { offset: 960, size: 64 }], // MPX bound registers
  [4, { offset: 1024, size: 64 }], // MPX BNDCFGU/BNDSTATUS
  [5, { offset: 1088, size: 64 }], // AVX-512 opmask k0–k7
  [6, { offset: 1152, size: 512 }], // AVX-512 upper halves of ZMM0–15
  [7, { offset: 1664, size: 1024 }], // AVX-512 ZMM16–31
  [9, { offset: 2688, size: 8 }], // PKRU
]);

/** End of the legacy area plus header: where the extended components start. */
export const XSAVE_HEADER_END = 576;
