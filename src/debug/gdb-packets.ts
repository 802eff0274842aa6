/**
 * GDB Remote Serial Protocol framing: `$<data>#<checksum>` packets, `+`/`-` acknowledgements
 * and the interrupt byte 0x03. A connection feeds bytes in and gets whole packets (or
 * interrupts) out; replies are framed with `frame()`. Nothing here knows what a packet means.
 */

export type Incoming = { readonly kind: "packet"; readonly data: string } | { readonly kind: "interrupt" };

/** Longest packet accepted from gdb: PacketSize in our qSupported reply, with room for framing. */
export const MAX_PACKET = 0x4000;

export class PacketReader {
  private buffer = "";

  /** Bytes from the socket; returns complete packets and interrupts, in order. Bad checksums are dropped (gdb resends on `-`). */
  push(chunk: string): { incoming: Incoming[]; nacks: number } {
    this.buffer += chunk;
    const incoming: Incoming[] = [];
    let nacks = 0;
    for (;;) {
      const start = this.nextStart(incoming);
      if (start < 0) break;
      const hash = this.buffer.indexOf("#", start);
      if (hash < 0 || hash + 3 > this.buffer.length) {
        if (this.buffer.length - start > MAX_PACKET) this.buffer = ""; // a runaway packet: drop it
        break;
      }
      const data = this.buffer.slice(start + 1, hash);
      const sum = Number.parseInt(this.buffer.slice(hash + 1, hash + 3), 16);
      this.buffer = this.buffer.slice(hash + 3);
      if (sum === checksum(data)) incoming.push({ kind: "packet", data: unescape(data) });
      else nacks++;
    }
    return { incoming, nacks };
  }

  /** Skips acks and noise up to the next `$`, turning 0x03 bytes into interrupts. */
  private nextStart(incoming: Incoming[]): number {
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c === "$") {
        this.buffer = this.buffer.slice(i);
        return 0;
      }
      if (c === "\x03") incoming.push({ kind: "interrupt" });
    }
    this.buffer = "";
    return -1;
  }
}

export function frame(data: string): string {
  return `$${data}#${checksum(data).toString(16).padStart(2, "0")}`;
}

function checksum(data: string): number {
  let sum = 0;
  for (let i = 0; i < data.length; i++) sum = (sum + data.charCodeAt(i)) & 0xff;
  return sum;
}

/** `}` escapes the next byte (xor 0x20) in binary packets. */
function unescape(data: string): string {
  if (!data.includes("}")) return data;
  let out = "";
  for (let i = 0; i < data.length; i++) {
    out += data[i] === "}" && i + 1 < data.length ? String.fromCharCode(data.charCodeAt(++i) ^ 0x20) : data[i];
  }
  return out;
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

export function fromHex(hex: string): Uint8Array | undefined {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** A little-endian register value as gdb's hex. */
export function leHex(value: bigint, bytes: number): string {
  const out = new Uint8Array(bytes);
  let v = value;
  for (let i = 0; i < bytes; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return toHex(out);
}

export function fromLeHex(hex: string): bigint | undefined {
  const bytes = fromHex(hex);
  if (!bytes) return undefined;
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}
