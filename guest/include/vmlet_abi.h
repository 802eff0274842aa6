/*
 * vmlet guest <-> host ABI constants (wire format version 1).
 * Mirrored in src/abi/constants.ts and pinned by test/abi-constants.test.ts;
 * docs/abi.md describes the format. Change both sides together.
 */
#ifndef VMLET_ABI_H
#define VMLET_ABI_H

#define VMLET_ABI_VERSION 1u

/* Guest physical = guest virtual. Fixed addresses shared by host and guest. */
#define VMLET_CONTROL_BLOCK_ADDR 0x10000ull
#define VMLET_IMAGE_BASE 0x100000ull

/* Ports the CPL-3 guest leaves through (`out %al, $port`). */
#define VMLET_PORT_READY 0x10     /* call returned (or init done); output buffer holds a RETURN */
#define VMLET_PORT_HOST_CALL 0x11 /* output buffer holds a HOST_CALL */
#define VMLET_PORT_LOG 0x12       /* output buffer holds a LOG record */
#define VMLET_PORT_ABORT 0x13     /* output buffer holds an ABORT record */
/* Ports 0x20..0x3f are the CPL-0 fault stubs, one per exception vector. */
#define VMLET_PORT_FAULT_BASE 0x20

#define VMLET_CONTROL_MAGIC 0x544c4d56u /* "VMLT" */
#define VMLET_MESSAGE_MAGIC 0x4d4c4d56u /* "VMLM" */

/* Control block layout (byte offsets). Host-written unless noted. */
#define VMLET_CB_MAGIC 0x00         /* u32 */
#define VMLET_CB_ABI_VERSION 0x04   /* u32 */
#define VMLET_CB_INPUT_ADDR 0x08    /* u64 */
#define VMLET_CB_INPUT_SIZE 0x10    /* u32 */
#define VMLET_CB_OUTPUT_SIZE 0x14   /* u32 */
#define VMLET_CB_OUTPUT_ADDR 0x18   /* u64 */
#define VMLET_CB_HEAP_ADDR 0x20     /* u64 */
#define VMLET_CB_HEAP_SIZE 0x28     /* u64 */
#define VMLET_CB_MAX_LOG_LEVEL 0x30 /* u32, read by the guest before every log record */
#define VMLET_CB_FPU_XSAVE_MASK 0x34 /* u32, read by vmlet__ready: 0 = fxsave64, else xsave64 of these components */
#define VMLET_CB_RNG_SEED 0x38      /* u64 */
#define VMLET_CB_RNG_GENERATION 0x40 /* u64, guest reseeds when it changes */
#define VMLET_CB_FN_TABLE_ADDR 0x48 /* u64, guest-written at init */
#define VMLET_CB_FN_COUNT 0x50      /* u32, guest-written at init */
#define VMLET_CB_GUEST_ABI 0x54     /* u32, guest-written at init */
#define VMLET_CB_HEAP_USED 0x58     /* u64, guest-written: heap bytes in use (block headers included) */
#define VMLET_CB_HEAP_PEAK 0x60     /* u64, guest-written: the most heap_used has been */
#define VMLET_CB_SIZE 0x68

/* Message header (24 bytes) at the start of the input or output buffer. */
#define VMLET_MSG_MAGIC 0   /* u32 */
#define VMLET_MSG_VERSION 4 /* u16 */
#define VMLET_MSG_KIND 6    /* u16 */
#define VMLET_MSG_LENGTH 8  /* u32, total bytes including header */
#define VMLET_MSG_COUNT 12  /* u32, number of values */
#define VMLET_MSG_A 16      /* u32, kind-specific (function index, status) */
#define VMLET_MSG_B 20      /* u32, kind-specific (return type, level, abort code) */
#define VMLET_MSG_HEADER_SIZE 24

/* Message kinds. */
#define VMLET_MSG_CALL 1        /* host->guest, input:  A=function index, values=args */
#define VMLET_MSG_RETURN 2      /* guest->host, output: A=status, values=[result] or [error text] */
#define VMLET_MSG_HOST_CALL 3   /* guest->host, output: B=return type, values=[name, args...] */
#define VMLET_MSG_HOST_RETURN 4 /* host->guest, output: A=status, values=[result] or [error text] */
#define VMLET_MSG_LOG 5         /* guest->host, output: B=level, values=[message, file, line] */
#define VMLET_MSG_ABORT 6       /* guest->host, output: B=abort code, values=[message, file, line] */

/* RETURN status. */
#define VMLET_STATUS_OK 0
#define VMLET_STATUS_UNKNOWN_FUNCTION 1
#define VMLET_STATUS_BAD_ARGUMENTS 2
#define VMLET_STATUS_MALFORMED 3
#define VMLET_STATUS_RESULT_TOO_LARGE 4
/* HOST_RETURN status. */
#define VMLET_HOST_OK 0
#define VMLET_HOST_THREW 1
#define VMLET_HOST_MISSING 2
#define VMLET_HOST_SIGNATURE 3
#define VMLET_HOST_CANCELLED 4
#define VMLET_HOST_TOO_LARGE 5 /* guest-side: the request does not fit the output buffer */

/* ABORT codes. */
#define VMLET_ABORT_PANIC 0
#define VMLET_ABORT_OUT_OF_MEMORY 1
#define VMLET_ABORT_PROTOCOL 2

/* Each value: u32 tag, u32 length, payload padded to 8 bytes. Scalars have length 8. */
#define VMLET_VALUE_HEADER_SIZE 8

/* Value type tags. */
#define VMLET_T_VOID 0
#define VMLET_T_I32 1
#define VMLET_T_U32 2
#define VMLET_T_I64 3
#define VMLET_T_U64 4
#define VMLET_T_F32 5
#define VMLET_T_F64 6
#define VMLET_T_BOOL 7
#define VMLET_T_STRING 8 /* length includes the terminating NUL */
#define VMLET_T_BYTES 9

#define VMLET_MAX_PARAMS 16
#define VMLET_MAX_NAME 128

/* Log levels (lower is more severe). */
#define VMLET_LOG_ERROR 1
#define VMLET_LOG_WARN 2
#define VMLET_LOG_INFO 3
#define VMLET_LOG_DEBUG 4
#define VMLET_LOG_TRACE 5



/* Function table entry (guest memory, 32 bytes), read by the host after init. */
#define VMLET_FN_ENTRY_NAME 0      /* u64 address of NUL-terminated name */
#define VMLET_FN_ENTRY_PARAMS 8    /* u64 address of n_params type tags (u8) */
#define VMLET_FN_ENTRY_NPARAMS 16  /* u32 */
#define VMLET_FN_ENTRY_RET 20      /* u32 return type tag */
#define VMLET_FN_ENTRY_WRAPPER 24  /* u64, guest-internal */
#define VMLET_FN_ENTRY_SIZE 32
#endif
