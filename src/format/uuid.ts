/**
 * UUIDs as VHD stores them: 16 bytes, shown in file order as lowercase
 * 8-4-4-4-12 hex. (Windows tools show the first three groups byte-swapped;
 * vhdtool never swaps, so what it prints is what the file holds.)
 */
declare const uuidBrand: unique symbol;
export type Uuid = string & { readonly [uuidBrand]: true };

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const NULL_UUID = '00000000-0000-0000-0000-000000000000' as Uuid;

export function decodeUuid(b: Uint8Array, off: number): Uuid {
  let h = '';
  for (let i = 0; i < 16; i++) {
    h += b[off + i].toString(16).padStart(2, '0');
    if (i === 3 || i === 5 || i === 7 || i === 9) h += '-';
  }
  return h as Uuid;
}

export function encodeUuid(u: Uuid, b: Uint8Array, off: number): void {
  const h = u.replace(/-/g, '');
  for (let i = 0; i < 16; i++) b[off + i] = parseInt(h.slice(i * 2, i * 2 + 2), 16);
}

export function isUuid(s: string): s is Uuid {
  return UUID_RE.test(s);
}

export function parseUuid(s: string): Uuid | null {
  const t = s.toLowerCase();
  return isUuid(t) ? t : null;
}

/** A fresh random (version 4) UUID. */
export function newUuid(): Uuid {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  return decodeUuid(b, 0);
}
