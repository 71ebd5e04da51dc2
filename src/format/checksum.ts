/**
 * The VHD checksum (spec: "one's complement of the sum of all the bytes in the
 * footer without the checksum field"). Used for the footer and the dynamic
 * header; the caller names where the checksum field lies.
 */
export function vhdChecksum(bytes: Uint8Array, checksumOffset: number, length = bytes.length): number {
  let sum = 0;
  for (let i = 0; i < length; i++) {
    if (i >= checksumOffset && i < checksumOffset + 4) continue;
    sum += bytes[i];
  }
  return ~sum >>> 0;
}
