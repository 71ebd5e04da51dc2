/**
 * Damaged and hostile FAT volumes: real mkfs.fat + mtools volumes with
 * bytes changed by hand. Each gives a clear GuestError or a named anomaly,
 * never a hang, a crash or a wrong map; where fsck.fat sees the damage it
 * is asked too.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { GuestError } from '../../src/guest/errors.js';
import { looksLikeFat, parseBootSector, type FatGeometry } from '../../src/guest/fat/bpb.js';
import { bufferSource } from '../../src/guest/source.js';
import type { GuestFile } from '../../src/guest/volume.js';
import { HAVE_MKFS_FAT, HAVE_MTOOLS } from '../helpers/guest.js';
import { tempDir } from '../helpers/tmp.js';
import { HAVE_FSCK_FAT, clustersOf, contentOf, fsckFat, mkfat, mt, partitionProblems, scanSource, type FatSpec, type Scanned } from './fatTools.js';

const READY = HAVE_MKFS_FAT && HAVE_MTOOLS && HAVE_FSCK_FAT;
const MiB = 1024 * 1024;

interface Base {
  bytes: Uint8Array;
  g: FatGeometry;
  /** The clean scan's files by path. */
  files: Map<string, GuestFile>;
}

/** FAT16, 2 KiB clusters: ONE.BIN (3 clusters), TWO.BIN (2), A long file name.bin (2), DIR/SUB/DEEP.TXT. */
async function makeBase(dir: string, spec: FatSpec): Promise<Base> {
  const img = mkfat(path.join(dir, `base${spec.fat}.img`), spec);
  const cs = spec.sectorsPerCluster * 512;
  const local = (name: string, n: number) => {
    const p = path.join(dir, name);
    writeFileSync(p, Buffer.alloc(n, name.charCodeAt(0)));
    return p;
  };
  mt.mmd(img, 'DIR', 'DIR/SUB');
  mt.mcopy(img, local('one', 3 * cs), 'ONE.BIN');
  mt.mcopy(img, local('two', 2 * cs - 5), 'TWO.BIN');
  mt.mcopy(img, local('long', cs + 1), 'A long file name.bin');
  mt.mcopy(img, local('deep', 10), 'DIR/SUB/DEEP.TXT');
  const bytes = new Uint8Array(readFileSync(img));
  const s = await scanSource(bufferSource(bytes.slice()));
  expect(s.scan.anomalies).toEqual([]);
  return { bytes, g: s.vol.geometry, files: new Map(s.files.map((f) => [f.path, f])) };
}

const u16 = (b: Uint8Array, o: number, v: number) => {
  b[o] = v & 0xff;
  b[o + 1] = (v >> 8) & 0xff;
};
const u32 = (b: Uint8Array, o: number, v: number) => {
  u16(b, o, v & 0xffff);
  u16(b, o + 2, v >>> 16);
};

/** Sets FAT entry `c` in every copy (or in copy `only`). */
function setEntry(b: Uint8Array, g: FatGeometry, c: number, v: number, only?: number): void {
  for (let k = 0; k < g.fatCount; k++) {
    if (only !== undefined && k !== only) continue;
    const fat = g.fatStart + k * g.fatBytes;
    if (g.kind === 'fat16') u16(b, fat + c * 2, v);
    else if (g.kind === 'fat32') u32(b, fat + c * 4, v);
    else {
      const o = fat + ((c * 3) >> 1);
      const old = b[o] | (b[o + 1] << 8);
      u16(b, o, c & 1 ? (old & 0x000f) | (v << 4) : (old & 0xf000) | (v & 0xfff));
    }
  }
}

/** Offset of the short entry whose 11-byte name is `name83` ("ONE     BIN") in [from, from + len). */
function slotOf(b: Uint8Array, name83: string, from: number, len: number): number {
  const want = Buffer.from(name83, 'latin1');
  for (let o = from; o < from + len; o += 32) if (Buffer.from(b.subarray(o, o + 11)).equals(want)) return o;
  throw new Error(`no entry ${name83}`);
}

const firstCluster = (f: GuestFile, g: FatGeometry) => (f.data.first - g.dataStart) / g.clusterSize + 2;

async function scan(b: Uint8Array): Promise<Scanned> {
  return scanSource(bufferSource(b));
}

function kinds(s: Scanned): string[] {
  return s.scan.anomalies.map((a) => a.kind).sort();
}

function anomaly(s: Scanned, kind: string) {
  const a = s.scan.anomalies.find((x) => x.kind === kind);
  expect(a, `anomaly ${kind} in ${JSON.stringify(s.scan.anomalies.map((x) => x.message))}`).toBeDefined();
  return a!;
}

/** fsck.fat's view of the damaged bytes. */
function fsck(dir: string, b: Uint8Array): ReturnType<typeof fsckFat> {
  const f = path.join(dir, `fsck-${Math.random().toString(36).slice(2)}.img`);
  writeFileSync(f, b);
  return fsckFat(f);
}

describe.skipIf(!READY)('FAT reader on damaged volumes', () => {
  let dir: string;
  let base: Base;
  let base32: Base;
  let base12: Base;
  beforeAll(async () => {
    dir = tempDir();
    base = await makeBase(dir, { fat: 16, bytes: 16 * MiB, sectorsPerCluster: 4 });
    base32 = await makeBase(dir, { fat: 32, bytes: 40 * MiB, sectorsPerCluster: 1 });
    base12 = await makeBase(dir, { fat: 12, bytes: 2 * MiB, sectorsPerCluster: 2 });
  });
  const copy = (x: Base) => x.bytes.slice();

  for (const which of ['fat12', 'fat16', 'fat32'] as const) {
    const pick = () => (which === 'fat12' ? base12 : which === 'fat16' ? base : base32);

    it(`${which}: a chain that loops back is cut where it loops, reported, and fsck.fat sees it too`, async () => {
      const { g, files } = pick();
      const b = copy(pick());
      const one = files.get('ONE.BIN')!;
      const c0 = firstCluster(one, g);
      setEntry(b, g, c0 + 2, c0);
      const s = await scan(b);
      expect(anomaly(s, 'bad-chain').message).toContain(`ONE.BIN: chain loops back to cluster ${c0}`);
      const again = s.files.find((f) => f.path === 'ONE.BIN')!;
      expect(clustersOf(again.data, s.vol)).toEqual([c0, c0 + 1, c0 + 2]);
      expect(partitionProblems(s.scan, s.vol.size)).toEqual([]);
      // Content is still its size's worth: the loop lies past it.
      expect((await contentOf(s.vol, again)).length).toBe(one.size);
      expect(fsck(dir, b).output).toMatch(/Circular cluster chain/);
    });

    it(`${which}: a link past the last cluster ends the chain there; readContent refuses the file`, async () => {
      const { g, files } = pick();
      const b = copy(pick());
      const c0 = firstCluster(files.get('ONE.BIN')!, g);
      setEntry(b, g, c0, g.clusterCount + 7);
      const s = await scan(b);
      expect(anomaly(s, 'bad-chain').message).toContain(`ONE.BIN: cluster ${c0} links to cluster ${g.clusterCount + 7}, outside 2 to ${g.clusterCount + 1}`);
      const one = s.files.find((f) => f.path === 'ONE.BIN')!;
      expect(clustersOf(one.data, s.vol)).toEqual([c0]);
      // The rest of the old chain is allocated and now reached by nobody.
      expect(anomaly(s, 'unowned-allocated').ranges!.bytes).toBe(2 * g.clusterSize);
      await expect(contentOf(s.vol, one)).rejects.toThrow(GuestError);
      await expect(contentOf(s.vol, one)).rejects.toThrow(`ONE.BIN: the chain ends at cluster ${c0} (entry 0x${(g.clusterCount + 7).toString(16)}) after 1 of the 3 clusters its size needs`);
      expect(fsck(dir, b).status).not.toBe(0);
    });

    it(`${which}: a chain running into a free entry: the free cluster counts as the file's, reported as owned-but-free`, async () => {
      const { g, files } = pick();
      const b = copy(pick());
      const c0 = firstCluster(files.get('ONE.BIN')!, g);
      setEntry(b, g, c0 + 1, 0);
      const s = await scan(b);
      expect(anomaly(s, 'bad-chain').message).toContain(`ONE.BIN: chain runs into cluster ${c0 + 1}, which the FAT marks free`);
      const at = g.dataStart + (c0 - 1) * g.clusterSize;
      expect(anomaly(s, 'owned-but-free').ranges!.toArray()).toEqual([[at, at + g.clusterSize]]);
      expect(s.scan.free.overlaps(at, at + g.clusterSize)).toBe(false);
      expect(s.scan.fileData.covers(at, at + g.clusterSize)).toBe(true);
      expect(anomaly(s, 'unowned-allocated').ranges!.toArray()).toEqual([[at + g.clusterSize, at + 2 * g.clusterSize]]);
      expect(partitionProblems(s.scan, s.vol.size)).toEqual([]);
      expect(fsck(dir, b).status).not.toBe(0);
    });

    it(`${which}: cross-linked files are named as double owners; the orphaned chain is lost`, async () => {
      const { g, files } = pick();
      const b = copy(pick());
      const c0 = firstCluster(files.get('ONE.BIN')!, g);
      const t0 = firstCluster(files.get('TWO.BIN')!, g);
      const rootEntries = g.kind === 'fat32' ? [g.dataStart + (g.rootCluster - 2) * g.clusterSize, g.clusterSize] : [g.rootStart, g.rootBytes];
      const slot = slotOf(b, 'TWO     BIN', rootEntries[0], rootEntries[1]);
      u16(b, slot + 26, c0 + 1);
      const s = await scan(b);
      const dbl = anomaly(s, 'double-owned');
      expect(dbl.message).toMatch(/ONE\.BIN and TWO\.BIN|TWO\.BIN and ONE\.BIN/);
      expect(clustersOf(dbl.ranges!, s.vol)).toEqual([c0 + 1, c0 + 2]);
      expect(clustersOf(anomaly(s, 'unowned-allocated').ranges!, s.vol)).toEqual([t0, t0 + 1]);
      expect(partitionProblems(s.scan, s.vol.size)).toEqual([]);
      expect(fsck(dir, b).output).toMatch(/share clusters|Cluster.*shared|cross-linked/i);
    });

    it(`${which}: a subdirectory pointing at its own parent is a directory loop, not an endless walk`, async () => {
      const { g, files } = pick();
      const b = copy(pick());
      const d0 = firstCluster(files.get('DIR')!, g);
      const at = g.dataStart + (d0 - 2) * g.clusterSize;
      u16(b, slotOf(b, 'SUB        ', at, g.clusterSize) + 26, d0);
      const s = await scan(b);
      expect(anomaly(s, 'directory-loop').message).toContain('DIR/SUB: its first cluster');
      expect(s.files.map((f) => f.path).sort()).toEqual(['A long file name.bin', 'DIR', 'ONE.BIN', 'TWO.BIN']);
      expect(fsck(dir, b).status).not.toBe(0);
    });

    it(`${which}: a lost chain (allocated, no directory entry) is metadata, never free, and named`, async () => {
      const { g } = pick();
      const b = copy(pick());
      const x = g.clusterCount - 3;
      setEntry(b, g, x, x + 1);
      setEntry(b, g, x + 1, 0xffffffff & (g.kind === 'fat12' ? 0xfff : g.kind === 'fat16' ? 0xffff : 0x0fffffff));
      const s = await scan(b);
      const lost = anomaly(s, 'unowned-allocated');
      expect(clustersOf(lost.ranges!, s.vol)).toEqual([x, x + 1]);
      expect(s.scan.metadata.covers(lost.ranges!.first, lost.ranges!.last)).toBe(true);
      expect(s.scan.free.overlaps(lost.ranges!.first, lost.ranges!.last)).toBe(false);
      expect(fsck(dir, b).output).toMatch(/[Rr]eclaimed|lost|Free cluster summary/);
    });

    it(`${which}: FAT copies that differ are reported with the cluster; fsck.fat agrees`, async () => {
      const { g } = pick();
      const b = copy(pick());
      setEntry(b, g, g.clusterCount - 1, 5, 1);
      const s = await scan(b);
      const m = anomaly(s, 'fat-mismatch');
      expect(m.message).toBe(`FAT 1 differs from FAT 0 in 1 entry (first: cluster ${g.clusterCount - 1})`);
      expect(fsck(dir, b).output).toMatch(/FATs differ/);
    });

    it(`${which}: a long name whose checksum does not match its 8.3 name falls back to the 8.3 name, as mtools does`, async () => {
      const { g } = pick();
      const b = copy(pick());
      const rootAt = g.kind === 'fat32' ? g.dataStart + (g.rootCluster - 2) * g.clusterSize : g.rootStart;
      const short = slotOf(b, 'ALONGF~1BIN', rootAt, g.clusterSize);
      b[short + 7] = '7'.charCodeAt(0); // the 8.3 name changed by a tool that knows no long names
      const s = await scan(b);
      expect(s.files.map((f) => f.path)).toContain('ALONGF~7.BIN');
      expect(anomaly(s, 'bad-name').message).toMatch(/ALONGF~7\.BIN: long-name checksum does not match the 8\.3 name; used the 8\.3 name/);
      const f = path.join(dir, `lfn-${which}.img`);
      writeFileSync(f, b);
      expect(mt.list(f)).toContain('ALONGF~7.BIN');
    });

    it(`${which}: long-name slots that disagree with each other are dropped for the 8.3 name`, async () => {
      const { g } = pick();
      const b = copy(pick());
      const rootAt = g.kind === 'fat32' ? g.dataStart + (g.rootCluster - 2) * g.clusterSize : g.rootStart;
      const short = slotOf(b, 'ALONGF~1BIN', rootAt, g.clusterSize);
      b[short - 32 + 13] ^= 0x55; // the checksum of the long-name slot just before
      const s = await scan(b);
      expect(s.files.map((f) => f.path)).toContain('ALONGF~1.BIN');
      expect(anomaly(s, 'bad-name').message).toMatch(/ALONGF~1\.BIN: long-name slots with different checksums/);
      const f = path.join(dir, `lfn2-${which}.img`);
      writeFileSync(f, b);
      expect(mt.list(f)).toContain('ALONGF~1.BIN');
    });

    it(`${which}: sizes that disagree with the chain: extra clusters stay the file's; a short chain is refused on read`, async () => {
      const { g, files } = pick();
      const b = copy(pick());
      const rootAt = g.kind === 'fat32' ? g.dataStart + (g.rootCluster - 2) * g.clusterSize : g.rootStart;
      u32(b, slotOf(b, 'ONE     BIN', rootAt, g.clusterSize) + 28, 10);
      u32(b, slotOf(b, 'TWO     BIN', rootAt, g.clusterSize) + 28, 5 * g.clusterSize);
      const s = await scan(b);
      const mismatch = anomaly(s, 'size-mismatch');
      expect(mismatch.message).toContain('ONE.BIN: 3 clusters chained where its size (10 bytes) needs 1');
      expect(mismatch.message).toContain(`TWO.BIN: 2 clusters chained where its size (${5 * g.clusterSize} bytes) needs 5`);
      const one = s.files.find((f) => f.path === 'ONE.BIN')!;
      expect(one.data.bytes).toBe(3 * g.clusterSize);
      expect(await contentOf(s.vol, one)).toEqual(new Uint8Array(10).fill('o'.charCodeAt(0)));
      const t0 = firstCluster(files.get('TWO.BIN')!, g);
      const eoc = g.kind === 'fat12' ? 'fff' : g.kind === 'fat16' ? 'ffff' : 'fffffff';
      await expect(contentOf(s.vol, s.files.find((f) => f.path === 'TWO.BIN')!)).rejects.toThrow(`TWO.BIN: the chain ends at cluster ${t0 + 1} (entry 0x${eoc}) after 2 of the 5 clusters its size needs`);
      expect(files.get('ONE.BIN')!.data.equals(one.data)).toBe(true);
      expect(fsck(dir, b).status).not.toBe(0);
    });
  }

  it('dirty bits: FAT16 entry 1 bits 15 and 14, the boot sector flag; fsck.fat sees the ones it checks', async () => {
    const { g } = base;
    const clean = (await scan(copy(base))).scan.state;
    expect(clean).toEqual({ state: 'clean', reasons: [] });
    let b = copy(base);
    setEntry(b, g, 1, 0x7fff);
    let s = await scan(b);
    expect(s.scan.state.state).toBe('dirty');
    expect(s.scan.state.reasons).toEqual([expect.stringContaining('clean-shutdown bit (bit 15) clear')]);
    expect(fsck(dir, b).output).toMatch(/Dirty bit is set/);
    b = copy(base);
    setEntry(b, g, 1, 0xbfff);
    s = await scan(b);
    expect(s.scan.state.reasons).toEqual([expect.stringContaining('hard-error bit (bit 14) clear')]);
    b = copy(base);
    b[0x25] |= 1;
    s = await scan(b);
    expect(s.scan.state.reasons).toEqual([expect.stringContaining("boot sector's dirty flag")]);
    expect(fsck(dir, b).output).toMatch(/Dirty bit is set/);
  });

  it('dirty bits: FAT32 entry 1 bits 27 and 26 (upper 4 bits ignored), the boot sector flag at 0x41', async () => {
    const { g } = base32;
    let b = copy(base32);
    setEntry(b, g, 1, 0xf7ffffff);
    let s = await scan(b);
    expect(s.scan.state.reasons).toEqual([expect.stringContaining('clean-shutdown bit (bit 27) clear')]);
    expect(fsck(dir, b).output).toMatch(/Dirty bit is set/);
    b = copy(base32);
    setEntry(b, g, 1, 0x0bffffff);
    s = await scan(b);
    expect(s.scan.state.reasons).toEqual([expect.stringContaining('hard-error bit (bit 26) clear')]);
    b = copy(base32);
    setEntry(b, g, 1, 0x0fffffff); // upper bits 0: still clean
    expect((await scan(b)).scan.state.state).toBe('clean');
    b = copy(base32);
    b[0x41] |= 3;
    s = await scan(b);
    expect(s.scan.state.reasons.length).toBe(2);
    expect(fsck(dir, b).output).toMatch(/Dirty bit is set/);
  });

  it('dirty bits: FAT12 has only the boot sector flag', async () => {
    const b = copy(base12);
    setEntry(b, base12.g, 1, 0x000);
    expect((await scan(b)).scan.state.state).toBe('clean');
    b[0x25] |= 1;
    expect((await scan(b)).scan.state.reasons).toEqual([expect.stringContaining("boot sector's dirty flag")]);
  });

  it('a chain whose FAT entries would loop forever through every cluster still ends (each cluster is walked once)', async () => {
    const { g } = base;
    const b = copy(base);
    // Every free cluster links to the next, the last back to the first free one: one huge ring nobody owns.
    const firstFree = g.clusterCount - 4000;
    for (let c = firstFree; c <= g.clusterCount + 1; c++) setEntry(b, g, c, c === g.clusterCount + 1 ? firstFree : c + 1);
    const rootAt = g.rootStart;
    u16(b, slotOf(b, 'TWO     BIN', rootAt, g.rootBytes) + 26, firstFree + 100);
    const s = await scan(b);
    const two = s.files.find((f) => f.path === 'TWO.BIN')!;
    expect(two.data.bytes).toBe((g.clusterCount + 2 - firstFree) * g.clusterSize);
    expect(anomaly(s, 'bad-chain').message).toContain(`TWO.BIN: chain loops back to cluster ${firstFree + 100}`);
    expect(partitionProblems(s.scan, s.vol.size)).toEqual([]);
  });

  describe('boot sectors that cannot be trusted are refused with one line', () => {
    type Edit = (b: Uint8Array) => void;
    const cases: Array<[string, () => Base, Edit, RegExp]> = [
      ['no jump instruction', () => base, (b) => { b[0] = 0; }, /no jump instruction/],
      ['0 bytes per sector', () => base, (b) => u16(b, 11, 0), /bytes per sector 0 /],
      ['256 bytes per sector', () => base, (b) => u16(b, 11, 256), /bytes per sector 256 /],
      ['8192 bytes per sector', () => base, (b) => u16(b, 11, 8192), /bytes per sector 8192 /],
      ['3000 bytes per sector', () => base, (b) => u16(b, 11, 3000), /bytes per sector 3000 /],
      ['0 sectors per cluster', () => base, (b) => { b[13] = 0; }, /sectors per cluster 0/],
      ['3 sectors per cluster', () => base, (b) => { b[13] = 3; }, /sectors per cluster 3/],
      ['no reserved sectors', () => base, (b) => u16(b, 14, 0), /no reserved sectors/],
      ['no FATs', () => base, (b) => { b[16] = 0; }, /no FAT copies/],
      ['a bad media byte', () => base, (b) => { b[21] = 0x12; }, /media byte 0x12/],
      ['0 total sectors', () => base, (b) => { u16(b, 19, 0); u32(b, 32, 0); }, /total sectors is 0/],
      ['more sectors than the volume holds', () => base, (b) => { u16(b, 19, 0); u32(b, 32, 0xffffffff); }, /run past the end of the volume/],
      ['a FAT of 0 sectors', () => base, (b) => { u16(b, 22, 0); u32(b, 36, 0); }, /FAT size is 0/],
      ['a FAT too small for its clusters', () => base, (b) => u16(b, 22, 1), /cannot hold the \d+ entries/],
      ['no root directory entries on FAT16', () => base, (b) => u16(b, 17, 0), /no root directory entries/],
      ['reserved sectors filling the volume', () => base, (b) => u16(b, 14, 0xfff0), /fill all/],
      ['FAT32 root directory cluster 0', () => base32, (b) => u32(b, 44, 0), /root directory cluster 0/],
      ['FAT32 root directory cluster past the end', () => base32, (b) => u32(b, 44, 0x0ffffff0), /root directory cluster 268435440/],
      ['FAT32 active FAT that does not exist', () => base32, (b) => u16(b, 40, 0x85), /active FAT 5 does not exist/],
      ['FAT32 layout with fixed root entries', () => base32, (b) => u16(b, 17, 512), /FAT32 layout .* with 512 fixed root entries/],
    ];
    for (const [what, which, edit, re] of cases) {
      it(what, async () => {
        const b = which().bytes.slice();
        edit(b);
        const e = await scan(b).then(() => null, (x: unknown) => x);
        expect(e).toBeInstanceOf(GuestError);
        expect((e as GuestError).code).toBe('BAD_FILESYSTEM');
        expect((e as GuestError).message).toMatch(re);
        expect((e as GuestError).message).not.toContain('\n');
      });
    }
  });

  it('a FAT16 layout whose cluster count needs FAT32 is refused', async () => {
    const d = tempDir();
    const img = mkfat(path.join(d, 'big16.img'), { fat: 16, bytes: 64 * MiB, sectorsPerCluster: 8 });
    const b = new Uint8Array(readFileSync(img));
    b[13] = 1;
    await expect(scan(b)).rejects.toThrow(/FAT boot sector: 1\d{5} clusters need FAT32, but the boot sector has a FAT12\/16 layout/);
  });

  it('fat32: a subdirectory two levels down pointing at the root cluster is a directory loop too', async () => {
    const { g, files } = base32;
    const b = copy(base32);
    const d0 = firstCluster(files.get('DIR')!, g);
    const at = g.dataStart + (d0 - 2) * g.clusterSize;
    const slot = slotOf(b, 'SUB        ', at, g.clusterSize);
    u16(b, slot + 20, g.rootCluster >>> 16);
    u16(b, slot + 26, g.rootCluster & 0xffff);
    const s = await scan(b);
    expect(anomaly(s, 'directory-loop').message).toContain(`DIR/SUB: its first cluster ${g.rootCluster} is an enclosing directory's`);
    expect(s.files.map((f) => f.path).sort()).toEqual(['A long file name.bin', 'DIR', 'ONE.BIN', 'TWO.BIN']);
    expect(partitionProblems(s.scan, s.vol.size)).toEqual([]);
  });

  it('a scan whose signal is aborted stops with INTERRUPTED', async () => {
    const vol = (await scan(copy(base))).vol;
    const ac = new AbortController();
    ac.abort();
    await expect(vol.scan({ signal: ac.signal })).rejects.toMatchObject({ code: 'INTERRUPTED' });
  });

  it('probe: FAT volumes are recognised; zeros, an NTFS and an exFAT boot sector are not', () => {
    for (const x of [base, base32, base12]) expect(looksLikeFat(x.bytes.subarray(0, 512))).toBe(true);
    expect(looksLikeFat(new Uint8Array(512))).toBe(false);
    const ntfs = new Uint8Array(512);
    ntfs.set([0xeb, 0x52, 0x90, ...Buffer.from('NTFS    ')]);
    u16(ntfs, 11, 512);
    ntfs[13] = 8;
    ntfs[21] = 0xf8;
    u32(ntfs, 40, 100000);
    expect(looksLikeFat(ntfs)).toBe(false);
    const exfat = new Uint8Array(512);
    exfat.set([0xeb, 0x76, 0x90, ...Buffer.from('EXFAT   ')]);
    expect(looksLikeFat(exfat)).toBe(false);
    expect(looksLikeFat(base.bytes.subarray(0, 100))).toBe(false);
  });

  it('a FAT32 volume with fewer than 65525 clusters (mkfs.fat -F 32 on a small disk) is read as FAT32 and noted', async () => {
    const d = tempDir();
    const img = mkfat(path.join(d, 'small32.img'), { fat: 32, bytes: 20 * MiB, sectorsPerCluster: 1 });
    const s = await scan(new Uint8Array(readFileSync(img)));
    expect(s.vol.kind).toBe('fat32');
    expect(anomaly(s, 'bpb').message).toMatch(/FAT32 volume with only \d+ clusters/);
    expect(parseBootSector(readFileSync(img), 20 * MiB).clusterCount).toBeLessThan(65525);
  });
});
