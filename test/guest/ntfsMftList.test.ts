/**
 * An $MFT whose own extents are described through its attribute list: the
 * $DATA of record 0 split in two, the second extent moved into extension
 * record 16, and an $ATTRIBUTE_LIST added to record 0 (as Windows does when
 * the $MFT's runlist no longer fits its record). Built by hand from a
 * mkntfs volume; ntfsinfo and Sleuth Kit read the result as the oracle.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/guest.js';
import { tempDir } from '../helpers/tmp.js';
import { attrOff, diffWithTsk, editRecord, HAVE_MKNTFS, HAVE_TSK, mkntfs, REC, recOff, scanImage } from '../helpers/ntfsImages.js';
import { GuestError } from '../../src/guest/errors.js';
import { NtfsVolume } from '../../src/guest/ntfs/volume.js';
import { bufferSource } from '../../src/guest/source.js';

const SPLIT = 5; // clusters of the $MFT kept in record 0 (4 KiB clusters: records 0..19)
const EXT = 16;

/** A list entry (32 bytes) for attribute `type` at `vcn` in `record`. */
function entry(type: number, record: number, seq: number, vcn: number, instance: number): Buffer {
  const e = Buffer.alloc(32);
  e.writeUInt32LE(type, 0);
  e.writeUInt16LE(32, 4);
  e[7] = 26;
  e.writeBigUInt64LE(BigInt(vcn), 8);
  e.writeUIntLE(record, 16, 6);
  e.writeUInt16LE(seq, 22);
  e.writeUInt16LE(instance, 24);
  return e;
}

/** Splits the $MFT's $DATA of a fresh 4 KiB-cluster mkntfs image between record 0 and record `ext`. */
function splitMft(b: Buffer, ext = EXT): void {
  const data = attrOff(b, 0, 0x80);
  const mp = data + b.readUInt16LE(data + 32);
  if (b[mp] !== 0x11) throw new Error('expected a one-run $MFT runlist with 1-byte fields');
  const clusters = b[mp + 1];
  const lcn = b[mp + 2];
  if (clusters <= SPLIT) throw new Error('$MFT too small to split');
  const seq0 = b.readUInt16LE(recOff(b, 0) + 16);
  editRecord(b, 0, (rec) => {
    const inst = (type: number) => {
      let p = rec.readUInt16LE(20);
      while (rec.readUInt32LE(p) !== type) p += rec.readUInt32LE(p + 4);
      return [p, rec.readUInt16LE(p + 14)];
    };
    const [d, dInst] = inst(0x80);
    rec.writeBigUInt64LE(BigInt(SPLIT - 1), d + 24);
    Buffer.from([0x11, SPLIT, lcn, 0]).copy(rec, d + rec.readUInt16LE(d + 32));
    const list = Buffer.concat([
      entry(0x10, 0, seq0, 0, inst(0x10)[1]),
      entry(0x30, 0, seq0, 0, inst(0x30)[1]),
      entry(0x80, 0, seq0, 0, dInst),
      entry(0x80, ext, 1, SPLIT, 0),
      entry(0xb0, 0, seq0, 0, inst(0xb0)[1]),
    ]);
    const attr = Buffer.alloc(24 + list.length);
    attr.writeUInt32LE(0x20, 0);
    attr.writeUInt32LE(attr.length, 4);
    attr.writeUInt16LE(24, 10);
    attr.writeUInt16LE(rec.readUInt16LE(40), 14);
    rec.writeUInt16LE(rec.readUInt16LE(40) + 1, 40);
    attr.writeUInt32LE(list.length, 16);
    attr.writeUInt16LE(24, 20);
    list.copy(attr, 24);
    const first = rec.readUInt16LE(20);
    const at = first + rec.readUInt32LE(first + 4);
    const used = rec.readUInt32LE(24);
    rec.copy(rec, at + attr.length, at, used);
    attr.copy(rec, at);
    rec.writeUInt32LE(used + attr.length, 24);
  });
  // $MFTMirr keeps a copy of record 0.
  const cs0 = b.readUInt16LE(0x0b) * b[0x0d];
  b.copy(b, Number(b.readBigUInt64LE(0x38)) * cs0, recOff(b, 0), recOff(b, 0) + REC);
  // The extension record, written whole.
  const r = recOff(b, ext);
  const rec = Buffer.alloc(REC);
  rec.write('FILE', 0, 'latin1');
  rec.writeUInt16LE(0x30, 4);
  rec.writeUInt16LE(REC / 512 + 1, 6);
  rec.writeUInt16LE(1, 16);
  rec.writeUInt16LE(0x38, 20);
  rec.writeUInt16LE(1, 22);
  rec.writeUInt32LE(0x88, 24);
  rec.writeUInt32LE(REC, 28);
  rec.writeUInt16LE(seq0, 32 + 6);
  rec.writeUInt16LE(1, 40);
  rec.writeUInt32LE(ext, 44);
  rec.writeUInt16LE(1, 0x30);
  const a = 0x38;
  rec.writeUInt32LE(0x80, a);
  rec.writeUInt32LE(72, a + 4);
  rec[a + 8] = 1;
  rec.writeUInt16LE(0x40, a + 10);
  rec.writeBigUInt64LE(BigInt(SPLIT), a + 16);
  rec.writeBigUInt64LE(BigInt(clusters - 1), a + 24);
  rec.writeUInt16LE(0x40, a + 32);
  Buffer.from([0x11, clusters - SPLIT, lcn + SPLIT, 0]).copy(rec, a + 0x40);
  rec.writeUInt32LE(0xffffffff, a + 72);
  for (let i = 1; i <= REC / 512; i++) {
    rec.writeUInt16LE(rec.readUInt16LE(i * 512 - 2), 0x30 + 2 * i);
    rec.writeUInt16LE(1, i * 512 - 2);
  }
  rec.copy(b, r);
  // Mark the record in use in the $MFT's own bitmap.
  const bm = attrOff(b, 0, 0xb0);
  const bmMp = bm + b.readUInt16LE(bm + 32);
  const cs = b.readUInt16LE(0x0b) * b[0x0d];
  b[b.readUIntLE(bmMp + 1 + (b[bmMp] & 15), b[bmMp] >> 4) * cs + (ext >> 3)] |= 1 << (ext & 7);
}

describe.skipIf(!HAVE_MKNTFS)('an $MFT described through its own attribute list', () => {
  const dir = tempDir('ntfs-mftlist-');
  const img = mkntfs(path.join(dir, 'base.img'), 8 << 20, 4096);
  writeFileSync(path.join(dir, 'payload'), randomBytes(20_000));
  run('ntfscp', ['-q', img, path.join(dir, 'payload'), 'payload']);
  const base = readFileSync(img);

  it('is followed into its extension record; the volume reads as before, as ntfsinfo and Sleuth Kit see it', async () => {
    const b = Buffer.from(base);
    splitMft(b);
    const split = path.join(dir, 'split.img');
    writeFileSync(split, b);
    const info = run('ntfsinfo', ['-v', '-i', '0', split]);
    expect(info).toContain('Dumping attribute $ATTRIBUTE_LIST');
    expect(info).toMatch(/Dumping attribute \$DATA \(0x80\) from mft record 16/);
    const before = await scanImage(new Uint8Array(base));
    const after = await scanImage(new Uint8Array(b));
    expect(after.scan.anomalies).toEqual([]);
    expect(after.files.map((f) => [f.path, f.data.toArray()])).toEqual(before.files.map((f) => [f.path, f.data.toArray()]));
    expect(after.scan.free.equals(before.scan.free)).toBe(true);
    const mft = after.files.find((f) => f.path === '$MFT')!;
    expect(mft.meta.covers(recOff(b, EXT), recOff(b, EXT) + REC)).toBe(true);
    if (HAVE_TSK) expect(diffWithTsk(split, after.scan, after.files, 4096)).toEqual([]);
  });

  it('an extension record whose base sequence is stale is not trusted with the $MFT\'s extents', async () => {
    const b = Buffer.from(base);
    splitMft(b);
    editRecord(b, EXT, (rec) => rec.writeUInt16LE(7, 32 + 6));
    const p = NtfsVolume.open(bufferSource(new Uint8Array(b)));
    await expect(p).rejects.toBeInstanceOf(GuestError);
    await expect(p).rejects.toThrow(/names record 16, which belongs to record 0 \(sequence 7\)/);
  });

  it('an extension record the known extents cannot reach is an error', async () => {
    const b = Buffer.from(base);
    splitMft(b, 24); // record 24 lies in the second extent, which only it describes
    const p = NtfsVolume.open(bufferSource(new Uint8Array(b)));
    await expect(p).rejects.toBeInstanceOf(GuestError);
    await expect(p).rejects.toThrow(/extension record 24 lies in a part of the \$MFT no known extent maps/);
  });
});
