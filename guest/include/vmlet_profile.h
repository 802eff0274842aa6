/*
 * Memory-profile table of a guest built with profiling on (VMLET_PROFILE=1; docs/debugging.md).
 * guest/src/profile.c keeps one record per allocation site (a stack of return addresses) in
 * the global `vmlet__profile`, in guest memory: snapshots keep it, and the host finds it
 * through the guest ELF's symbol table and reads it (src/debug/profile-table.ts mirrors these
 * constants; test/memory-profile.test.ts pins them). Little-endian; byte offsets.
 */
#ifndef VMLET_PROFILE_H
#define VMLET_PROFILE_H

#define VMLET_PROFILE_MAGIC 0x464f5250u /* "PROF" */
#define VMLET_PROFILE_VERSION 1u
#define VMLET_PROFILE_SITES 1024u /* slot 0 collects what has no slot: table full, or no stack */
#define VMLET_PROFILE_DEPTH 32u   /* return addresses kept per site, innermost first */

/* Table header, written once at start-up. */
#define VMLET_PROF_MAGIC 0      /* u32 */
#define VMLET_PROF_VERSION 4    /* u32 */
#define VMLET_PROF_SITES 8      /* u32, number of site slots */
#define VMLET_PROF_DEPTH 12     /* u32, return addresses per slot */
#define VMLET_PROF_SITE_SIZE 16 /* u32, bytes per slot */
#define VMLET_PROF_USED 20      /* u32, slots in use */
#define VMLET_PROF_HEADER_SIZE 24

/* One site slot; an unused slot is all zeros. */
#define VMLET_PROF_ALLOC_OBJECTS 0 /* u64 */
#define VMLET_PROF_ALLOC_BYTES 8   /* u64, bytes asked for */
#define VMLET_PROF_INUSE_OBJECTS 16 /* u64 */
#define VMLET_PROF_INUSE_BYTES 24  /* u64 */
#define VMLET_PROF_FRAMES 32       /* u32, return addresses in use */
#define VMLET_PROF_HASH 36         /* u32 */
#define VMLET_PROF_PCS 40          /* u64[VMLET_PROFILE_DEPTH] */
#define VMLET_PROF_SITE_SIZE_BYTES (VMLET_PROF_PCS + 8 * VMLET_PROFILE_DEPTH)

#endif
