/**
 * `create`: bases (dynamic, fixed) and empty children read the same in
 * qemu-img and libvhdi and pass `vhdtool check`; a child is laid out as
 * Windows lays out its own (compared with a real Windows differencing disk);
 * existing files and unfit parents are refused, with nothing written.
 */
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { create } from '../../src/ops/create.js';
import { checkDisk } from '../../src/check/check.js';
import { createRunner } from '../../src/parallel/pool.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { openVhd } from '../../src/vhd/image.js';
import { dateToVhdTime, SECTOR } from '../../src/format/index.js';
import { writeSynthChain, type SynthLayer } from '../../src/synth/build.js';
import { contentHash } from '../helpers/hash.js';
import { runCli } from '../helpers/cliRun.js';
import { readFooter, readHeader, readRange, writeRange } from '../helpers/patch.js';
import { HAVE_PYVHDI, HAVE_QEMU, libvhdiHash, qemuHash } from '../helpers/peers.js';
import { expectedHashes, HAVE_REAL, realPath, REAL_DIR } from '../helpers/real.js';
import { tempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const zeroHash = (n: number) => createHash('sha256').update(Buffer.alloc(n)).digest('hex');
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

async function checked(p: string): Promise<{ ok: boolean; errors: string[]; warnings: string[] }> {
  const runner = createRunner({ threads: 0, slotBytes: 512 });
  try {
    const r = await checkDisk(nodeFileSystem, p, runner);
    return { ok: r.ok, errors: r.errors.map((e) => `${e.rule}: ${e.message}`), warnings: r.warnings.map((w) => `${w.rule}: ${w.message}`) };
  } finally {
    await runner.close();
  }
}

/** qemu-img's view: virtual size as it sizes the disk by current size. */
function qemuSize(p: string): number {
  const out = execFileSync('qemu-img', ['info', '--output=json', '--image-opts', `driver=vpc,force_size_calc=current_size,file.filename=${p}`]).toString();
  return (JSON.parse(out) as { 'virtual-size': number })['virtual-size'];
}

function pyvhdi(p: string): { type: number; parent: string | null; parentName: string | null } {
  const out = execFileSync('/usr/bin/python3', ['-c', `
import pyvhdi, sys
f = pyvhdi.file(); f.open(sys.argv[1])
print(f.get_disk_type()); print(f.get_parent_identifier() or ''); print(f.get_parent_filename() or '')
`, p]).toString().split('\n');
  return { type: Number(out[0]), parent: out[1] || null, parentName: out[2] || null };
}

/** sha256 of what libvhdi reads through a chain (leaf first), each layer given its parent. */
function libvhdiChainHash(files: string[]): string {
  return execFileSync('/usr/bin/python3', ['-c', `
import pyvhdi, hashlib, sys
fs = []
for p in sys.argv[1:]:
    f = pyvhdi.file(); f.open(p); fs.append(f)
for i in range(len(fs) - 2, -1, -1):
    fs[i].set_parent(fs[i + 1])
f = fs[0]; n = f.get_media_size(); h = hashlib.sha256(); off = 0
while off < n:
    k = min(4 << 20, n - off); h.update(f.read_buffer_at_offset(k, off)); off += k
print(h.hexdigest())
`, ...files]).toString().trim();
}

describe('create a base', () => {
  for (const [type, size, blockSize] of [['dynamic', 40 * MiB, undefined], ['dynamic', 7 * MiB + 512, 512 * 1024], ['fixed', 10 * MiB, undefined]] as const) {
    it(`${type}, ${size} bytes${blockSize ? `, ${blockSize}-byte blocks` : ''}: passes check, reads as zeros in vhdtool, qemu-img and libvhdi`, async () => {
      const dir = tempDir();
      const p = path.join(dir, 'disk.vhd');
      const r = await create(p, { size, type, blockSize, threads: 0 });
      expect(r).toMatchObject({ type, virtualSize: size, blockSize: type === 'fixed' ? null : (blockSize ?? 2 * MiB), parent: null, locators: [], replaced: false });
      expect(statSync(p).size).toBe(r.fileSize);
      expect(await checked(p)).toEqual({ ok: true, errors: [], warnings: [] });
      expect(await contentHash(p)).toBe(zeroHash(size));
      const f = readFooter(p);
      expect(f.uniqueId).toBe(r.uuid);
      expect(f.diskType).toBe(type);
      if (type === 'dynamic') {
        // Hyper-V's dynamic layout: header at 512, BAT right after it at 1536.
        expect(readHeader(p).tableOffset).toBe(1536);
        expect(r.fileSize).toBe(1536 + Math.ceil(Math.ceil(size / (blockSize ?? 2 * MiB)) * 4 / 512) * 512 + 512);
      } else {
        expect(r.fileSize).toBe(size + 512);
      }
      if (HAVE_QEMU) {
        expect(qemuSize(p)).toBe(size);
        expect(qemuHash(p)).toBe(zeroHash(size));
      }
      if (HAVE_PYVHDI) {
        expect(libvhdiHash(p)).toEqual({ sha256: zeroHash(size), size });
        expect(pyvhdi(p).type).toBe(type === 'fixed' ? 2 : 3);
      }
    });
  }

  it('sizes like 40G through the command line; the file stays small (a 40 GiB dynamic disk is metadata only)', async () => {
    const dir = tempDir();
    const r = await runCli(['create', path.join(dir, 'big.vhd'), '--size', '40G', '--json']);
    expect(r.code, r.err.join('\n')).toBe(0);
    const j = JSON.parse(r.out.join('\n')) as { virtualSize: number; fileSize: number; blockSize: number };
    expect(j.virtualSize).toBe(40 * 1024 ** 3);
    expect(j.blockSize).toBe(2 * MiB);
    expect(j.fileSize).toBe(1536 + 20480 * 4 + 512);
    if (HAVE_QEMU) expect(qemuSize(path.join(dir, 'big.vhd'))).toBe(40 * 1024 ** 3);
    if (HAVE_PYVHDI) {
      const media = execFileSync('/usr/bin/python3', ['-c', 'import pyvhdi,sys; f=pyvhdi.file(); f.open(sys.argv[1]); print(f.get_media_size())', path.join(dir, 'big.vhd')]).toString().trim();
      expect(Number(media)).toBe(40 * 1024 ** 3);
    }
  });

  it('bad sizes and block sizes are usage errors (exit 2); nothing is created', async () => {
    const dir = tempDir();
    const p = path.join(dir, 'x.vhd');
    for (const args of [['--size', '1000'], ['--size', '0'], ['--size', '3T'], ['--size', '1G', '--block-size', '4M'], ['--size', '1G', '--type', 'fixed', '--block-size', '2M'], []]) {
      const r = await runCli(['create', p, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toHaveLength(1);
    }
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('create a child', () => {
  const base: SynthLayer = {
    type: 'dynamic', virtualSize: 12 * MiB,
    writes: [{ sector: 0, data: new Uint8Array(4096).fill(7) }, { sector: 9000, data: new Uint8Array(65536).fill(9) }],
  };

  it('an empty child over a dynamic base: the parent\'s UUID, size, file time and name; W2ku and W2ru; reads as the parent everywhere', async () => {
    const dir = tempDir();
    const [b] = await writeSynthChain(nodeFileSystem, dir, [base], ['base.vhd']);
    const t = new Date('2024-05-06T07:08:09Z');
    utimesSync(b.path, t, t);
    const child = path.join(dir, 'Snapshot 1.avhd');
    const r = await create(child, { parent: b.path, threads: 0 });
    expect(r.parent).toEqual({ path: b.path, uuid: b.uniqueId, timestamp: '2024-05-06T07:08:09Z', unicodeName: 'base.vhd' });
    expect(r.virtualSize).toBe(base.virtualSize);
    const h = readHeader(child);
    expect(h.parentUniqueId).toBe(b.uniqueId);
    expect(h.parentTimestamp).toBe(dateToVhdTime(t));
    expect(h.parentUnicodeName).toBe('base.vhd');
    expect(r.locators.map((l) => [l.platform, l.path])).toEqual([['W2ku', b.path], ['W2ru', '.\\base.vhd']]);
    expect(await checked(child)).toEqual({ ok: true, errors: [], warnings: [] });
    expect(await contentHash(child)).toBe(await contentHash(b.path));
    if (HAVE_PYVHDI) {
      expect(libvhdiHash(child, b.path)).toEqual(libvhdiHash(b.path));
      expect(pyvhdi(child)).toEqual({ type: 4, parent: b.uniqueId, parentName: 'base.vhd' });
    }
    if (HAVE_QEMU) expect(qemuSize(child)).toBe(base.virtualSize);
  });

  it.skipIf(!HAVE_REAL)('is laid out as Windows lays out its own differencing disks (fat-differential.vhd)', async () => {
    const win = path.join(REAL_DIR, 'fat-differential.vhd');
    const dir = tempDir();
    // Over the real fixed parent, read-only where it lies: create never writes a parent.
    const parent = realPath('fat-parent.vhd');
    const before = sha(parent);
    const child = path.join(dir, 'fat-child.vhd');
    await create(child, { parent, threads: 0 });
    expect(sha(parent)).toBe(before);
    const ours = readHeader(child);
    const theirs = readHeader(win);
    expect(ours.tableOffset).toBe(theirs.tableOffset);
    expect(ours.maxTableEntries).toBe(theirs.maxTableEntries);
    expect(ours.blockSize).toBe(theirs.blockSize);
    const slots = (h: typeof ours) => h.locators.filter((l) => l.platform !== null).map((l) => [l.platform, l.dataOffset, l.dataSpace]);
    expect(slots(ours)).toEqual(slots(theirs));
    // The BAT region is padded to 4 KiB with unused entries, as Windows pads it.
    expect(Buffer.from(readRange(child, ours.tableOffset, 4096)).equals(Buffer.alloc(4096, 0xff))).toBe(true);
    expect(Buffer.from(readRange(win, theirs.tableOffset + 8, 4096 - 8)).equals(Buffer.alloc(4096 - 8, 0xff))).toBe(true);
    // The child's size and geometry are the parent's, as in Windows' child.
    expect(readFooter(child).geometry).toEqual(readFooter(win).geometry);
    expect(readFooter(child).currentSize).toBe(readFooter(win).currentSize);
    expect(await contentHash(child)).toBe(expectedHashes().get('fat-parent.vhd'));
    if (HAVE_PYVHDI) expect(libvhdiHash(child, parent).sha256).toBe(expectedHashes().get('fat-parent.vhd'));
    expect(await checked(child)).toEqual({ ok: true, errors: [], warnings: [] });
  });

  it('over a differencing parent (a chain of three), in another folder: relative locator with ..\\', async () => {
    const dir = tempDir();
    const [b, c] = await writeSynthChain(nodeFileSystem, dir, [base, { type: 'differencing', virtualSize: base.virtualSize, writes: [{ sector: 100, data: new Uint8Array(1024).fill(3) }] }]);
    const sub = path.join(dir, 'vms', 'user1');
    execFileSync('mkdir', ['-p', sub]);
    const leaf = path.join(sub, 'user1.vhd');
    const r = await runCli(['create', leaf, '--parent', c.path, '--json']);
    expect(r.code, r.err.join('\n')).toBe(0);
    const j = JSON.parse(r.out.join('\n')) as { locators: Array<{ platform: string; path: string }>; parent: { unicodeName: string } };
    expect(j.locators[1]).toMatchObject({ platform: 'W2ru', path: '..\\..\\child1.vhd' });
    expect(j.parent.unicodeName).toBe('../../child1.vhd');
    expect(await contentHash(leaf)).toBe(await contentHash(c.path));
    if (HAVE_PYVHDI) expect(libvhdiChainHash([leaf, c.path, b.path])).toBe(libvhdiHash(c.path, b.path).sha256);
  });

  it('an existing file is refused (exit 6, untouched); --force replaces it with a new disk', async () => {
    const dir = tempDir();
    const [b] = await writeSynthChain(nodeFileSystem, dir, [base]);
    const p = path.join(dir, 'child.vhd');
    writeFileSync(p, 'precious');
    chmodSync(p, 0o600);
    const r = await runCli(['create', p, '--parent', b.path]);
    expect(r.code).toBe(6);
    expect(r.err.join('\n')).toMatch(/already exists \(use --force/);
    expect(readFileSync(p, 'utf8')).toBe('precious');
    const f = await runCli(['create', p, '--parent', b.path, '--force', '--json']);
    expect(f.code, f.err.join('\n')).toBe(0);
    expect((JSON.parse(f.out.join('\n')) as { replaced: boolean }).replaced).toBe(true);
    expect(await contentHash(p)).toBe(await contentHash(b.path));
    expect(readdirSync(dir).sort()).toEqual(['base.vhd', 'child.vhd']);
  });

  it('a parent in saved state is refused (exit 6), and so is one check rejects (exit 4); nothing is created', async () => {
    const dir = tempDir();
    const [b] = await writeSynthChain(nodeFileSystem, dir, [base]);
    const saved = readFooter(b.path);
    // Saved state: set the byte in both footer copies, checksums fixed.
    const { encodeFooter, sealFooter } = await import('../../src/format/index.js');
    const sf = encodeFooter(sealFooter({ ...saved, savedState: 1 }));
    const size = statSync(b.path).size;
    const orig = readRange(b.path, size - 512, 512);
    writeRange(b.path, 0, sf);
    writeRange(b.path, size - 512, sf);
    let r = await runCli(['create', path.join(dir, 'c.vhd'), '--parent', b.path]);
    expect(r.code, r.err.join('\n')).toBe(6);
    expect(r.err.join('\n')).toMatch(/saved state/);
    writeRange(b.path, 0, orig);
    writeRange(b.path, size - 512, orig);
    // Data no structure accounts for, in the gap before the footer: check rejects the parent.
    const h = readHeader(b.path);
    const v = await openVhd(nodeFileSystem, b.path);
    const lastEnd = Math.max(...v.meta.regions.filter((x) => x.name !== 'footer').map((x) => x.end));
    await v.close();
    expect(h.blockSize).toBe(2 * MiB);
    const grown = Buffer.concat([readFileSync(b.path).subarray(0, size - 512), Buffer.alloc(SECTOR, 0x5a), Buffer.from(orig)]);
    writeFileSync(b.path, grown);
    expect(lastEnd).toBe(size - 512);
    r = await runCli(['create', path.join(dir, 'c.vhd'), '--parent', b.path]);
    expect(r.code, r.err.join('\n')).toBe(4);
    expect(r.err.join('\n')).toMatch(/orphan-data/);
    expect(existsSync(path.join(dir, 'c.vhd'))).toBe(false);
    expect(readdirSync(dir).sort()).toEqual(['base.vhd']);
  });

  it.skipIf(!HAVE_REAL)('a real parent that fails check (image.vhd, bad footer checksum) is refused', async () => {
    const dir = tempDir();
    const r = await runCli(['create', path.join(dir, 'c.vhd'), '--parent', realPath('image.vhd')]);
    expect(r.code).toBe(4);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('--size or --type with --parent are usage errors', async () => {
    const dir = tempDir();
    const [b] = await writeSynthChain(nodeFileSystem, dir, [base]);
    expect((await runCli(['create', path.join(dir, 'c.vhd'), '--parent', b.path, '--size', '1G'])).code).toBe(2);
    expect((await runCli(['create', path.join(dir, 'c.vhd'), '--parent', b.path, '--type', 'fixed'])).code).toBe(2);
    expect(readdirSync(dir)).toEqual(['base.vhd']);
  });
});
