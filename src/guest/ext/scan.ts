/**
 * One pass over an ext volume's metadata, in five steps:
 *
 *   1. fixed structures from the geometry (superblock copies, descriptors,
 *      reserved GDT, bitmaps, inode tables, MMP block);
 *   2. the free map from the block bitmaps (freemap.ts);
 *   3. the inode pass: every inode in use, its block map and directory
 *      entries (inodescan.ts);
 *   4. state checks that need the inodes (journal superblock, orphan list);
 *   5. names (paths.ts), then each file handed to onFile, then the
 *      ownership cross-check (double-owned, owned-but-free) and the
 *      allocated blocks nobody claims.
 */
import { VhdToolError } from '../../errors.js';
import { Ownership } from '../ownership.js';
import { RangeSet, RangeSetBuilder } from '../ranges.js';
import type { GuestFile, ScanOptions, VolumeScan, VolumeState } from '../volume.js';
import { AnomalyLog } from './anomalies.js';
import type { BlockDevice } from './blockio.js';
import { DirEntries } from './dirs.js';
import { readFreeMap } from './freemap.js';
import type { GroupTable } from './groups.js';
import { InodePass, inodeOffset } from './inodescan.js';
import { forEachFixed, type FixedKind } from './layout.js';
import { Namespace } from './paths.js';
import { F_ORPHAN_LIST, F_SYSTEM, InodeRecords, T_DIR } from './records.js';
import { COMPAT, hasCompat, hasRoCompat, RO_COMPAT, superblockReasons, type Superblock } from './superblock.js';

const JBD2_MAGIC = 0xc03b3998;
const MMP_MAGIC = 0x004d4d50;
const MMP_SEQ_CLEAN = 0xff4d4d50;
const MMP_SEQ_FSCK = 0xe24d4d50;
const MMP_SEQ_MAX = 0xe24d4d4f;

const FIXED_OWNERS: Record<FixedKind, string> = {
  super: 'superblock and group descriptor copies',
  blockBitmap: 'block bitmaps',
  inodeBitmap: 'inode bitmaps',
  inodeTable: 'inode tables',
};

export async function scanExt(dev: BlockDevice, sb: Superblock, t: GroupTable, volumeSize: number, opts: ScanOptions = {}): Promise<VolumeScan> {
  const { signal } = opts;
  const bs = sb.blockSize;
  const log = new AnomalyLog();
  const own = new Ownership();
  const metadata = new RangeSetBuilder(1024);
  const fileData = new RangeSetBuilder(1024);
  const reasons = superblockReasons(sb);
  checksumsOfHeaders(sb, t, log);

  fixedStructures(sb, t, own, metadata);
  metadata.add(0, sb.firstDataBlock * bs);
  metadata.add(sb.blocksCount * bs, volumeSize);
  if (sb.mmpBlock) await checkMmp(dev, sb, own, metadata, reasons.dirty, log);
  aborted(signal);

  const free = await readFreeMap(dev, sb, t, log, signal);
  aborted(signal);

  const records = new InodeRecords();
  const entries = new DirEntries();
  const pass = new InodePass(dev, sb, t, records, entries, log, own, metadata, fileData);
  await pass.run(signal);
  await checkJournal(dev, sb, records, pass.out.journalStart, reasons.recovery, log);
  markOrphanList(sb, records, pass.out.dtimes, log);
  aborted(signal);

  const ns = new Namespace(sb, records, entries, log);
  ns.build();
  let files = 0;
  let directories = 0;
  for (let r = 0; r < records.count; r++) {
    const dir = records.type.a[r] === T_DIR;
    if (dir) directories++;
    else files++;
    if (opts.onFile) opts.onFile(guestFile(sb, t, records, ns, r));
    if ((r & 4095) === 0) aborted(signal);
  }

  const checked = own.check(free);
  for (const a of checked.anomalies) {
    if (a.kind === 'double-owned' && hasRoCompat(sb, RO_COMPAT.SHARED_BLOCKS)) continue;
    const message = a.kind === 'double-owned' && a.ranges ? doubleOwned(sb, t, records, a.ranges) : a.message;
    if (a.ranges) log.addSet(a.kind, message, a.ranges);
    else log.add(a.kind, message);
  }
  const area = RangeSet.of(sb.firstDataBlock * bs, sb.blocksCount * bs);
  const unowned = area.subtract(free).subtract(checked.owned);
  if (!unowned.isEmpty) {
    log.addSet('unowned-allocated', `${unowned.bytes} bytes are allocated in the block bitmaps but no file or structure claims them (first at byte ${unowned.first})`, unowned);
  }
  metadata.addSet(unowned);
  return {
    state: stateOf(reasons),
    free,
    metadata: metadata.build(),
    fileData: fileData.build(),
    anomalies: log.toAnomalies(),
    files,
    directories,
  };
}

function aborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
}

function stateOf(r: { recovery: string[]; dirty: string[] }): VolumeState {
  if (r.recovery.length) return { state: 'needs-recovery', reasons: [...r.recovery, ...r.dirty] };
  if (r.dirty.length) return { state: 'dirty', reasons: r.dirty };
  return { state: 'clean', reasons: [] };
}

function checksumsOfHeaders(sb: Superblock, t: GroupTable, log: AnomalyLog): void {
  if (!sb.checksumOk) log.add('bad-checksum', 'the superblock fails its checksum', 1024, 2048);
  for (let g = 0; g < t.count; g++) {
    if (!t.csumOk[g]) log.add('bad-checksum', `group descriptor ${g} fails its checksum (its UNINIT flags are ignored, as e2fsprogs does)`);
  }
}

function fixedStructures(sb: Superblock, t: GroupTable, own: Ownership, metadata: RangeSetBuilder): void {
  const bs = sb.blockSize;
  const owners = new Map<FixedKind, number>();
  for (const k of Object.keys(FIXED_OWNERS) as FixedKind[]) owners.set(k, own.owner(FIXED_OWNERS[k]));
  forEachFixed(sb, t, (kind, start, count) => {
    own.addRange(owners.get(kind)!, start * bs, (start + count) * bs);
    metadata.add(start * bs, (start + count) * bs);
  });
}

/** Names who claims the first few double-owned ranges (fixed structures by group, inodes by number). */
function doubleOwned(sb: Superblock, t: GroupTable, records: InodeRecords, ranges: RangeSet): string {
  const bs = sb.blockSize;
  const cases: string[] = [];
  for (let i = 0; i < Math.min(ranges.count, 4); i++) {
    const pos = ranges.start(i);
    const names: string[] = [];
    forEachFixed(sb, t, (kind, start, count, g) => {
      if (start * bs <= pos && pos < (start + count) * bs) names.push(`${FIXED_NAMES[kind]} of group ${g}`);
    });
    if (sb.mmpBlock && Math.floor(pos / bs) === sb.mmpBlock) names.push('MMP block');
    for (const ino of records.claimers(pos)) names.push(`inode ${ino}`);
    cases.push(`${names.join(' and ')} at byte ${pos}`);
  }
  return `${ranges.bytes} bytes are claimed by two owners (${cases.join('; ')})`;
}

const FIXED_NAMES: Record<FixedKind, string> = {
  super: 'superblock or descriptors',
  blockBitmap: 'block bitmap',
  inodeBitmap: 'inode bitmap',
  inodeTable: 'inode table',
};

/** The MMP block: metadata, and a reason when it says the volume is in use or being checked. */
async function checkMmp(dev: BlockDevice, sb: Superblock, own: Ownership, metadata: RangeSetBuilder, dirty: string[], log: AnomalyLog): Promise<void> {
  const at = sb.mmpBlock * sb.blockSize;
  own.addRange(own.owner('MMP block'), at, at + sb.blockSize);
  metadata.add(at, at + sb.blockSize);
  const b = await dev.read(sb.mmpBlock, 1, 'MMP block');
  const dv = new DataView(b.buffer, b.byteOffset, 8);
  if (dv.getUint32(0, true) !== MMP_MAGIC) {
    log.add('bad-mmp', `the MMP block ${sb.mmpBlock} has a bad magic`);
    return;
  }
  const seq = dv.getUint32(4, true);
  if (seq === MMP_SEQ_FSCK) dirty.push('multi-mount protection says e2fsck is running on it');
  else if (seq !== MMP_SEQ_CLEAN && seq <= MMP_SEQ_MAX) dirty.push(`multi-mount protection says it is in use (sequence ${seq})`);
  else if (seq !== MMP_SEQ_CLEAN) log.add('bad-mmp', `the MMP block holds an unknown sequence 0x${seq.toString(16)}`);
}

/** The journal's own superblock: s_start != 0 means transactions wait to be replayed. */
async function checkJournal(dev: BlockDevice, sb: Superblock, records: InodeRecords, start: number, recovery: string[], log: AnomalyLog): Promise<void> {
  if (!hasCompat(sb, COMPAT.HAS_JOURNAL)) return;
  if (sb.journalInum === 0) {
    const uuid = [...sb.journalUuid].map((b) => b.toString(16).padStart(2, '0')).join('');
    log.add('external-journal', `the journal is on an external device (UUID ${uuid}, device 0x${sb.journalDev.toString(16)}); whether it holds changes to replay cannot be checked here`);
    return;
  }
  if (records.find(sb.journalInum) < 0 || start < 0) {
    log.add('bad-journal', `the journal inode ${sb.journalInum} is not in use or has no first block`);
    return;
  }
  const b = await dev.read(start, 1, 'journal superblock');
  const dv = new DataView(b.buffer, b.byteOffset, 32);
  const type = dv.getUint32(4, false);
  if (dv.getUint32(0, false) !== JBD2_MAGIC || (type !== 3 && type !== 4)) {
    log.add('bad-journal', `the journal's first block (${start}) is not a journal superblock`, start * sb.blockSize, (start + 1) * sb.blockSize);
    return;
  }
  const sStart = dv.getUint32(28, false);
  if (sStart !== 0) recovery.push(`the journal holds transactions not yet replayed (its log starts at block ${sStart})`);
}

/** Follows the orphan list (s_last_orphan, then each inode's i_dtime) and marks its inodes. */
function markOrphanList(sb: Superblock, records: InodeRecords, dtimes: Map<number, number>, log: AnomalyLog): void {
  let ino = sb.lastOrphan;
  while (ino !== 0) {
    const r = records.find(ino);
    if (r < 0) {
      log.add('bad-inode', `the orphan list names inode ${ino}, which is not in use`);
      return;
    }
    if (records.flags.a[r] & F_ORPHAN_LIST) {
      log.add('bad-inode', `the orphan list loops back to inode ${ino}`);
      return;
    }
    records.flags.a[r] |= F_ORPHAN_LIST;
    ino = dtimes.get(ino) ?? 0;
  }
}

function guestFile(sb: Superblock, t: GroupTable, records: InodeRecords, ns: Namespace, r: number): GuestFile {
  const ino = records.ino.a[r];
  const at = inodeOffset(sb, t, ino);
  return {
    id: `ino:${ino}:${records.gen.a[r]}`,
    path: ns.path(r),
    size: records.size.a[r],
    directory: records.type.a[r] === T_DIR,
    system: (records.flags.a[r] & F_SYSTEM) !== 0,
    data: records.data(r),
    meta: records.meta(r, at, at + sb.inodeSize),
    ref: ino,
  };
}
