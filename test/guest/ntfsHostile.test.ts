/**
 * Hostile NTFS images: a mkntfs volume with one field broken at a time.
 * Each must give a GuestError or an anomaly, never a crash, a hang or
 * unbounded memory. Also the state gates' byte-level rules.
 */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/guest.js';
import { tempDir } from '../helpers/tmp.js';
import { attrOff, contentOf, editRecord, HAVE_MKNTFS, mkntfs, REC, recOff, scanImage } from '../helpers/ntfsImages.js';
import { GuestError } from '../../src/guest/errors.js';
import { NtfsVolume } from '../../src/guest/ntfs/volume.js';
import { bufferSource } from '../../src/guest/source.js';
import { hiberfileProblem, logfileProblem } from '../../src/guest/ntfs/state.js';
import { lznt1 } from '../../src/guest/ntfs/lznt1.js';

async function rejects(b: Buffer, pattern: RegExp): Promise<void> {
  const p = NtfsVolume.open(bufferSource(new Uint8Array(b))).then((v) => v.scan());
  await expect(p).rejects.toBeInstanceOf(GuestError);
  await expect(p).rejects.toThrow(pattern);
}

describe.skipIf(!HAVE_MKNTFS)('hostile NTFS volumes', () => {
  const dir = tempDir('ntfs-hostile-');
  const img = mkntfs(path.join(dir, 'base.img'), 8 << 20, 4096);
  writeFileSync(path.join(dir, 'payload'), randomBytes(40_000));
  run('ntfscp', ['-q', img, path.join(dir, 'payload'), 'payload']);
  const base = readFileSync(img);
  const fresh = () => Buffer.from(base);
  const PAYLOAD = 64;

  it('the unbroken volume scans clean', async () => {
    const { scan, files } = await scanImage(new Uint8Array(base));
    expect(scan.anomalies).toEqual([]);
    expect(files.find((f) => f.path === 'payload')?.size).toBe(40_000);
  });

  it('a user file whose runlist points past the volume is an anomaly; its content is an error', async () => {
    const b = fresh();
    const a = attrOff(b, PAYLOAD, 0x80);
    const mp = a + b.readUInt16LE(a + 32);
    const lcnBytes = b[mp] >> 4;
    const lenBytes = b[mp] & 15;
    for (let i = 0; i < lcnBytes; i++) b[mp + 1 + lenBytes + i] = 0x7f;
    const { vol, scan, files } = await scanImage(new Uint8Array(b));
    expect(scan.anomalies.map((x) => x.kind)).toContain('bad-runlist');
    expect(scan.anomalies.find((x) => x.kind === 'bad-runlist')?.message).toMatch(/record 64.*outside the volume/);
    expect(scan.anomalies.map((x) => x.kind)).toContain('unowned-allocated');
    const f = files.find((x) => x.path === 'payload')!;
    expect(f.data.isEmpty).toBe(true);
    await expect(contentOf(vol, f)).rejects.toBeInstanceOf(GuestError);
  });

  it('an $MFT record that differs from its $MFTMirr copy is a mirror-mismatch anomaly, as ntfs-3g refuses it', async () => {
    const b = fresh();
    const si = attrOff(b, 2, 0x10);
    b[si + b.readUInt16LE(si + 20) + 8] ^= 1; // $LogFile's modification time, in the $MFT copy only
    const damaged = path.join(dir, 'mirror.img');
    writeFileSync(damaged, b);
    const r = spawnSync('ntfsinfo', ['-m', damaged], { encoding: 'utf8' });
    expect(r.stderr).toMatch(/\$MFTMirr does not match \$MFT \(record 2\)/);
    const { scan } = await scanImage(new Uint8Array(b));
    expect(scan.anomalies).toEqual([{ kind: 'mirror-mismatch', message: '$MFTMirr does not match $MFT for record 2', count: 1 }]);
  });

  it('a user record with a bad fixup is a torn-record anomaly, and is not trusted', async () => {
    const b = fresh();
    b[recOff(b, PAYLOAD) + 510] ^= 0xff;
    const { vol, scan, files } = await scanImage(new Uint8Array(b));
    const torn = scan.anomalies.find((x) => x.kind === 'torn-record');
    expect(torn?.message).toMatch(/MFT record 64 is torn/);
    expect(torn?.ranges?.toArray()).toEqual([[recOff(b, PAYLOAD), recOff(b, PAYLOAD) + REC]]);
    expect(files.some((f) => f.path === 'payload')).toBe(false);
    expect(scan.metadata.covers(recOff(b, PAYLOAD), recOff(b, PAYLOAD) + REC)).toBe(true);
    expect(vol.kind).toBe('ntfs');
  });

  it('$MFT record 0 with a bad fixup is an error', async () => {
    const b = fresh();
    b[recOff(b, 0) + 1022] ^= 0x55;
    await rejects(b, /MFT record 0 is torn/);
  });

  it('a boot sector claiming more sectors than the partition holds is an error', async () => {
    const b = fresh();
    b.writeBigUInt64LE(1n << 40n, 0x28);
    await rejects(b, /do not fit in the partition/);
    const c = fresh();
    c.writeBigUInt64LE(0xffffffffffffffffn, 0x28);
    await rejects(c, /total sector count/);
    await expect(NtfsVolume.open(bufferSource(new Uint8Array(base.subarray(0, 4 << 20))))).rejects.toThrow(/do not fit/);
  });

  it('bad geometry bytes are errors: sector size, cluster size, record size, $MFT cluster', async () => {
    const cases: Array<[(b: Buffer) => void, RegExp]> = [
      [(b) => b.writeUInt16LE(1000, 0x0b), /bytes per sector/],
      [(b) => { b[0x0d] = 3; }, /sectors per cluster/],
      [(b) => { b[0x0d] = 0xf0; }, /cluster size/],
      [(b) => { b[0x40] = 0; }, /MFT record size/],
      [(b) => { b[0x40] = 0xe0; }, /MFT record size/],
      [(b) => b.writeBigUInt64LE(1n << 50n, 0x30), /\$MFT at cluster/],
      [(b) => b.writeBigUInt64LE(123n, 0x30), /record 0 has no FILE signature/],
      [(b) => { b[3] = 0x58; }, /no NTFS signature/],
    ];
    for (const [edit, pattern] of cases) {
      const b = fresh();
      edit(b);
      await rejects(b, pattern);
    }
  });

  it('an $MFT whose runlist claims petabytes is an error, read nowhere', async () => {
    const b = fresh();
    editRecord(b, 0, (rec) => {
      let p = rec.readUInt16LE(20);
      while (rec.readUInt32LE(p) !== 0x80) p += rec.readUInt32LE(p + 4);
      const mp = p + rec.readUInt16LE(p + 32);
      // One run of 2^40 clusters at cluster 4 (5-byte length, 1-byte LCN), and a matching VCN range.
      Buffer.from([0x15, 0, 0, 0, 0, 1, 4, 0]).copy(rec, mp);
      rec.writeBigUInt64LE((1n << 40n) - 1n, p + 24);
    });
    await rejects(b, /outside the volume/);
  });

  it('an $MFT size beyond its runs is an error', async () => {
    const b = fresh();
    editRecord(b, 0, (rec) => {
      let p = rec.readUInt16LE(20);
      while (rec.readUInt32LE(p) !== 0x80) p += rec.readUInt32LE(p + 4);
      rec.writeBigUInt64LE(1n << 45n, p + 40);
      rec.writeBigUInt64LE(1n << 45n, p + 48);
      rec.writeBigUInt64LE(1n << 45n, p + 56);
    });
    await rejects(b, /more than its runs map/);
  });

  it('an attribute list that names its own record again and again, and a record of another file, cannot loop', async () => {
    const b = fresh();
    editRecord(b, PAYLOAD, (rec) => {
      const seq = rec.readUInt16LE(16);
      const entry = (record: number) => {
        const e = Buffer.alloc(32);
        e.writeUInt32LE(0x80, 0);
        e.writeUInt16LE(32, 4);
        e[7] = 26;
        e.writeUIntLE(record, 16, 6);
        e.writeUInt16LE(record === PAYLOAD ? seq : 1, 22);
        return e;
      };
      const value = Buffer.concat([entry(PAYLOAD), entry(PAYLOAD), entry(PAYLOAD), entry(0)]);
      const attr = Buffer.alloc(24 + value.length);
      attr.writeUInt32LE(0x20, 0);
      attr.writeUInt32LE(attr.length, 4);
      attr.writeUInt16LE(24, 10);
      attr.writeUInt16LE(9, 14);
      attr.writeUInt32LE(value.length, 16);
      attr.writeUInt16LE(24, 20);
      value.copy(attr, 24);
      const first = rec.readUInt16LE(20);
      const at = first + rec.readUInt32LE(first + 4); // after $STANDARD_INFORMATION
      const used = rec.readUInt32LE(24);
      rec.copy(rec, at + attr.length, at, used);
      attr.copy(rec, at);
      rec.writeUInt32LE(used + attr.length, 24);
    });
    const { vol, scan, files } = await scanImage(new Uint8Array(b));
    expect(scan.anomalies).toEqual([]);
    const f = files.find((x) => x.path === 'payload')!;
    await expect(contentOf(vol, f)).rejects.toThrow(/names record 0, which belongs to record 0 \(sequence 0\)/);
  });

  it('a parent reference loop makes orphans, not a hang', async () => {
    const b = fresh();
    // $Extend (record 11, a directory) made its own parent.
    const fn = attrOff(b, 11, 0x30);
    const v = fn + b.readUInt16LE(fn + 20);
    b.writeUIntLE(11, v, 6);
    b.writeUInt16LE(b.readUInt16LE(recOff(b, 11) + 16), v + 6);
    const { scan, files } = await scanImage(new Uint8Array(b));
    const orphan = scan.anomalies.find((x) => x.kind === 'orphan');
    expect(orphan?.message).toMatch(/record 11 .*loop/);
    expect(files.find((f) => f.path.endsWith('$Quota'))?.path).toBe('$OrphanFiles/$Extend/$Quota');
  });

  it('a file whose parent is not a directory is an orphan', async () => {
    const b = fresh();
    const fn = attrOff(b, PAYLOAD, 0x30);
    const v = fn + b.readUInt16LE(fn + 20);
    b.writeUIntLE(4, v, 6); // parent: $AttrDef, a file
    b.writeUInt16LE(b.readUInt16LE(recOff(b, 4) + 16), v + 6);
    const { scan, files } = await scanImage(new Uint8Array(b));
    expect(scan.anomalies.find((x) => x.kind === 'orphan')?.message).toMatch(/record 64 .*not a directory/);
    expect(files.find((f) => f.path.endsWith('payload'))?.path).toBe('$OrphanFiles/payload');
    expect(scan.fileData.bytes).toBe(40_960);
  });

  it('$Bitmap shorter than the cluster count needs is an error', async () => {
    const b = fresh();
    editRecord(b, 6, (rec) => {
      let p = rec.readUInt16LE(20);
      while (rec.readUInt32LE(p) !== 0x80) p += rec.readUInt32LE(p + 4);
      rec.writeBigUInt64LE(8n, p + 48);
      rec.writeBigUInt64LE(8n, p + 56);
    });
    await rejects(b, /\$Bitmap holds 8 bytes/);
  });

  it('a cluster claimed by two files is double-owned; a claimed cluster marked free is owned-but-free', async () => {
    const b = fresh();
    // $AttrDef's runlist made to point at the payload's first cluster, then that cluster marked free in $Bitmap.
    const pay = attrOff(b, PAYLOAD, 0x80);
    const payMp = pay + b.readUInt16LE(pay + 32);
    const lcn = b.readUIntLE(payMp + 1 + (b[payMp] & 15), b[payMp] >> 4);
    const ad = attrOff(b, 4, 0x80);
    const adMp = ad + b.readUInt16LE(ad + 32);
    expect(b[adMp] >> 4).toBeGreaterThanOrEqual(2);
    b.writeUIntLE(lcn, adMp + 1 + (b[adMp] & 15), b[adMp] >> 4);
    const bm = attrOff(b, 6, 0x80);
    const bmLcn = b.readUIntLE(bm + b.readUInt16LE(bm + 32) + 1 + (b[bm + b.readUInt16LE(bm + 32)] & 15), 2);
    const byteAt = bmLcn * 4096 + (lcn >> 3);
    b[byteAt] &= ~(1 << (lcn & 7));
    const { scan } = await scanImage(new Uint8Array(b));
    const kinds = scan.anomalies.map((x) => x.kind);
    expect(kinds).toContain('double-owned');
    expect(kinds).toContain('owned-but-free');
    expect(scan.anomalies.find((x) => x.kind === 'double-owned')?.message).toMatch(/\$AttrDef and payload|payload and \$AttrDef/);
  });

  it('random damage to the $MFT gives a GuestError or anomalies, never another failure', async () => {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let round = 0; round < 60; round++) {
      const b = fresh();
      const start = recOff(b, 0);
      for (let k = 0; k < 40; k++) b[start + Math.floor(rnd() * 70 * REC)] = Math.floor(rnd() * 256);
      try {
        const { vol, files } = await scanImage(new Uint8Array(b));
        for (const f of files.filter((x) => x.size < 1 << 20).slice(0, 30)) await contentOf(vol, f).catch((e) => { if (!(e instanceof GuestError)) throw e; });
      } catch (e) {
        if (!(e instanceof GuestError)) throw e;
      }
    }
  });
});

describe('LZNT1 on hostile bytes', () => {
  it('random compressed units give output or a GuestError, never more than the unit, never another failure', () => {
    let seed = 99;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let round = 0; round < 2000; round++) {
      const src = new Uint8Array(1 + Math.floor(rnd() * 9000)).map(() => Math.floor(rnd() * 256));
      if (round % 2) { src[0] = 0xff; src[1] = 0xbf; } // a compressed chunk header
      const out = new Uint8Array(16384);
      try {
        expect(lznt1(src, out)).toBeLessThanOrEqual(out.length);
      } catch (e) {
        if (!(e instanceof GuestError)) throw e;
      }
    }
  });

  it('a stored (uncompressed) chunk and a back-reference decode as the format says', () => {
    const out = new Uint8Array(64);
    // A stored chunk of 4 bytes: header 0x3003 (signature 3 in bits 12..14, bytes − 1 in bits 0..11, bit 15 clear).
    expect(lznt1(Uint8Array.of(0x03, 0x30, 0x61, 0x62, 0x63, 0x64), out)).toBe(4);
    expect(Buffer.from(out.subarray(0, 4)).toString()).toBe('abcd');
    // Compressed chunk: flags 0b0100, literals 'a','b', then a back-reference of offset 2, length 6 (token (1 << 12) | 3), then 'c'.
    const out2 = new Uint8Array(64);
    const n = lznt1(Uint8Array.of(0x05, 0xb0, 0x04, 0x61, 0x62, 0x03, 0x10, 0x63), out2);
    expect(Buffer.from(out2.subarray(0, n)).toString()).toBe('ababababc');
  });
});

describe('state gates on bytes', () => {
  /** A restart page as Windows writes it: RSTR, one 512-byte stride per sector, a restart area at 0x30. */
  function restartPage(size: number, lsn: bigint, inUse: number, flags: number): Buffer {
    const p = Buffer.alloc(size);
    p.write('RSTR', 0, 'latin1');
    p.writeUInt16LE(0x1e, 4);
    p.writeUInt16LE(size / 512 + 1, 6);
    p.writeUInt32LE(size, 16);
    p.writeUInt32LE(4096, 20);
    p.writeUInt16LE(0x30, 24);
    p.writeUInt16LE(1, 26);
    p.writeUInt16LE(1, 28);
    p.writeBigUInt64LE(lsn, 0x30);
    p.writeUInt16LE(1, 0x38);
    p.writeUInt16LE(0xffff, 0x3a);
    p.writeUInt16LE(inUse, 0x3c);
    p.writeUInt16LE(flags, 0x3e);
    p.writeUInt16LE(7, 0x1e); // update sequence number, then every stride's end
    for (let i = 1; i <= size / 512; i++) p.writeUInt16LE(7, i * 512 - 2);
    return p;
  }

  it('an empty (all 0xFF) log is clean; an open log without RESTART_VOLUME_IS_CLEAN is not; the newer restart page counts', () => {
    expect(logfileProblem(new Uint8Array(8192).fill(0xff))).toBeNull();
    expect(logfileProblem(Buffer.concat([restartPage(4096, 10n, 0, 2), restartPage(4096, 9n, 0, 2)]))).toBeNull();
    expect(logfileProblem(Buffer.concat([restartPage(4096, 10n, 0, 0), restartPage(4096, 9n, 0, 2)]))).toMatch(/not closed cleanly/);
    expect(logfileProblem(Buffer.concat([restartPage(4096, 10n, 0, 0), restartPage(4096, 11n, 0, 2)]))).toBeNull();
    expect(logfileProblem(Buffer.concat([restartPage(4096, 10n, 0xffff, 0), restartPage(4096, 9n, 0xffff, 0)]))).toBeNull();
    const torn = restartPage(4096, 10n, 0, 2);
    torn.writeUInt16LE(8, 1022);
    expect(logfileProblem(Buffer.concat([torn, Buffer.alloc(4096)]))).toMatch(/no valid restart page/);
    expect(logfileProblem(new Uint8Array(8192))).toMatch(/no valid restart page/);
  });

  it('hiberfil.sys: "hibr"/"HIBR" and a file shorter than its header are hibernation; "wake" and zeros are not', () => {
    const head = (s: string) => Buffer.concat([Buffer.from(s, 'latin1'), Buffer.alloc(4092)]);
    expect(hiberfileProblem(head('hibr'), 1 << 30)).toMatch(/hibr/);
    expect(hiberfileProblem(head('HIBR'), 1 << 30)).toMatch(/Fast Startup/);
    expect(hiberfileProblem(head('wake'), 1 << 30)).toBeNull();
    expect(hiberfileProblem(Buffer.alloc(4096), 1 << 30)).toBeNull();
    expect(hiberfileProblem(Buffer.alloc(100), 100)).toMatch(/shorter/);
  });
});
