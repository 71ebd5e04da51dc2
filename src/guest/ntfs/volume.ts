/**
 * An NTFS volume read through a ByteSource: open() validates the boot
 * sector and maps the $MFT; scan() reads the state gates and $Bitmap, makes
 * one pass over the MFT, then builds paths, calls onFile once per file and
 * stream, and cross-checks who owns which cluster.
 */
import { GuestError } from '../errors.js';
import type { RangeSet } from '../ranges.js';
import { FreeMapBuilder } from './bitmap.js';
import { readChecked, type ByteSource } from '../source.js';
import type { GuestFile, ScanOptions, Volume, VolumeScan, VolumeState, VolumeStateName } from '../volume.js';
import { AT_DATA, AT_VOLUME_INFORMATION, AT_VOLUME_NAME, ATTR_COMPRESSED, ATTR_ENCRYPTED } from './attributes.js';
import { parseBoot, type NtfsGeometry } from './boot.js';
import { utf16 } from './bytes.js';
import { compressedChunks, readStream, streamChunks } from './content.js';
import { loadFile, streamOf, type AttrInfo } from './file.js';
import { loadMftMap, type MftMap } from './mft.js';
import { MftPass } from './pass.js';
import { Assembly, STREAMS, type Since } from './assemble.js';
import { canContinue, continuePass, NtfsResume, type Layout } from './delta.js';
import { HIBERFILE_HEADER, hiberfileProblem, logfileProblem, VOLUME_IS_DIRTY } from './state.js';
import { applyFixups, readHeader } from './record.js';
import { checkIndexes } from './indexes.js';

const MFTMIRR = 1;
const LOGFILE = 2;
const VOLUME = 3;
const BITMAP = 6;
/** Bytes of $LogFile read for its restart pages (two pages of up to 32 KiB). */
const LOG_HEAD = 64 * 1024;

export class NtfsVolume implements Volume {
  readonly kind = 'ntfs' as const;
  readonly size: number;
  readonly clusterSize: number;
  readonly clusterArea: { start: number; end: number };
  private volumeName: string | null = null;

  private constructor(
    private readonly src: ByteSource,
    readonly geometry: NtfsGeometry,
    private readonly map: MftMap,
  ) {
    this.size = src.size;
    this.clusterSize = geometry.clusterSize;
    this.clusterArea = { start: 0, end: geometry.clusterCount * geometry.clusterSize };
  }

  static async open(src: ByteSource): Promise<NtfsVolume> {
    const boot = await readChecked(src, 0, 512, 'boot sector');
    const g = parseBoot(boot, src.size);
    const vol = new NtfsVolume(src, g, await loadMftMap(src, g));
    // A label that cannot be read is no reason to refuse the volume ($Volume is checked again by scan).
    vol.volumeName = await vol.readLabel().catch(() => null);
    return vol;
  }

  get label(): string | null {
    return this.volumeName;
  }

  private load(n: number): Promise<{ attrs: AttrInfo[] }> {
    return loadFile(this.src, (r) => this.map.readRecord(this.src, r), n, this.geometry);
  }

  private async readLabel(): Promise<string | null> {
    const { attrs } = await this.load(VOLUME);
    const v = attrs.find((a) => a.type === AT_VOLUME_NAME)?.value;
    return v && v.length >= 2 ? utf16(v, 0, v.length >> 1) : null;
  }

  /** The named attribute's bytes [0, min(size, limit)), resident or not. */
  private async head(attrs: AttrInfo[], type: number, limit: number, what: string): Promise<{ bytes: Uint8Array; size: number } | null> {
    const s = streamOf(attrs, type, '');
    if (!s) return null;
    if (s.resident) return { bytes: s.resident.subarray(0, limit), size: s.dataSize };
    return { bytes: await readStream(this.src, s, this.clusterSize, 0, Math.min(limit, s.dataSize), what), size: s.dataSize };
  }

  /** Dirty flag and $LogFile; hiberfil.sys is added once the pass has found it. */
  private async stateReasons(): Promise<Array<[VolumeStateName, string]>> {
    const out: Array<[VolumeStateName, string]> = [];
    const vol = await this.load(VOLUME);
    const info = vol.attrs.find((a) => a.type === AT_VOLUME_INFORMATION && a.value && a.value.length >= 12);
    if (!info?.value) throw new GuestError('$Volume has no $VOLUME_INFORMATION: the volume state cannot be known');
    const flags = info.value[10] | (info.value[11] << 8);
    if (flags & VOLUME_IS_DIRTY) out.push(['dirty', '$Volume is marked dirty (chkdsk is due)']);
    const log = await this.head((await this.load(LOGFILE)).attrs, AT_DATA, LOG_HEAD, '$LogFile');
    if (!log) throw new GuestError('$LogFile has no $DATA: the volume state cannot be known');
    const problem = logfileProblem(log.bytes);
    if (problem) out.push(['unclean-log', problem]);
    return out;
  }

  private async hiberfil(record: number): Promise<string | null> {
    const f = await this.head((await this.load(record)).attrs, AT_DATA, HIBERFILE_HEADER, 'hiberfil.sys');
    return f ? hiberfileProblem(f.bytes, f.size) : hiberfileProblem(new Uint8Array(0), 0);
  }

  /** Free clusters from $Bitmap: bit n is cluster n, LSB first; bits past the cluster count are ignored. */
  private async freeMap(): Promise<RangeSet> {
    const s = streamOf((await this.load(BITMAP)).attrs, AT_DATA, '');
    const need = Math.ceil(this.geometry.clusterCount / 8);
    if (!s) throw new GuestError('$Bitmap has no $DATA');
    if (s.dataSize < need) throw new GuestError(`$Bitmap holds ${s.dataSize} bytes, fewer than the ${need} its ${this.geometry.clusterCount} clusters need`);
    const free = new FreeMapBuilder(this.geometry.clusterCount, this.clusterSize);
    const chunks = s.resident ? [s.resident] : streamChunks(this.src, { ...s, dataSize: need }, this.clusterSize, '$Bitmap');
    for await (const chunk of chunks) free.feed(chunk);
    return free.finish();
  }

  /**
   * Records 0..3 (or a cluster's worth) against their copies in $MFTMirr,
   * as ntfs-3g compares them at mount: a difference means sectors of the MFT
   * and its mirror come from different times (or different parents).
   */
  private async mirrorMismatch(): Promise<number[]> {
    const g = this.geometry;
    const count = g.clusterSize <= 4 * g.recordSize ? 4 : g.clusterSize / g.recordSize;
    const s = streamOf((await this.load(MFTMIRR)).attrs, AT_DATA, '');
    if (!s || s.resident || s.dataSize < count * g.recordSize) throw new GuestError(`$MFTMirr holds fewer than the ${count} records it mirrors`);
    const mirror = await readStream(this.src, s, this.clusterSize, 0, count * g.recordSize, '$MFTMirr');
    const differ: number[] = [];
    for (let n = 0; n < count && n < this.map.records; n++) {
      const main = await this.map.readRecord(this.src, n) as Uint8Array;
      const copy = mirror.subarray(n * g.recordSize, (n + 1) * g.recordSize);
      if (!sameRecord(main, copy, g.recordSize)) differ.push(n);
    }
    return differ;
  }

  /**
   * One pass over the MFT, then the assembly. With ScanOptions.since (and
   * without `indexes`), when this view can continue from the earlier scan
   * (delta.ts: same geometry, its records at the same bytes), only the
   * records that may differ are read and only the files that may differ
   * are reported; an incremental scan keeps no state to resume from.
   */
  async scan(opts: ScanOptions = {}): Promise<VolumeScan> {
    const reasons = await this.stateReasons();
    const mirror = await this.mirrorMismatch();
    const free = await this.freeMap();
    const ranges = (n: number) => this.map.recordRanges(n);
    const from = opts.since && !opts.indexes ? opts.since.from : null;
    const prev = from instanceof NtfsResume && canContinue(from.layout, this.layout, opts.since!.changed) ? from : null;
    const cont = prev ? await continuePass(this.src, this.layout, ranges, prev, opts.since!.changed, opts.signal) : null;
    let pass: MftPass;
    let since: Since | undefined;
    if (cont && prev) {
      pass = cont.pass;
      since = { prev, changed: opts.since!.changed, dirty: cont.dirty };
    } else {
      pass = new MftPass(this.geometry, ranges);
      await this.map.forEachWindow(this.src, (buf, first, count) => pass.visitWindow(buf, first, count), opts.signal);
    }
    if (mirror.length) pass.anomalies.add('mirror-mismatch', `$MFTMirr does not match $MFT for record${mirror.length > 1 ? 's' : ''} ${mirror.join(', ')}`);
    const result = new Assembly(this, pass, free, opts, since).run();
    if (opts.indexes) {
      const v = { src: this.src, clusterSize: this.clusterSize, load: (n: number) => this.load(n), recordRanges: (n: number) => this.recordRanges(n) };
      result.scan.anomalies.push(...await checkIndexes(v, pass.records, opts.signal));
    }
    const hib = result.hiberfil >= 0 ? await this.hiberfil(result.hiberfil) : null;
    if (hib) reasons.unshift(['hibernated', hib]);
    const out: VolumeScan = { ...result.scan, state: stateOf(reasons) };
    if (result.unreported) out.unreported = result.unreported;
    else if (opts.resumable) out.resume = new NtfsResume(this.layout, result.files);
    return out;
  }

  private get layout(): Layout {
    return { size: this.size, geometry: this.geometry, map: this.map };
  }

  /** Whether scan({ since }) from a resumable scan of `earlier` is incremental (delta.ts: canContinue). */
  continuesFrom(earlier: Volume, changed: RangeSet): boolean {
    return earlier instanceof NtfsVolume && canContinue(earlier.layout, this.layout, changed);
  }

  /** Volume bytes of MFT record n. */
  recordRanges(n: number): RangeSet {
    return this.map.recordRanges(n);
  }

  async *readContent(f: GuestFile): AsyncIterable<Uint8Array> {
    const record = Math.floor(f.ref / STREAMS);
    const k = f.ref % STREAMS;
    const { attrs } = await this.load(record);
    let name = '';
    if (k > 0) {
      const names = [...new Set(attrs.filter((a) => a.type === AT_DATA && a.name !== '').map((a) => a.name))].sort();
      if (k > names.length) throw new GuestError(`${f.path}: MFT record ${record} has no stream number ${k}`);
      name = names[k - 1];
    }
    const s = streamOf(attrs, AT_DATA, name);
    if (!s || f.directory) return;
    if (s.flags & ATTR_ENCRYPTED && !s.resident) throw new GuestError(`${f.path}: its content is encrypted (EFS), which this reader does not decrypt`);
    if (s.resident) {
      if (s.resident.length) yield s.resident;
      return;
    }
    if (s.flags & ATTR_COMPRESSED) yield* compressedChunks(this.src, s, this.clusterSize, s.compressionUnit, f.path);
    else yield* streamChunks(this.src, s, this.clusterSize, f.path);
  }
}

/** Two copies of a record agree: both fix up, and their bytes in use are equal (ntfs-3g's $MFTMirr check). */
function sameRecord(a: Uint8Array, b: Uint8Array, size: number): boolean {
  const x = a.slice(0, size);
  const y = b.slice(0, size);
  if (applyFixups(x, 0, size) !== 'ok' || applyFixups(y, 0, size) !== 'ok') return false;
  const used = readHeader(x, 0).bytesInUse;
  if (used > size || used !== readHeader(y, 0).bytesInUse) return false;
  for (let i = 0; i < used; i++) if (x[i] !== y[i]) return false;
  return true;
}

const SEVERITY: VolumeStateName[] = ['hibernated', 'unclean-log', 'needs-recovery', 'dirty'];

function stateOf(reasons: Array<[VolumeStateName, string]>): VolumeState {
  const worst = SEVERITY.find((s) => reasons.some(([n]) => n === s)) ?? 'clean';
  return { state: worst, reasons: reasons.map(([, r]) => r) };
}
