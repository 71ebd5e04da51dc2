/**
 * The survey before `compact --free-space`: the guest as the whole chain
 * composes it (child over parents: the free maps and the file systems'
 * metadata may live in any layer), read through the guest layer: the
 * partition table, then every partition's volume, scanned once. From what it
 * finds, the drop plan (plan/dropPlan.ts) is decided.
 *
 * Reads only; a partition that cannot be read is reported with its error and
 * left out of the plan, the others proceed.
 */
import type { Chain } from '../chain/chain.js';
import { ChainReader } from '../chain/reader.js';
import { chainSource } from '../chain/guestSource.js';
import { isUnknown } from '../guest/detect.js';
import { inPartition } from '../guest/errors.js';
import { readGuestLayout, type PartitionView } from '../guest/layout.js';
import type { ByteSource } from '../guest/source.js';
import type { GuestFile, Volume } from '../guest/volume.js';
import { VhdToolError } from '../errors.js';
import { HEADER_KEEP, planDrops, SPECIAL_FILES, type DropKind, type DropPlan, type PartitionFacts, type SpecialFile } from '../plan/dropPlan.js';
import { noopProgress, type ProgressSink } from '../progress.js';

export interface SurveyOptions {
  drops: readonly DropKind[];
  signal?: AbortSignal;
  progress?: ProgressSink;
}

/**
 * A source that can note the reads made through it: where a file's content
 * begins on the volume is learnt from the first read its reader makes inside
 * the file's clusters (then checked against the bytes).
 */
class NotingSource implements ByteSource {
  notes: Array<[number, number]> | null = null;

  constructor(private readonly inner: ByteSource) {}

  get size(): number {
    return this.inner.size;
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    this.notes?.push([offset, length]);
    return this.inner.read(offset, length);
  }
}

/** Surveys the chain's guest view and plans the drops. */
export async function surveyDrops(chain: Chain, opts: SurveyOptions): Promise<DropPlan> {
  const progress = opts.progress ?? noopProgress;
  const disk = new NotingSource(chainSource(new ChainReader(chain)));
  progress.start('reading the guest file systems', 0);
  try {
    let layout;
    try {
      layout = await readGuestLayout(disk);
    } catch (e) {
      if (e instanceof VhdToolError && e.code === 'BAD_FILESYSTEM') return planDrops([], opts.drops, undefined, e.message);
      throw e;
    }
    const facts: PartitionFacts[] = [];
    for (const view of layout.partitions) {
      if (opts.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
      facts.push(await surveyPartition(disk, view, opts));
    }
    return planDrops(facts, opts.drops, layout.outside);
  } finally {
    progress.done();
  }
}

async function surveyPartition(disk: NotingSource, view: PartitionView, opts: SurveyOptions): Promise<PartitionFacts> {
  const p = view.partition;
  const base = { index: p.index, start: p.start, size: p.size, label: null, error: null };
  if (view.error || !view.volume) return { ...base, fs: view.reader ?? 'unknown', error: view.error?.message ?? 'not opened' };
  const vol = view.volume;
  if (isUnknown(vol)) return { ...base, fs: 'unknown', name: vol.name };
  try {
    const special: Partial<Record<keyof typeof SPECIAL_FILES, GuestFile>> = {};
    const wanted = new Map<string, keyof typeof SPECIAL_FILES>();
    for (const k of ['pagefile', 'swapfile', 'hiberfil'] as const) if (opts.drops.includes(k)) wanted.set(SPECIAL_FILES[k], k);
    const scan = await vol.scan({
      signal: opts.signal,
      onFile: wanted.size ? (f) => {
        const k = !f.directory && !f.path.includes('/') ? wanted.get(f.path.toLowerCase()) : undefined;
        if (k && !special[k]) special[k] = f;
      } : undefined,
    });
    const facts: PartitionFacts = {
      ...base, fs: vol.kind, label: vol.label, state: scan.state, clusterSize: vol.clusterSize, clusterArea: vol.clusterArea,
      free: scan.free, metadata: scan.metadata, anomalies: scan.anomalies, special: {},
    };
    for (const [k, f] of Object.entries(special) as Array<[keyof typeof SPECIAL_FILES, GuestFile]>) {
      if (!f.data.isEmpty) facts.special![k] = await specialFile(disk, p.start, vol, f);
    }
    return facts;
  } catch (e) {
    if (e instanceof VhdToolError && e.code === 'INTERRUPTED') throw e;
    if (opts.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
    return { ...base, fs: vol.kind, error: inPartition(e, p.index, view.reader ?? undefined).message };
  }
}

/** A pagefile's, swapfile's or hiberfil's first bytes and where they lie on the volume. */
async function specialFile(disk: NotingSource, start: number, vol: Volume, f: GuestFile): Promise<SpecialFile> {
  disk.notes = [];
  const chunks: Uint8Array[] = [];
  let got = 0;
  let notes: Array<[number, number]>;
  try {
    for await (const c of vol.readContent(f)) {
      chunks.push(c);
      got += c.length;
      if (got >= HEADER_KEEP) break;
    }
  } finally {
    notes = disk.notes;
    disk.notes = null;
  }
  const head = new Uint8Array(Math.min(got, HEADER_KEEP));
  let at = 0;
  for (const c of chunks) {
    if (at >= head.length) break;
    head.set(c.subarray(0, head.length - at), at);
    at += Math.min(c.length, head.length - at);
  }
  // The first read inside the file's own clusters is where its content begins; the bytes there must be the head.
  let headAt: number | null = null;
  for (const [off, len] of notes) {
    const v = off - start;
    if (f.data.overlaps(v, v + len)) {
      if (f.data.has(v)) headAt = v;
      break;
    }
  }
  if (headAt !== null && head.length > 0) {
    const check = await disk.read(start + headAt, Math.min(head.length, vol.size - headAt));
    if (!sameBytes(check, head)) headAt = null;
  }
  return { path: f.path, size: f.size, data: f.data, head, headAt };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
