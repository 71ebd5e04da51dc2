/**
 * relink's guest-filesystems check on file systems made by their own tools
 * (mkfs.fat/mtools, mkfs.ext4/debugfs, mkntfs/ntfs-3g): a candidate with the
 * parent's UUID and time stamp whose writer used the child's clusters (or
 * inodes) for other files is refused, even with --force, and the file
 * system's own checker (fsck.fat, e2fsck, ntfsclone's cluster accounting)
 * finds the same fault in the composed image; a true copy of the parent
 * passes with "consistent". Seams (NTFS records half from the child), the
 * child's own torn records, unclean volumes, partitions the child does not
 * touch and content vhdtool does not read are reported as documented.
 */
import { copyFileSync, mkdirSync, readFileSync, renameSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { relink } from '../../src/ops/relink.js';
import { info } from '../../src/ops/info.js';
import type { VhdToolError } from '../../src/errors.js';
import type { Uuid } from '../../src/format/index.js';
import type { Proof, ProofCheck } from '../../src/ops/relink/proof.js';
import { introducedBy } from '../../src/ops/relink/fsProof.js';
import { RangeSet } from '../../src/guest/ranges.js';
import { patternBytes } from '../../src/synth/random.js';
import { contentHash } from '../helpers/hash.js';
import { runCli } from '../helpers/cliRun.js';
import { blankImage, embed, HAVE_DEBUGFS, HAVE_MKFS_EXT4, HAVE_MKFS_FAT, HAVE_MTOOLS, HAVE_SFDISK, partition, run } from '../helpers/guest.js';
import { HAVE_FUSE, HAVE_TSK, scanImage, withMounted } from '../helpers/ntfsImages.js';
import { HAVE_REAL, REAL_DIR } from '../helpers/real.js';
import {
  childOf, composedImage, diskOf, extScene, fatScene, fsck, HAVE_E2FSCK, HAVE_FSCK_FAT, HAVE_NTFSCLONE, ntfsScene, sectorDiff, type Scene,
} from '../helpers/relinkScenes.js';
import { tempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const HOUR_AGO = () => new Date(Date.now() - 3_600_000);

interface Linked {
  root: string;
  base: string;
  uuid: Uuid;
  child: string;
  /** The other disk, with the base's UUID and file time. */
  other: string;
}

/** root/golden/base.vhd (the template), root/vms/<child> over it, root/other/base.vhd (the other disk, same UUID and time). */
async function linked(scene: Scene, childName = 'user1.vhd'): Promise<Linked> {
  const root = scene.dir;
  for (const d of ['golden', 'vms', 'other']) mkdirSync(path.join(root, d));
  const t = HOUR_AGO();
  const base = await diskOf(scene.template, path.join(root, 'golden', 'base.vhd'), t);
  const child = await childOf(scene, base, path.join(root, 'vms', childName));
  const other = await diskOf(scene.other, path.join(root, 'other', 'base.vhd'), t, base.uniqueId);
  return { root, base: base.path, uuid: base.uniqueId, child, other: other.path };
}

function fsCheck(p: Proof): ProofCheck {
  return p.checks.find((c) => c.name === 'guest-filesystems')!;
}

async function refusal(child: string, parent: string, force = true): Promise<VhdToolError & { data: { proof: Proof } }> {
  const before = sha(readFileSync(child));
  const err = await relink(child, { parent, force, threads: 0 }).then(() => null, (e) => e);
  expect(err, 'relink should refuse').not.toBeNull();
  expect(sha(readFileSync(child))).toBe(before);
  return err;
}

const KINDS = [
  {
    kind: 'fat' as const, have: HAVE_MKFS_FAT && HAVE_MTOOLS, oracle: HAVE_FSCK_FAT, make: (d: string) => Promise.resolve(fatScene(d)),
    introduced: ['double-owned'],
    // fsck.fat names the same two files.
    agree: (check: ProofCheck, oracle: string) => {
      expect(oracle).toMatch(/\/X\.BIN\s+and\s+\/DATA\/Y\.BIN\s+share clusters/);
      expect(check.evidence).toContain('X.BIN and DATA/Y.BIN');
    },
  },
  {
    kind: 'ext' as const, have: HAVE_MKFS_EXT4 && HAVE_DEBUGFS, oracle: HAVE_E2FSCK, make: (d: string) => Promise.resolve(extScene(d)),
    introduced: ['bad-directory'],
    // e2fsck: the entries y1.bin and y2.bin in /data name unused inodes 15 and 16.
    agree: (check: ProofCheck, oracle: string) => {
      const fromFsck = [...oracle.matchAll(/Entry '(y\d\.bin)' in \/data \(\d+\) has deleted\/unused inode (\d+)/g)].map((m) => `${m[2]}:${m[1]}`);
      const fromUs = [...check.evidence.matchAll(/names inode (\d+) \('(y\d\.bin)'\), which is not in use/g)].map((m) => `${m[1]}:${m[2]}`);
      expect(fromFsck).toEqual(['15:y1.bin', '16:y2.bin']);
      expect(fromUs).toEqual(fromFsck);
    },
  },
  {
    kind: 'ntfs' as const, have: HAVE_FUSE, oracle: HAVE_NTFSCLONE, make: ntfsScene,
    introduced: ['double-owned', 'owned-but-free'],
    // ntfsclone's cluster accounting stops at the first cluster referenced twice: the first byte vhdtool reports.
    agree: (check: ProofCheck, oracle: string) => {
      const cluster = Number(/Cluster (\d+) referenced twice/.exec(oracle)![1]);
      const at = Number(/claimed by two owners \(data\/old\.txt and x\.bin at byte (\d+)\)/.exec(check.evidence)![1]);
      expect(at).toBe(cluster * 4096);
    },
  },
];

for (const k of KINDS) {
  describe.skipIf(!k.have)(`guest-filesystems on ${k.kind} made by its own tools`, () => {
    it('a disk with the parent\'s UUID and time whose writer used the same free space for other files: refused even with --force (exit 9); the checker agrees', async () => {
      const scene = await k.make(tempDir('vhdtool-relinkfs-'));
      const l = await linked(scene);
      const err = await refusal(l.child, l.other);
      expect(err.code).toBe('BAD_FILESYSTEM');
      expect(err.exitCode).toBe(9);
      expect(err.message).toMatch(/^relink refused by the guest-filesystems check: partition 1 \(/);
      const p = err.data.proof;
      expect(p.verdict).toBe('refused');
      // Everything VHD can check passes: only the file systems tell.
      expect(p.checks.map((c) => [c.name, c.status, c.refuses])).toEqual([
        ['parent-uuid', 'passed', false], ['virtual-size', 'passed', false], ['parent-time', 'passed', false],
        ['parent-chain', 'passed', false], ['guest-filesystems', 'failed', true],
      ]);
      const c = fsCheck(p);
      expect([c.override, c.overridden, c.code]).toEqual([null, false, 'BAD_FILESYSTEM']);
      const part = c.fileSystems!.partitions[0];
      expect(part.verdict).toBe('inconsistent');
      expect(part.state).toBe('clean');
      expect(part.introduced.map((a) => a.kind)).toEqual(k.introduced);
      expect(part.candidateKinds).toEqual([]);
      if (k.oracle) {
        expect(fsck(k.kind, scene.user).status).toBe(0);
        const bad = fsck(k.kind, composedImage(scene, path.join(scene.dir, 'composed.img')));
        expect(bad.status).not.toBe(0);
        k.agree(c, bad.output);
      }
      // And the true parent is still accepted: what refused is the candidate, not the child.
      const ok = await relink(l.child, { parent: l.base, dryRun: true, threads: 0 });
      expect(ok.refusal).toBeNull();
    });

    it('a true copy of the parent (file times kept) passes with "consistent", and the relinked child reads as the user\'s disk', async () => {
      const scene = await k.make(tempDir('vhdtool-relinkfs-'));
      const l = await linked(scene);
      const copy = path.join(l.root, 'other', 'copy.vhd');
      copyFileSync(l.base, copy);
      const st = statSync(l.base);
      utimesSync(copy, st.atime, st.mtime);
      renameSync(path.join(l.root, 'golden'), path.join(l.root, 'golden.moved'));
      const r = await relink(l.child, { parent: copy, threads: 0 });
      expect(r.proof.verdict).toBe('proven');
      const c = fsCheck(r.proof);
      expect(c.status).toBe('passed');
      expect(c.fileSystems!.partitions.map((x) => [x.index, x.verdict, x.introduced])).toEqual([[1, 'consistent', []]]);
      expect(c.evidence).toMatch(/^partition 1 \((fat16|ext4|ntfs), child holds [\d.]+ KiB\): consistent: \d+ files? and \d+ director(y|ies) read, no anomaly; read /);
      expect((await info(l.child)).chain[1].path).toBe(copy);
      expect(await contentHash(l.child)).toBe(sha(readFileSync(scene.user)));
    });
  });
}

describe.skipIf(!HAVE_MKFS_FAT || !HAVE_MTOOLS || !HAVE_MKFS_EXT4 || !HAVE_SFDISK)('guest-filesystems partition by partition', () => {
  /**
   * An MBR disk: 1 FAT16 (the FAT scene), 2 a LUKS-looking area vhdtool does
   * not read, 3 ext4 the child never touches. The user's child writes X.BIN
   * into partition 1 and a few sectors into partition 2.
   */
  function disks(dir: string): Scene {
    const fat = fatScene(dir);
    const ext = path.join(dir, 'ext.img');
    blankImage(ext, 8 * MiB);
    run('mkfs.ext4', ['-q', '-F', '-b', '1024', ext]);
    const luks = new Uint8Array(1 * MiB);
    luks.set([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe, 0, 2]);
    writeFileSync(path.join(dir, 'luks.img'), luks);
    const make = (name: string, fatImg: string, luksExtra: boolean) => {
      const d = blankImage(path.join(dir, name), 30 * MiB);
      partition(d, 'label: dos\nstart=2048, size=32768, type=6\nstart=34816, size=2048, type=83\nstart=36864, size=16384, type=83\n');
      embed(d, fatImg, 2048 * 512);
      embed(d, path.join(dir, 'luks.img'), 34816 * 512);
      embed(d, ext, 36864 * 512);
      if (luksExtra) embed(d, path.join(dir, 'x.bin'), 34816 * 512 + 64 * 1024);
      return d;
    };
    return { dir, template: make('t.disk', fat.template, false), user: make('u.disk', fat.user, true), other: make('o.disk', fat.other, false) };
  }

  it('Hyper-V .avhd naming, --search after a folder move (CLI, --json): partition 1 consistent, 2 not proven (LUKS), 3 unchanged and never scanned', async () => {
    const scene = disks(tempDir('vhdtool-relinkfs-'));
    const l = await linked(scene, 'Win10_7A2C4D1E-5B6F-4A3B-9C8D-0E1F2A3B4C5D.avhd');
    renameSync(path.join(l.root, 'other'), path.join(l.root, 'elsewhere'));
    renameSync(path.join(l.root, 'golden'), path.join(l.root, 'Virtual Hard Disks'));
    const r = await runCli(['relink', l.child, '--search', path.join(l.root, 'Virtual Hard Disks'), '--json']);
    expect(r.err).toEqual([]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out.join('\n'));
    const c = out.proof.checks.find((x: ProofCheck) => x.name === 'guest-filesystems');
    expect(c.status).toBe('passed');
    const parts = c.fileSystems.partitions;
    expect(parts.map((p: { index: number; fileSystem: string; detected: string | null; verdict: string }) => [p.index, p.fileSystem, p.detected, p.verdict])).toEqual([
      [1, 'fat16', null, 'consistent'], [2, 'unknown', 'LUKS2', 'not-proven'], [3, 'ext4', null, 'unchanged'],
    ]);
    expect(parts[2].childBytes).toBe(0);
    expect(parts[2].bytesRead).toBe(0);
    // One scan of a 16 MiB FAT volume's metadata (two FATs, directories), not its files.
    expect(parts[0].bytesRead).toBeGreaterThan(0);
    expect(parts[0].bytesRead).toBeLessThan(512 * 1024);
    expect(out.proof.limits).toContainEqual(expect.stringMatching(/^partition 2 \(LUKS2, child holds .*\): not proven: vhdtool does not read LUKS2/));
    expect(out.changed).toBe(true);
    expect(await contentHash(l.child)).toBe(sha(readFileSync(scene.user)));
  });

  it('the wrong disk with the same UUID (CLI, --force --json): exit 9, the error carries the proof partition by partition', async () => {
    const scene = disks(tempDir('vhdtool-relinkfs-'));
    const l = await linked(scene);
    const before = sha(readFileSync(l.child));
    const r = await runCli(['relink', l.child, '--parent', l.other, '--force', '--json']);
    expect(r.code).toBe(9);
    const e = JSON.parse(r.out.join('\n')).error;
    expect([e.code, e.exitCode]).toEqual(['BAD_FILESYSTEM', 9]);
    const c = e.proof.checks.find((x: ProofCheck) => x.name === 'guest-filesystems');
    expect(c.fileSystems.partitions.map((p: { verdict: string }) => p.verdict)).toEqual(['inconsistent', 'not-proven', 'unchanged']);
    expect(sha(readFileSync(l.child))).toBe(before);
    const text = await runCli(['relink', l.child, '--parent', l.other, '--force', '--dry-run']);
    expect(text.code).toBe(9);
    expect(text.out.join('\n')).toMatch(/5\. guest-filesystems failed: partition 1 \(fat16, child holds [\d.]+ KiB\): inconsistent: .*double-owned/);
  });
});

describe.skipIf(!HAVE_MKFS_FAT || !HAVE_MTOOLS)('guest-filesystems: what the candidate already has on its own', () => {
  /** Marks `cluster` allocated (end of chain) in both FATs: a lost cluster no entry reaches. */
  function loseCluster(img: string, cluster: number): void {
    const b = new Uint8Array(readFileSync(img));
    const dv = new DataView(b.buffer);
    const bps = dv.getUint16(11, true);
    const reserved = dv.getUint16(14, true);
    const fatSectors = dv.getUint16(22, true);
    for (let i = 0; i < b[16]; i++) dv.setUint16((reserved + i * fatSectors) * bps + cluster * 2, 0xffff, true);
    writeFileSync(img, b);
  }

  it('a template with a lost cluster of its own: the true parent still passes ("the candidate alone already has"), the wrong one is still refused', async () => {
    const dir = tempDir('vhdtool-relinkfs-');
    const scene = fatScene(dir);
    for (const img of [scene.template, scene.user, scene.other]) loseCluster(img, 8000);
    if (HAVE_FSCK_FAT) expect(fsck('fat', scene.template).output).toMatch(/[Ff]ree cluster|lost|[Rr]eclaim/);
    const l = await linked(scene);
    const copy = await diskOf(scene.template, path.join(l.root, 'other', 'copy.vhd'), HOUR_AGO(), l.uuid);
    const ok = await relink(l.child, { parent: copy.path, dryRun: true, threads: 0 });
    const part = fsCheck(ok.proof).fileSystems!.partitions[0];
    expect([fsCheck(ok.proof).status, part.verdict, part.candidateKinds, part.introduced]).toEqual(['passed', 'consistent', ['unowned-allocated'], []]);
    expect(part.note).toMatch(/composing adds no anomaly; the candidate alone already has unowned-allocated$/);
    const err = await refusal(l.child, l.other);
    expect(fsCheck(err.data.proof).fileSystems!.partitions[0].introduced.map((a) => a.kind)).toEqual(['double-owned']);
  });
});

describe.skipIf(!HAVE_FUSE)('guest-filesystems: NTFS records at the seam between the child and its parent', () => {
  /** The template, and a user's disk that adds `file` (written by ntfs-3g); the byte offset of its MFT record in the volume. */
  async function userFile(dir: string, name: string, data: Uint8Array): Promise<{ scene: Scene; record: number }> {
    const scene = await ntfsScene(dir);
    const user = path.join(dir, 'user2.img');
    copyFileSync(scene.template, user);
    await withMounted(user, (m) => writeFileSync(path.join(m, name), data));
    const { files } = await scanImage(user);
    const f = files.find((x) => x.path === name)!;
    return { scene: { ...scene, user }, record: f.meta.first };
  }

  it('a record whose first sector comes from the child and second from the parent (two writes of it) is torn at the seam: refused', async () => {
    const { scene, record } = await userFile(tempDir('vhdtool-relinkfs-'), 'x.bin', patternBytes(100 * 1024, 1));
    const writes = sectorDiff(new Uint8Array(readFileSync(scene.template)), new Uint8Array(readFileSync(scene.user)))
      .flatMap((w) => Array.from({ length: w.data.length / 512 }, (_, i) => ({ sector: w.sector + i, data: w.data.subarray(i * 512, i * 512 + 512) })))
      .filter((w) => w.sector !== record / 512 + 1);
    mkdirSync(path.join(scene.dir, 'golden'));
    const base = await diskOf(scene.template, path.join(scene.dir, 'golden', 'base.vhd'), HOUR_AGO());
    const copy = await diskOf(scene.template, path.join(scene.dir, 'golden', 'copy.vhd'), HOUR_AGO(), base.uniqueId);
    const child = await childOf(scene, base, path.join(scene.dir, 'half.vhd'), writes);
    const err = await refusal(child, copy.path);
    const c = fsCheck(err.data.proof);
    const torn = c.fileSystems!.partitions[0].introduced.find((a) => a.kind === 'torn-record')!;
    expect(torn.bytes).toBe(1024);
    expect(torn.message).toMatch(/^at a seam between the child and the candidate \(first at byte (\d+)\): MFT record \d+ is torn/);
    expect(Number(/first at byte (\d+)/.exec(torn.message)![1])).toBe(record);
  });

  it('a record torn inside the child itself (both sectors its own) is the child\'s, not evidence against the parent: passes, reported as its own', async () => {
    // A small file: its data stays in its record, so the torn record hides no clusters.
    const { scene, record } = await userFile(tempDir('vhdtool-relinkfs-'), 'note.txt', Buffer.from('a short note\n'));
    const img = new Uint8Array(readFileSync(scene.user));
    // The second stride's update sequence number no longer matches the record's.
    img[record + 1022] ^= 0xff;
    writeFileSync(scene.user, img);
    const l = await linked(scene);
    const copy = await diskOf(scene.template, path.join(l.root, 'other', 'copy.vhd'), HOUR_AGO(), l.uuid);
    const r = await relink(l.child, { parent: copy.path, dryRun: true, threads: 0 });
    const c = fsCheck(r.proof);
    expect(c.status).toBe('passed');
    const part = c.fileSystems!.partitions[0];
    expect(part.verdict).toBe('consistent');
    expect(part.introduced).toEqual([]);
    expect(part.childOwn.map((a) => [a.kind, a.bytes])).toEqual([['torn-record', 1024]]);
    expect(part.note).toMatch(/wholly inside the child: its own, whatever its parent/);
  });
});

describe.skipIf(!HAVE_FUSE || !HAVE_TSK)('guest-filesystems: NTFS directories that name records the child does not have', () => {
  it('the other writer only added files to a directory the child never touched: its index names records past the child\'s $MFT: refused (bad-index); istat finds no such records', async () => {
    const scene = await ntfsScene(tempDir('vhdtool-relinkfs-'));
    scene.other = path.join(scene.dir, 'other-new.img');
    copyFileSync(scene.template, scene.other);
    await withMounted(scene.other, (m) => { for (let i = 0; i < 3; i++) writeFileSync(path.join(m, 'data', `y${i}.bin`), patternBytes(100 * 1024, 20 + i)); });
    const l = await linked(scene);
    const err = await refusal(l.child, l.other);
    const part = fsCheck(err.data.proof).fileSystems!.partitions[0];
    expect(part.verdict).toBe('inconsistent');
    expect(part.introduced.map((a) => a.kind)).toEqual(['bad-index']);
    const records = [...part.introduced[0].message.matchAll(/names MFT record (\d+) \('(y\d\.bin)'\), which is not in use/g)].map((m) => [Number(m[1]), m[2]] as const);
    expect(records.map((r) => r[1])).toEqual(['y1.bin', 'y2.bin']);
    // Sleuth Kit on the composed image: fls lists data/y1.bin from data's index (it stops at the next dangling
    // entry), and istat finds neither record in the $MFT.
    const composed = composedImage(scene, path.join(scene.dir, 'composed.img'));
    expect(run('fls', ['-r', '-p', composed])).toMatch(new RegExp(`${records[0][0]}:\\tdata/y1\\.bin`));
    for (const [r] of records) expect(spawnSync('istat', [composed, String(r)], { encoding: 'utf8' }).stderr).toMatch(/too large/);
  });
});

describe.skipIf(!HAVE_REAL)('guest-filesystems on differencing disks Windows made', () => {
  it('dfvfs\' fat-differential.vhd and ntfs-differential.vhd over their real parents: consistent, nothing introduced (a dry run: the fixtures are never written)', async () => {
    for (const [child, parent, fs] of [['fat-differential.vhd', 'fat-parent.vhd', 'fat12'], ['ntfs-differential.vhd', 'ntfs-parent.vhd', 'ntfs']]) {
      const r = await relink(path.join(REAL_DIR, child), { parent: path.join(REAL_DIR, parent), dryRun: true, threads: 0 });
      const c = fsCheck(r.proof);
      expect([c.status, r.refusal], child).toEqual(['passed', null]);
      expect(c.fileSystems!.partitions.map((p) => [p.index, p.fileSystem, p.verdict, p.introduced.length]), child).toEqual([[1, fs, 'consistent', 0]]);
      expect(c.fileSystems!.partitions[0].childBytes, child).toBeGreaterThan(0);
    }
  });
});

describe.skipIf(!HAVE_MKFS_EXT4 || !HAVE_DEBUGFS)('guest-filesystems on a volume that was not shut down cleanly', () => {
  it('the same fault in a dirty ext4 volume is a warning only --force accepts (its journal or checker may account for it)', async () => {
    const scene = extScene(tempDir('vhdtool-relinkfs-'), ['ssv state 0']);
    const l = await linked(scene);
    const err = await refusal(l.child, l.other, false);
    expect(err.code).toBe('BAD_FILESYSTEM');
    const c = fsCheck(err.data.proof);
    expect([c.status, c.override, c.refuses]).toEqual(['warning', '--force', true]);
    expect(c.fileSystems!.partitions[0]).toMatchObject({ verdict: 'unclean', state: 'dirty' });
    expect(c.evidence).toMatch(/not shut down cleanly/);
    const r = await relink(l.child, { parent: l.other, force: true, dryRun: true, threads: 0 });
    expect(r.refusal).toBeNull();
    expect(r.proof.verdict).toBe('accepted');
    expect(fsCheck(r.proof)).toMatchObject({ status: 'warning', overridden: true });
  });
});

describe('introducedBy: what composing adds to the candidate\'s own anomalies', () => {
  const rs = (...p: Array<[number, number]>) => RangeSet.from(p);
  it('by bytes where the reader gives them, by count where it does not; torn records only at a seam', () => {
    const cand = [
      { kind: 'double-owned', message: 'a', ranges: rs([0, 4096]) },
      { kind: 'orphan', message: 'record 70', count: 1 },
      { kind: 'torn-record', message: 't', ranges: rs([8192, 9216]) },
    ];
    const composed = [
      { kind: 'double-owned', message: 'a', ranges: rs([0, 4096]) },
      { kind: 'orphan', message: 'record 70', count: 1 },
      { kind: 'torn-record', message: 't', ranges: rs([8192, 9216], [20480, 21504], [30720, 31744]) },
      { kind: 'owned-but-free', message: 'b', ranges: rs([40960, 49152]) },
    ];
    // The child holds all of the record at 20480, half of the one at 30720.
    const held = rs([20480, 21504], [30720, 31232]);
    expect(introducedBy(composed, cand, held)).toEqual({
      introduced: [
        { kind: 'torn-record', bytes: 1024, message: 'at a seam between the child and the candidate (first at byte 30720): t' },
        { kind: 'owned-but-free', bytes: 8192, message: 'b' },
      ],
      childOwn: [{ kind: 'torn-record', bytes: 1024, message: 't' }],
    });
    const more = [{ kind: 'orphan', message: 'record 70; record 71', count: 2 }, { kind: 'double-owned', message: 'a', ranges: rs([0, 8192]) }];
    expect(introducedBy(more, cand, held).introduced.map((a) => [a.kind, a.bytes])).toEqual([['orphan', null], ['double-owned', 4096]]);
  });
});
