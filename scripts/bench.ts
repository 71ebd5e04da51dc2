/**
 * `npm run bench`: vhdtool against the machine's own ceilings (issue 7).
 *
 * A benchmark, not a test: it prints numbers and checks nothing but that each
 * command succeeded and that its outputs hold the right content.
 *
 *   npm run bench                      # everything, 5 interleaved runs each
 *   npm run bench -- --quick           # 1 run each (smoke)
 *   npm run bench -- --only compact,merge
 *   node dist/scripts/bench.js --help
 *
 * Data (generated once, cached in .bench-cache/ by generator version):
 *   chain  8 GiB virtual, 2 MiB blocks: parent 1 GiB allocated, child 0.5 GiB
 *          (identical, mixed-per-sector, new, zero and partial blocks), and
 *          flat.vhd, their content as one disk, built independently;
 *   scale  2040 GiB virtual, a few dozen blocks written;
 *   tree   1000 small disks for `maintain --dry-run`.
 *
 * Method: each command is a child process; inputs are read once first (warm
 * page cache); every repetition runs all operations in turn (baseline,
 * vhdtool, baseline, ...), in reverse order on odd repetitions; writing
 * commands get their output deleted, `sync` and a settle pause first, and
 * every run waits (briefly) for the CPUs to look idle. Just before a writing
 * command, the harness writes and deletes a scratch file (--prime), so that
 * every writer, baseline or vhdtool, finds the same supply of recently freed
 * memory for its page cache: on this VM (Firecracker, free-page reporting to
 * the host) new page-cache pages cost 3-6x more system time when the kernel
 * has to take pages it returned to the host, and which command came before
 * decided that, not the command's own code. Ratios are medians of
 * per-repetition ratios. Output: Markdown on stdout, the same as JSON in
 * .bench-cache/last.json, progress on stderr.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureChain, ensureScaleChain, ensureTree, ensureUpdatedParent, GEN_VERSION, MAIN_CHAIN, SMALL_CHAIN, type ChainMeta, type UpdatedParentMeta } from './bench-gen.js';
import { ensureBigPair, ensurePeerCopy, ensureSmallDisk, PAIRS_GEN_VERSION, qemuConvertArgs, vpcOpts, type PeerMeta, type SmallMeta } from './bench-gen-pairs.js';
import { ensureMapChain, MAP_GEN_VERSION, mapUnavailable, type MapMeta } from './bench-gen-map.js';
import { ensureFreeSpaceChain, FREESPACE_GEN } from './bench-freespace-gen.js';
import { detectRusage, median, runTimed, sleep, waitQuiet, type RusageMode, type Sample } from './bench-measure.js';
import { DIFF_GEN_VERSION, DIFF_SPEC, SMALL_DIFF_SPEC, ensureDiffVolumes } from './bench-diff-gen.js';
import { ensureRelinkVolumes, RELINK_GEN } from './bench-relink.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');
const cacheRoot = path.join(root, '.bench-cache');
const vhdtool = path.join(root, 'bin', 'vhdtool.js');
const MiB = 1024 * 1024;
const RSS_LIMIT_MIB = 256;

// ---------------------------------------------------------------------------
// Options.

const USAGE = `usage: node dist/scripts/bench.js [options]
  --quick            1 run of each operation (smoke test)
  --runs N           runs of each operation (default 5; at least 3 for figures worth quoting)
  --only LIST        comma-separated: cat,dd,qemu,compact,merge,rebase,compare,startup,info,big,map,scale,maintain,
                     freespace,relink,diff
                     (the baselines a ratio needs are added)
  --settle S         seconds to wait after deleting an output and sync (default 3)
  --prime MIB        before each writing command, write and delete a scratch file of MIB MiB beside its
                     output, so every writer starts from the same memory state (default 2048; 0 = off)
  --quiet-wait S     wait up to S seconds for idle CPUs (< 0.3 busy cores) before each run (default 5; 0 = off)
  --no-verify        skip checking the outputs of compact and merge against flat.vhd
  --keep-env         run vhdtool with NODE_EXTRA_CA_CERTS as inherited (by default it is removed:
                     Node parses that file at every start; vhdtool makes no network connection)
  --small            a 1/8 chain (harness smoke test; figures not comparable)
  --rusage MODE      gnu-time or node-hook (default: gnu-time when /usr/bin/time is GNU time)`;

interface Options {
  runs: number;
  only: Set<string> | null;
  settle: number;
  primeMiB: number;
  quietWait: number;
  verify: boolean;
  keepEnv: boolean;
  small: boolean;
  rusage: RusageMode | null;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { runs: 5, only: null, settle: 3, primeMiB: 2048, quietWait: 5, verify: true, keepEnv: false, small: false, rusage: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v < 0) usage(`${a} needs a number`);
      return v;
    };
    switch (a) {
      case '--quick': o.runs = 1; o.settle = 1; o.quietWait = 2; break;
      case '--runs': o.runs = Math.max(1, Math.floor(num())); break;
      case '--only': o.only = new Set((argv[++i] ?? '').split(',').map((s) => s.trim()).filter(Boolean)); break;
      case '--settle': o.settle = num(); break;
      case '--prime': o.primeMiB = Math.floor(num()); break;
      case '--quiet-wait': o.quietWait = num(); break;
      case '--no-verify': o.verify = false; break;
      case '--keep-env': o.keepEnv = true; break;
      case '--small': o.small = true; break;
      case '--rusage': {
        const v = argv[++i];
        if (v !== 'gnu-time' && v !== 'node-hook') usage('--rusage: gnu-time or node-hook');
        o.rusage = v;
        break;
      }
      case '-h': case '--help': console.log(USAGE); process.exit(0); break;
      default: usage(`unknown option ${a}`);
    }
  }
  const groups = ['cat', 'dd', 'qemu', 'compact', 'merge', 'rebase', 'compare', 'startup', 'info', 'big', 'map', 'scale', 'maintain', 'freespace', 'relink', 'diff'];
  for (const g of o.only ?? []) if (!groups.includes(g)) usage(`--only: unknown "${g}"`);
  return o;
}

function usage(msg: string): never {
  console.error(`bench: ${msg}\n${USAGE}`);
  process.exit(2);
}

const log = (s: string) => process.stderr.write(s + '\n');

// ---------------------------------------------------------------------------
// Operations.

interface Op {
  id: string;
  group: string;
  label: string;
  argv: string[];
  /** Written by the command: deleted before each run. */
  output?: string;
  /** Bytes of data the operation processes (for MB/s); null: no rate. */
  bytes: number | null;
  bytesNote: string;
  expectCode: number;
  vhdtool: boolean;
  /** Absolute target in seconds, if any. */
  targetSeconds?: number;
  /** Checks the first run's result; returns a note (problems start with "FAIL"). */
  verify?: (s: Sample) => string;
  /** Environment changes for this command (undefined removes a variable). */
  env?: NodeJS.ProcessEnv;
}

interface Composite {
  id: string;
  label: string;
  parts: string[];
}

interface RatioSpec {
  op: string;
  baseline: string;
  /** Ratio bar; or, with `deltaMs`, none. */
  target: number;
  goal?: number;
  /** The bar is a difference, not a ratio: op time - baseline time <= deltaMs per run (median). */
  deltaMs?: number;
  /** A second ratio for an op: shown as a row of its own, with this id and label. */
  row?: { id: string; label: string };
}

const sh = (script: string, ...args: string[]) => ['/bin/sh', '-c', script, 'sh', ...args];
const node = (...args: string[]) => [process.execPath, vhdtool, ...args];

/**
 * The environment vhdtool's commands run in. NODE_EXTRA_CA_CERTS is removed
 * unless --keep-env: Node 20 parses that CA bundle at every process start
 * (80-90 ms here, where the sandbox sets it), and vhdtool makes no network
 * connection. The table then shows one compare with the variable as
 * inherited, so the cost stays visible.
 */
function nodeEnv(o: Options): NodeJS.ProcessEnv | undefined {
  return o.keepEnv ? undefined : { NODE_EXTRA_CA_CERTS: undefined };
}

/** Both chains' data: what compare reads at most. */
function compareBytesOf(m: ChainMeta): number {
  return m.parentDataBytes + m.childDataBytes + m.flatDataBytes;
}

function mainOps(m: ChainMeta, up: UpdatedParentMeta | null, peer: PeerMeta | null, small: SmallMeta | null, threadsDefault: number, o: Options): { ops: Op[]; composites: Composite[]; ratios: RatioSpec[]; speedups: { t1: string; tn: string; goal?: number; label: string }[] } {
  const dir = path.dirname(m.child);
  const out = (n: string) => path.join(dir, `out-${n}.vhd`);
  const catAllBytes = m.parentFileBytes + m.childFileBytes + m.flatFileBytes;
  const mergeBytes = m.parentDataBytes + m.childDataBytes;
  const compareBytes = compareBytesOf(m);
  const ops: Op[] = [];
  const add = (op: Omit<Op, 'expectCode' | 'vhdtool'> & Partial<Pick<Op, 'expectCode' | 'vhdtool'>>) =>
    ops.push({ expectCode: 0, vhdtool: false, ...op });

  const verifyAgainstFlat = (file: string) => (): string => {
    if (!o.verify) return '';
    const r = spawnSync(process.execPath, [vhdtool, 'compare', file, m.flat, '--json', '--no-progress'], { encoding: 'utf8' });
    return r.status === 0 ? 'output compares identical to flat.vhd' : `FAIL: compare with flat.vhd exited ${r.status}: ${(r.stderr || r.stdout).trim().split('\n')[0]}`;
  };
  const compactCheck = (s: Sample): string => {
    const notes: string[] = [];
    try {
      const j = JSON.parse(s.stdout) as { sectors?: { kept?: number }; blocks?: { after?: number }; newSize?: number };
      const kept = j.sectors?.kept;
      const after = j.blocks?.after;
      notes.push(kept === m.expectKeptSectors ? `kept ${kept} sectors as expected` : `FAIL: kept ${kept} sectors, expected ${m.expectKeptSectors}`);
      notes.push(after === m.expectKeptBlocks ? `${after} blocks` : `FAIL: ${after} blocks, expected ${m.expectKeptBlocks}`);
      if (j.newSize !== undefined) notes.push(`${(j.newSize / MiB).toFixed(0)} MiB written`);
    } catch {
      notes.push('FAIL: no JSON result');
    }
    notes.push(verifyAgainstFlat(out('compact'))());
    return notes.filter(Boolean).join('; ');
  };
  const mergeCheck = (s: Sample): string => {
    const notes: string[] = [];
    try {
      const j = JSON.parse(s.stdout) as { bytesWritten?: number; blocks?: number };
      notes.push(`${j.blocks} blocks, ${((j.bytesWritten ?? 0) / MiB).toFixed(0)} MiB written`);
    } catch {
      notes.push('FAIL: no JSON result');
    }
    notes.push(verifyAgainstFlat(out('merge'))());
    return notes.filter(Boolean).join('; ');
  };

  add({ id: 'cat-parent', group: 'cat', label: '`cat parent.vhd`', argv: sh('cat "$1" > /dev/null', m.parent), bytes: m.parentFileBytes, bytesNote: 'parent file' });
  add({ id: 'dd-child', group: 'dd', label: '`dd conv=fsync` of child.vhd', argv: sh('dd if="$1" of="$2" bs=4M conv=fsync status=none', m.child, out('dd')), output: out('dd'), bytes: m.childFileBytes, bytesNote: 'child file' });
  for (const t of [1, 0]) {
    const th = t ? ['--threads', String(t)] : [];
    add({
      id: t ? 'compact-t1' : 'compact-tn', group: 'compact', vhdtool: true,
      label: `vhdtool compact --output${t ? ' --threads 1' : ` (default: ${threadsDefault} threads)`}`,
      argv: node('compact', m.child, '--output', out('compact'), '--force', '--no-progress', '--json', ...th),
      output: out('compact'), bytes: m.childDataBytes, bytesNote: 'child data', verify: compactCheck,
    });
  }
  // merge's peer: qemu cannot follow a VHD parent, so it writes the merged content from flat.vhd.
  add({
    id: 'qemu-flat', group: 'qemu', label: '`qemu-img convert -O vpc` of flat.vhd (the merged content) + `sync OUT`',
    argv: sh('out="$1"; shift; qemu-img "$@" && sync "$out"', out('qemu'), ...qemuConvertArgs(m.flat, out('qemu'))),
    output: out('qemu'), bytes: m.flatDataBytes, bytesNote: 'flat data',
  });
  // merge's floor: read both inputs, write the merged disk's bytes (flat.vhd's) with fsync.
  add({ id: 'cat-pc', group: 'cat', label: '`cat` parent + child', argv: sh('cat "$1" "$2" > /dev/null', m.parent, m.child), bytes: m.parentFileBytes + m.childFileBytes, bytesNote: 'parent + child files' });
  add({ id: 'dd-flat', group: 'dd', label: '`dd conv=fsync` of flat.vhd', argv: sh('dd if="$1" of="$2" bs=4M conv=fsync status=none', m.flat, out('ddflat')), output: out('ddflat'), bytes: m.flatFileBytes, bytesNote: 'flat file' });
  for (const t of [1, 0]) {
    const th = t ? ['--threads', String(t)] : [];
    add({
      id: t ? 'merge-t1' : 'merge-tn', group: 'merge', vhdtool: true,
      label: `vhdtool merge${t ? ' --threads 1' : ` (default: ${threadsDefault} threads)`}`,
      argv: node('merge', m.child, m.parent, out('merge'), '--force', '--no-progress', '--json', ...th),
      output: out('merge'), bytes: mergeBytes, bytesNote: 'parent + child data', verify: mergeCheck,
    });
  }
  if (up) {
    // rebase: the child onto an updated template, as a new file; the result over parent-v2 must read as flat.vhd.
    add({
      id: 'rebase-tn', group: 'rebase', vhdtool: true,
      label: `vhdtool rebase child --onto parent-v2 --output (default: ${threadsDefault} threads)`,
      argv: node('rebase', m.child, '--onto', up.parentV2, '--output', out('rebase'), '--force', '--no-progress', '--json'),
      output: out('rebase'), bytes: mergeBytes + up.dataBytes, bytesNote: 'parent + child + parent-v2 data',
      verify: (s) => {
        let note = '';
        try {
          const j = JSON.parse(s.stdout) as { blocks?: number; bytesWritten?: number; verifiedBytes?: number };
          note = `${j.blocks} blocks, ${((j.bytesWritten ?? 0) / MiB).toFixed(0)} MiB written, ${((j.verifiedBytes ?? 0) / MiB).toFixed(0)} MiB proven after writing`;
        } catch {
          note = 'FAIL: no JSON result';
        }
        return [note, verifyAgainstFlat(out('rebase'))()].filter(Boolean).join('; ');
      },
    });
  }
  add({ id: 'cat-all', group: 'cat', label: '`cat` child + parent + flat.vhd', argv: sh('cat "$1" "$2" "$3" > /dev/null', m.child, m.parent, m.flat), bytes: catAllBytes, bytesNote: 'both chains\' files' });
  for (const t of [1, 0]) {
    const th = t ? ['--threads', String(t)] : [];
    add({
      id: t ? 'compare-t1' : 'compare-tn', group: 'compare', vhdtool: true,
      label: `vhdtool compare child flat${t ? ' --threads 1' : ` (default: ${threadsDefault} threads)`}`,
      argv: node('compare', m.child, m.flat, '--no-progress', '--json', ...th),
      bytes: compareBytes, bytesNote: 'both chains\' data',
    });
  }
  if (process.env.NODE_EXTRA_CA_CERTS && !o.keepEnv) {
    add({
      id: 'compare-tn-env', group: 'compare', vhdtool: true, env: {},
      label: `vhdtool compare child flat (default: ${threadsDefault} threads), NODE_EXTRA_CA_CERTS as inherited`,
      argv: node('compare', m.child, m.flat, '--no-progress', '--json'),
      bytes: compareBytes, bytesNote: 'both chains\' data',
    });
  }
  if (peer) {
    // Two standalone disks of the same content, one written by vhdtool's generator, one by qemu-img.
    add({
      id: 'qemu-cmp', group: 'compare', label: '`qemu-img compare` flat.vhd flat-qemu.vhd (one thread)',
      argv: ['qemu-img', 'compare', '--image-opts', vpcOpts(m.flat), vpcOpts(peer.flatQemu)],
      bytes: m.flatDataBytes, bytesNote: 'flat data',
    });
    add({
      id: 'compare-std', group: 'compare', vhdtool: true, label: `vhdtool compare flat.vhd flat-qemu.vhd (default: ${threadsDefault} threads)`,
      argv: node('compare', m.flat, peer.flatQemu, '--no-progress', '--json'), bytes: m.flatDataBytes, bytesNote: 'flat data',
    });
  }
  add({ id: 'node-start', group: 'startup', label: '`node -e 0` (Node\'s start-up alone, same environment as vhdtool)', argv: [process.execPath, '-e', '0'], env: nodeEnv(o), bytes: null, bytesNote: '' });
  add({ id: 'version', group: 'startup', vhdtool: true, label: 'vhdtool --version', argv: node('--version'), bytes: null, bytesNote: '' });
  if (small) add({ id: 'info-small', group: 'startup', vhdtool: true, label: 'vhdtool info, a small chain (2 disks of 64 MiB)', argv: node('info', small.child), bytes: null, bytesNote: '' });
  add({ id: 'info', group: 'info', vhdtool: true, label: 'vhdtool info child (the benchmark chain)', argv: node('info', m.child), bytes: null, bytesNote: '' });

  const composites: Composite[] = [
    { id: 'compact-base', label: 'compact floor: `cat parent` + `dd conv=fsync` child (sum per run)', parts: ['cat-parent', 'dd-child'] },
    { id: 'merge-floor', label: 'merge floor: `cat` parent + child, `dd conv=fsync` of flat.vhd (sum per run)', parts: ['cat-pc', 'dd-flat'] },
  ];
  const ratios: RatioSpec[] = [
    { op: 'compact-t1', baseline: 'compact-base', target: 0.8 },
    { op: 'compact-tn', baseline: 'compact-base', target: 0.8 },
    { op: 'merge-t1', baseline: 'qemu-flat', target: 1.0 },
    { op: 'merge-tn', baseline: 'qemu-flat', target: 1.0 },
    { op: 'merge-tn', baseline: 'merge-floor', target: 1.0, row: { id: 'merge-tn-floor', label: `vhdtool merge (default: ${threadsDefault} threads), against its floor` } },
    { op: 'rebase-tn', baseline: 'merge-tn', target: 1.2 },
    { op: 'compare-t1', baseline: 'cat-all', target: 1.0 },
    { op: 'compare-tn', baseline: 'cat-all', target: 1.0 },
    { op: 'compare-tn-env', baseline: 'cat-all', target: 1.0 },
    { op: 'compare-std', baseline: 'qemu-cmp', target: 0.8 },
    { op: 'version', baseline: 'node-start', target: 0, deltaMs: 40 },
    { op: 'info-small', baseline: 'node-start', target: 0, deltaMs: 40 },
  ];
  const speedups = [
    { t1: 'compare-t1', tn: 'compare-tn', label: 'compare (whole command: Node start-up, modules and thread start included)' },
    { t1: 'compact-t1', tn: 'compact-tn', label: 'compact' },
    { t1: 'merge-t1', tn: 'merge-tn', label: 'merge' },
  ];
  // --only: keep the chosen groups and the baselines their ratios need.
  let keep = ops;
  if (spawnSync('qemu-img', ['--version'], { stdio: 'ignore' }).status !== 0) {
    log('qemu-img not found (apt-get install qemu-utils): the merge baseline is skipped');
    keep = keep.filter((op) => !['qemu-flat', 'qemu-cmp', 'compare-std'].includes(op.id));
  }
  if (o.only) {
    const need = new Set<string>();
    for (const op of ops) if (o.only.has(op.group)) need.add(op.id);
    for (const r of ratios) {
      if (!need.has(r.op)) continue;
      const c = composites.find((x) => x.id === r.baseline);
      for (const p of c ? c.parts : [r.baseline]) need.add(p);
    }
    keep = keep.filter((op) => need.has(op.id));
  }
  return { ops: keep, composites, ratios, speedups };
}

// ---------------------------------------------------------------------------
// Running.

interface Result {
  op: Op;
  samples: Sample[];
  notes: string[];
}

async function runOne(op: Op, o: Options, mode: RusageMode): Promise<Sample> {
  if (op.output) {
    rmSync(op.output, { force: true });
    spawnSync('sync');
    if (o.settle > 0) await sleep(o.settle * 1000);
  } else spawnSync('sync');
  if (o.quietWait > 0) await waitQuiet(0.3, o.quietWait);
  if (op.output && o.primeMiB > 0) prime(path.dirname(op.output), o.primeMiB);
  const s = await runTimed(op.argv, { cwd: root, mode, env: op.env ?? (op.vhdtool ? nodeEnv(o) : undefined) });
  const ok = s.code === op.expectCode;
  log(`  ${op.id.padEnd(14)} ${s.wall.toFixed(3)} s  rss ${s.maxRssKiB === null ? '?' : (s.maxRssKiB / 1024).toFixed(0)} MiB  other ${s.otherCores === null ? '?' : s.otherCores.toFixed(2)} cores${ok ? '' : `  EXIT ${s.code ?? s.signal} (expected ${op.expectCode}): ${s.stderr.trim().split('\n').slice(-2).join(' | ')}`}`);
  return s;
}

/**
 * Writes `mib` MiB of zeros to a scratch file in `dir` and deletes it unsynced
 * (its dirty pages are dropped before writeback would start): the pages it
 * freed are the next ones the kernel hands out, to whichever command runs next.
 */
function prime(dir: string, mib: number): void {
  const file = path.join(dir, `.bench-prime-${process.pid}`);
  const chunk = Buffer.alloc(8 * MiB);
  const fd = openSync(file, 'w');
  try {
    for (let i = 0; i < mib; i += 8) writeSync(fd, chunk);
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
}

async function runAll(ops: Op[], o: Options, mode: RusageMode): Promise<Map<string, Result>> {
  const results = new Map<string, Result>(ops.map((op) => [op.id, { op, samples: [], notes: [] }]));
  for (let rep = 0; rep < o.runs; rep++) {
    log(`run ${rep + 1}/${o.runs}`);
    const order = rep % 2 ? [...ops].reverse() : ops;
    for (const op of order) {
      const s = await runOne(op, o, mode);
      const r = results.get(op.id)!;
      r.samples.push(s);
      if (s.code !== op.expectCode) r.notes.push(`FAIL: run ${rep + 1} exited ${s.code ?? s.signal}: ${s.stderr.trim().split('\n').slice(-1)[0] ?? ''}`);
      else if (rep === 0 && op.verify) {
        const note = op.verify(s);
        if (note) r.notes.push(note);
        log(`    ${note}`);
      }
    }
  }
  for (const op of ops) if (op.output) rmSync(op.output, { force: true });
  return results;
}

// ---------------------------------------------------------------------------
// Reporting.

interface Row {
  id: string;
  label: string;
  bytes: number | null;
  bytesNote: string;
  seconds: number[];
  median: number;
  min: number;
  max: number;
  mbps: number | null;
  baseline?: string;
  ratio?: number;
  ratioRange?: [number, number];
  /** With a difference bar: median and range of (time - baseline time), ms. */
  deltaMs?: number;
  deltaRange?: [number, number];
  target?: string;
  verdict?: string;
  peakRssMiB: number | null;
  /** A vhdtool command over the RSS bar. */
  rssOver?: boolean;
  otherCores: number | null;
  failed: boolean;
  notes: string[];
}

function rowOf(id: string, label: string, bytes: number | null, bytesNote: string, secs: number[], rss: (number | null)[], other: (number | null)[], failed: boolean, notes: string[]): Row {
  const med = median(secs);
  const rssKnown = rss.filter((x): x is number => x !== null);
  const otherKnown = other.filter((x): x is number => x !== null);
  return {
    id, label, bytes, bytesNote, seconds: secs, median: med, min: Math.min(...secs), max: Math.max(...secs),
    mbps: bytes === null ? null : bytes / 1e6 / med,
    peakRssMiB: rssKnown.length ? Math.max(...rssKnown) / 1024 : null,
    otherCores: otherKnown.length ? median(otherKnown) : null,
    failed, notes,
  };
}

const fmtS = (r: Row) => (r.seconds.length > 1 ? `${r.median.toFixed(3)} (${r.min.toFixed(3)}–${r.max.toFixed(3)})` : r.median.toFixed(3));
const fmtMs = (ms: number) => `${ms >= 0 ? '+' : ''}${ms.toFixed(0)} ms`;
const fmtBytes = (b: number | null, note: string) => (b === null ? '–' : `${(b / MiB).toFixed(0)} MiB ${note}`);

function markdownTable(rows: Row[]): string {
  const head = '| operation | data | median s (min–max) | MB/s | baseline | ratio or difference (min–max) | target | peak RSS MiB | other CPU (cores) |\n|---|---|---|---|---|---|---|---|---|';
  const lines = rows.map((r) => [
    r.label + (r.failed ? ' **FAILED**' : ''),
    fmtBytes(r.bytes, r.bytesNote),
    fmtS(r),
    r.mbps === null ? '–' : r.mbps.toFixed(0),
    r.baseline ?? '–',
    r.deltaMs !== undefined ? `${fmtMs(r.deltaMs)}${r.deltaRange && r.seconds.length > 1 ? ` (${fmtMs(r.deltaRange[0])} to ${fmtMs(r.deltaRange[1])})` : ''}`
      : r.ratio === undefined ? '–' : `${r.ratio.toFixed(2)}×${r.ratioRange && r.seconds.length > 1 ? ` (${r.ratioRange[0].toFixed(2)}–${r.ratioRange[1].toFixed(2)})` : ''}`,
    r.target ? `${r.target}${r.verdict ? `: ${r.verdict}` : ''}` : '–',
    r.peakRssMiB === null ? '–' : `${r.peakRssMiB.toFixed(0)}${r.rssOver ? ` **> ${RSS_LIMIT_MIB}**` : ''}`,
    r.otherCores === null ? '–' : r.otherCores.toFixed(2),
  ].join(' | '));
  return [head, ...lines.map((l) => `| ${l} |`)].join('\n');
}

/** Samples for the JSON report, outputs cut short. */
function rawOf(res: Map<string, Result>): Record<string, unknown> {
  return Object.fromEntries([...res].map(([id, r]) => [id, r.samples.map(({ stdout, stderr, ...x }) => ({ ...x, stderrTail: stderr.slice(-500), stdoutHead: stdout.slice(0, 2000) }))]));
}

/**
 * Where a compare of A and B spends its time: the comparing alone, in one
 * warm process with the threads running (bench-scaling.ts), against the
 * command's time and its peer's; the rest is what a fresh process adds.
 */
function compareSplit(a: string, b: string, cmd: Row | undefined, peer: Row | undefined, threads: number, runs: number): { line: string; json: unknown } {
  const sc = spawnSync(process.execPath, [path.join(here, 'bench-scaling.js'), a, b, String(threads), String(runs)], { encoding: 'utf8' });
  try {
    const j = JSON.parse(sc.stdout) as { t1: number[]; tn: number[]; identical: boolean };
    const alone = median(j.tn);
    const total = cmd ? cmd.median : NaN;
    const p = peer ? peer.median : NaN;
    return {
      json: { ...j, aloneSeconds: alone, commandSeconds: total, peerSeconds: p },
      line: `- \`compare ${path.basename(a)} ${path.basename(b)}\` by phase: comparing alone (one warm process, ${threads} threads) ${alone.toFixed(3)} s = **${(alone / p).toFixed(2)}×** the peer's ${p.toFixed(3)} s; the command took ${total.toFixed(3)} s, so a fresh process adds ${(total - alone).toFixed(3)} s (Node's start-up, loading, the worker thread's start, opening the disks, code not yet optimized)${j.identical ? '' : '; FAIL: not identical'}`,
    };
  } catch {
    return { json: null, line: `- compare by phase: FAIL: bench-scaling exited ${sc.status}: ${(sc.stderr || '').trim().split('\n')[0]}` };
  }
}

/** The shell command that reads the $MFT's runs from the leaf's raw image, as ntfsinfo lists them. */
function mftDd(mm: MapMeta): string {
  const q = (x: string) => `'${x.replace(/'/g, "'\\''")}'`;
  return mm.mftRuns.map(([off, len]) => `dd if=${q(mm.leafImage)} of=/dev/null bs=4M iflag=skip_bytes,count_bytes skip=${off} count=${len} status=none`).join(' && ');
}

function mapOps(mm: MapMeta): { ops: Op[]; composites: Composite[]; ratios: RatioSpec[] } {
  const check = (files: boolean) => (x: Sample): string => {
    try {
      const j = JSON.parse(x.stdout) as { leafBytes: number; partitions: Array<{ fileSystem: string; leafFileBytes: number; files?: Array<{ path: string; leafBytes: number }> }> };
      const p = j.partitions[0];
      const ok = j.partitions.length === 1 && p.fileSystem === 'ntfs' && j.leafBytes === mm.childHeldBytes && (!files || (p.files ?? []).length > 1000);
      return `${ok ? '' : 'FAIL: '}${j.partitions.length} partition (${p?.fileSystem}), leaf ${(j.leafBytes / MiB).toFixed(0)} MiB, file data ${((p?.leafFileBytes ?? 0) / MiB).toFixed(0)} MiB${files ? `, ${(p?.files ?? []).length} files, largest ${p?.files?.[0]?.path}` : ''}`;
    } catch {
      return 'FAIL: no JSON result';
    }
  };
  const ops: Op[] = [
    { id: 'cat-leaf', group: 'map', label: '`cat` child.vhd', argv: sh('cat "$1" > /dev/null', mm.child), bytes: mm.childFileBytes, bytesNote: 'child file', expectCode: 0, vhdtool: false },
    { id: 'dd-mft', group: 'map', label: '`dd` of the $MFT\'s runs (ntfsinfo -v -i 0)', argv: ['/bin/sh', '-c', mftDd(mm)], bytes: mm.mftBytes, bytesNote: '$MFT', expectCode: 0, vhdtool: false },
    { id: 'map', group: 'map', label: 'vhdtool map child --json', argv: node('map', mm.child, '--json', '--no-progress'), bytes: null, bytesNote: '', expectCode: 0, vhdtool: true, verify: check(false) },
    { id: 'map-files', group: 'map', label: 'vhdtool map child --files --json', argv: node('map', mm.child, '--files', '--json', '--no-progress'), bytes: null, bytesNote: '', expectCode: 0, vhdtool: true, verify: check(true) },
  ];
  return {
    ops,
    composites: [{ id: 'map-floor', label: 'map floor: `cat` child.vhd + `dd` of the $MFT (sum per run)', parts: ['cat-leaf', 'dd-mft'] }],
    ratios: [{ op: 'map', baseline: 'map-floor', target: 2.0 }, { op: 'map-files', baseline: 'map-floor', target: 2.0 }],
  };
}

/** Rows of a run: one per op, the composites' sums per run, and the ratios (and differences) against baselines. */
function tabulate(ops: Op[], res: Map<string, Result>, composites: Composite[], ratios: RatioSpec[]): Map<string, Row> {
  const byId = new Map<string, Row>();
  for (const op of ops) {
    const r = res.get(op.id)!;
    const row = rowOf(op.id, op.label, op.bytes, op.bytesNote, r.samples.map((x) => x.wall), r.samples.map((x) => x.maxRssKiB), r.samples.map((x) => x.otherCores),
      r.samples.some((x) => x.code !== op.expectCode) || r.notes.some((n) => n.startsWith('FAIL') || n.includes('; FAIL')), r.notes);
    if (op.vhdtool && row.peakRssMiB !== null && row.peakRssMiB > RSS_LIMIT_MIB) row.rssOver = true;
    if (op.targetSeconds !== undefined) {
      row.target = `≤ ${op.targetSeconds} s`;
      row.verdict = row.median <= op.targetSeconds ? 'met' : 'missed';
    }
    byId.set(op.id, row);
  }
  for (const c of composites) {
    if (!c.parts.every((p) => res.has(p))) continue;
    const per = res.get(c.parts[0])!.samples.map((_, i) => c.parts.reduce((sum, p) => sum + res.get(p)!.samples[i].wall, 0));
    const rss = c.parts.flatMap((p) => res.get(p)!.samples.map((x) => x.maxRssKiB));
    const other = res.get(c.parts[0])!.samples.map((_, i) => {
      const xs = c.parts.map((p) => res.get(p)!.samples[i].otherCores);
      return xs.every((x) => x !== null) ? median(xs as number[]) : null;
    });
    byId.set(c.id, rowOf(c.id, c.label, null, '', per, rss, other, false, []));
  }
  // Per-run ratios: a run's command time over the same run's baseline time.
  for (const rs of ratios) {
    const op = byId.get(rs.op);
    const base = byId.get(rs.baseline);
    if (!op || !base) continue;
    const row = rs.row ? { ...op, id: rs.row.id, label: rs.row.label, notes: [] } : op;
    if (rs.row) byId.set(rs.row.id, row);
    row.baseline = base.label.replace(/^(compact|merge|map) floor: /, '');
    if (rs.deltaMs !== undefined) {
      const per = row.seconds.map((t, i) => (t - base.seconds[i]) * 1000);
      row.deltaMs = median(per);
      row.deltaRange = [Math.min(...per), Math.max(...per)];
      row.target = `≤ +${rs.deltaMs} ms`;
      row.verdict = row.deltaMs <= rs.deltaMs ? 'met' : 'missed';
      continue;
    }
    const per = row.seconds.map((t, i) => t / base.seconds[i]);
    row.ratio = median(per);
    row.ratioRange = [Math.min(...per), Math.max(...per)];
    row.target = `≤ ${rs.target.toFixed(1)}×${rs.goal ? ` (goal ${rs.goal}×)` : ''}`;
    row.verdict = rs.goal !== undefined && row.ratio <= rs.goal ? 'met goal' : row.ratio <= rs.target ? 'met' : 'missed';
  }
  return byId;
}

function machine(): Record<string, string | number> {
  let cpu = 'unknown';
  try {
    cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpu;
  } catch { /* not Linux */ }
  const q = spawnSync('qemu-img', ['--version'], { encoding: 'utf8' });
  return {
    date: new Date().toISOString(),
    cpu,
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    qemuImg: q.status === 0 ? q.stdout.split('\n')[0] : 'not found',
    loadavg: os.loadavg().map((x) => x.toFixed(2)).join(' '),
  };
}

// ---------------------------------------------------------------------------

/** Removes data sets of older generator versions (each is GBs). */
function pruneCache(): void {
  const current: Record<string, string> = {
    chain: GEN_VERSION.chain, 'chain-small': GEN_VERSION.chain, scale: GEN_VERSION.scale, tree: GEN_VERSION.tree, rebase: GEN_VERSION.rebase, 'rebase-small': GEN_VERSION.rebase,
    peer: PAIRS_GEN_VERSION.peer, 'peer-small': PAIRS_GEN_VERSION.peer, big: PAIRS_GEN_VERSION.big, small: PAIRS_GEN_VERSION.small, map: MAP_GEN_VERSION,
    freespace: FREESPACE_GEN, relink: RELINK_GEN, diff: DIFF_GEN_VERSION, 'diff-small': DIFF_GEN_VERSION,
  };
  for (const e of readdirSync(cacheRoot, { withFileTypes: true })) {
    const m = /^(chain|chain-small|scale|tree|rebase|rebase-small|peer|peer-small|big|small|map|freespace|relink|diff|diff-small)-(g\d+)$/.exec(e.name);
    if (e.isDirectory() && m && current[m[1]] !== m[2]) {
      log(`removing ${e.name} (generator ${m[2]}, now ${current[m[1]]})`);
      rmSync(path.join(cacheRoot, e.name), { recursive: true, force: true });
    }
  }
}

function maintainAvailable(): boolean {
  const r = spawnSync(process.execPath, [vhdtool, 'maintain', '--help'], { encoding: 'utf8' });
  return r.status === 0 && /Usage: vhdtool maintain/.test(r.stdout);
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const wants = (g: string) => !o.only || o.only.has(g);
  if (!existsSync(path.join(root, 'dist', 'src', 'cli', 'main.js'))) usage('dist/ is missing: run `npm run build` (or `npm run bench`)');
  mkdirSync(cacheRoot, { recursive: true });
  pruneCache();
  const mode = o.rusage ?? detectRusage();
  const threadsDefault = Math.max(1, Math.min(8, os.availableParallelism())); // as src/parallel/pool.ts defaultThreads()
  const mach = machine();
  log(`vhdtool bench: ${o.runs} run(s) each; peak RSS via ${mode}; cache ${cacheRoot}`);

  const mainGroups = ['cat', 'dd', 'qemu', 'compact', 'merge', 'rebase', 'compare', 'startup', 'info'];
  const rows: Row[] = [];
  const sections: { title: string; rows: Row[]; extra: string[] }[] = [];
  const json: Record<string, unknown> = { machine: mach, options: { ...o, only: o.only ? [...o.only] : null }, generators: GEN_VERSION, rusage: mode };

  // --- The main chain.
  if (mainGroups.some(wants)) {
    log('preparing the benchmark chain');
    const m = await ensureChain(cacheRoot, o.small ? SMALL_CHAIN : MAIN_CHAIN, o.small ? 'chain-small' : 'chain', log);
    json.chain = m;
    const up = wants('rebase') ? await ensureUpdatedParent(cacheRoot, m, o.small ? 'rebase-small' : 'rebase', log) : null;
    json.updatedParent = up;
    const hasQemu = spawnSync('qemu-img', ['--version'], { stdio: 'ignore' }).status === 0;
    const peer = wants('compare') && hasQemu ? await ensurePeerCopy(cacheRoot, m, o.small ? 'peer-small' : 'peer', log) : null;
    json.peer = peer;
    const small = wants('startup') ? await ensureSmallDisk(cacheRoot) : null;
    const plan = mainOps(m, up, peer, small, threadsDefault, o);
    log('warming the page cache');
    spawnSync('cat', [m.parent, m.child, m.flat, ...(up ? [up.parentV2] : []), ...(peer ? [peer.flatQemu] : [])], { stdio: ['ignore', 'ignore', 'inherit'] });
    spawnSync(process.execPath, [vhdtool, '--version'], { stdio: 'ignore' });
    const res = await runAll(plan.ops, o, mode);
    const byId = tabulate(plan.ops, res, plan.composites, plan.ratios);
    const order = ['cat-parent', 'dd-child', 'compact-base', 'compact-t1', 'compact-tn', 'qemu-flat', 'merge-t1', 'merge-tn', 'cat-pc', 'dd-flat', 'merge-floor', 'merge-tn-floor', 'rebase-tn',
      'cat-all', 'compare-t1', 'compare-tn', 'compare-tn-env', 'qemu-cmp', 'compare-std', 'node-start', 'version', 'info-small', 'info'];
    const secRows: Row[] = [];
    for (const id of order) { const r = byId.get(id); if (r) secRows.push(r); }
    const extra: string[] = [];
    for (const sp of plan.speedups) {
      const a = byId.get(sp.t1);
      const b = byId.get(sp.tn);
      if (!a || !b) continue;
      const per = a.seconds.map((t, i) => t / b.seconds[i]);
      const med = median(per);
      extra.push(`- speedup of ${threadsDefault} threads over 1, ${sp.label}: **${med.toFixed(2)}×** (time with 1 thread / time with ${threadsDefault}, median of per-run ratios: ${per.map((x) => x.toFixed(2)).join(', ')})${sp.goal ? `; goal ≥ ${sp.goal}×: ${med >= sp.goal ? 'met' : 'missed'}` : ''}`);
    }
    if (wants('compare')) {
      // The compare-bound part alone: in one process, threads already running (see bench-scaling.ts).
      const sc = spawnSync(process.execPath, [path.join(here, 'bench-scaling.js'), m.child, m.flat, String(threadsDefault), String(o.runs)], { encoding: 'utf8' });
      try {
        const j = JSON.parse(sc.stdout) as { t1: number[]; tn: number[]; identical: boolean };
        const per = j.t1.map((t, i) => t / j.tn[i]);
        const med = median(per);
        json.compareScaling = j;
        extra.push(`- speedup of ${threadsDefault} threads over 1, compare-bound part (\`compare\` in one process, threads running; median ${median(j.tn).toFixed(3)} s, ${(compareBytesOf(m) / MiB / median(j.tn)).toFixed(0)} MiB/s): **${med.toFixed(2)}×** (per-run ratios: ${per.map((x) => x.toFixed(2)).join(', ')}); goal ≥ 1.6×: ${med >= 1.6 ? 'met' : 'missed'}${j.identical ? '' : '; FAIL: not identical'}`);
        // Where the command's time goes: the comparing itself (warm) against the read ceiling, and what a fresh process adds.
        const cat = byId.get('cat-all');
        const cmd = byId.get('compare-tn');
        if (cat && cmd) {
          const own = median(j.tn) / median(cat.seconds);
          const fixed = median(cmd.seconds) - median(j.tn);
          json.compareSplit = { compareBoundOverCat: own, fixedSeconds: fixed };
          extra.push(`- compare's comparing alone (the part above) takes **${own.toFixed(2)}×** the time of \`cat\` of the same files in this run; the rest of the command's ${median(cmd.seconds).toFixed(3)} s, about ${fixed.toFixed(3)} s, is what a fresh process adds: Node's start-up, loading modules, starting the worker thread, opening both chains, and running the comparing loops before the compiler has optimized them (the part above reuses one warm process)`);
        }
      } catch {
        extra.push(`- compare-bound speedup: FAIL: bench-scaling exited ${sc.status}: ${(sc.stderr || '').trim().split('\n')[0]}`);
      }
      if (peer) {
        const split = compareSplit(m.flat, peer.flatQemu, byId.get('compare-std'), byId.get('qemu-cmp'), threadsDefault, o.runs);
        json.compareStdSplit = split.json;
        extra.push(split.line);
      }
    }
    for (const r of secRows) for (const n of r.notes) extra.push(`- ${r.label}: ${n}`);
    const spec = m.spec;
    sections.push({
      title: `Chain: ${(spec.virtualSize / 2 ** 30).toFixed(0)} GiB virtual, ${(spec.blockSize / MiB).toFixed(0)} MiB blocks; parent ${m.parentBlocks} blocks (${(m.parentDataBytes / MiB).toFixed(0)} MiB), child ${m.childBlocks} blocks (${(m.childDataBytes / MiB).toFixed(0)} MiB: ${spec.child.identical} identical to the parent, ${spec.child.mixed} mixed per sector, ${spec.child.fresh} new, ${spec.child.zero} zero over zero, ${spec.child.partialOverParent + spec.child.partialFresh} partial; ${m.expectKeptSectors} of ${m.childSectorsSet} sectors must be kept, in ${m.expectKeptBlocks} blocks); flat.vhd ${m.flatBlocks} blocks`,
      rows: secRows,
      extra,
    });
    rows.push(...secRows);
    json.mainRaw = Object.fromEntries([...res].map(([id, r]) => [id, r.samples.map(({ stdout, stderr, ...s }) => ({ ...s, stderrTail: stderr.slice(-500), stdoutHead: stdout.slice(0, 2000) }))]));
  }

  // --- compare on two standalone disks with 4 GiB allocated, against qemu-img compare.
  if (wants('big') && !o.small && spawnSync('qemu-img', ['--version'], { stdio: 'ignore' }).status === 0) {
    log('preparing the 4 GiB pair');
    const b = await ensureBigPair(cacheRoot, log);
    json.big = b;
    const ops: Op[] = [
      { id: 'cat-big', group: 'big', label: '`cat` a.vhd b.vhd', argv: sh('cat "$1" "$2" > /dev/null', b.a, b.b), bytes: b.fileBytesA + b.fileBytesB, bytesNote: 'both files', expectCode: 0, vhdtool: false },
      { id: 'qemu-cmp-big', group: 'big', label: '`qemu-img compare` a.vhd b.vhd (one thread)', argv: ['qemu-img', 'compare', '--image-opts', vpcOpts(b.a), vpcOpts(b.b)], bytes: b.dataBytes, bytesNote: 'data of one disk', expectCode: 0, vhdtool: false },
      { id: 'compare-big', group: 'big', label: `vhdtool compare a.vhd b.vhd (default: ${threadsDefault} threads)`, argv: node('compare', b.a, b.b, '--no-progress', '--json'), bytes: b.dataBytes, bytesNote: 'data of one disk', expectCode: 0, vhdtool: true },
    ];
    spawnSync('cat', [b.a, b.b], { stdio: ['ignore', 'ignore', 'inherit'] });
    const res = await runAll(ops, o, mode);
    const byId = tabulate(ops, res, [], [{ op: 'compare-big', baseline: 'qemu-cmp-big', target: 0.8 }]);
    const secRows = ['cat-big', 'qemu-cmp-big', 'compare-big'].map((id) => byId.get(id)!);
    const split = compareSplit(b.a, b.b, byId.get('compare-big'), byId.get('qemu-cmp-big'), threadsDefault, o.runs);
    json.compareBigSplit = split.json;
    sections.push({
      title: `compare, two standalone disks: ${(b.virtualSize / 2 ** 30).toFixed(0)} GiB virtual, ${b.blocks} blocks (${(b.dataBytes / MiB).toFixed(0)} MiB) allocated, random data; b.vhd is a.vhd written by qemu-img`,
      rows: secRows,
      extra: [split.line, ...secRows.flatMap((r) => r.notes.map((n) => `- ${r.label}: ${n}`))],
    });
    rows.push(...secRows);
    json.bigRaw = rawOf(res);
  }

  // --- map over a 16 GiB NTFS volume with 200,000 files (issue 13).
  if (wants('map') && !o.small) {
    const why = mapUnavailable();
    if (why) {
      log(`map: skipped: ${why}`);
      sections.push({ title: 'map: 16 GiB NTFS volume, 200,000 files', rows: [], extra: [`- skipped: ${why}`] });
    } else {
      log('preparing the NTFS chain for map');
      const mm = await ensureMapChain(cacheRoot, vhdtool, log);
      json.map = mm;
      const { ops, composites, ratios } = mapOps(mm);
      spawnSync('cat', [mm.base, mm.child], { stdio: ['ignore', 'ignore', 'inherit'] });
      spawnSync('/bin/sh', ['-c', mftDd(mm)], { stdio: ['ignore', 'ignore', 'inherit'] });
      const res = await runAll(ops, o, mode);
      const byId = tabulate(ops, res, composites, ratios);
      const secRows = ['cat-leaf', 'dd-mft', 'map-floor', 'map', 'map-files'].map((id) => byId.get(id)).filter((r): r is Row => r !== undefined);
      sections.push({
        title: `map: ${(mm.virtualSize / 2 ** 30).toFixed(0)} GiB NTFS volume (no partition table), ${mm.files.toLocaleString('en')} files; the child holds ${(mm.childHeldBytes / MiB).toFixed(0)} MiB in a ${(mm.childFileBytes / MiB).toFixed(0)} MiB file; $MFT ${(mm.mftBytes / MiB).toFixed(0)} MiB in ${mm.mftRuns.length} runs`,
        rows: secRows,
        extra: secRows.flatMap((r) => r.notes.map((n) => `- ${r.label}: ${n}`)),
      });
      rows.push(...secRows);
      json.mapRaw = rawOf(res);
    }
  }

  // --- The 2040 GiB chain: cost must follow allocated data.
  if (wants('scale') && !o.small) {
    log('preparing the 2040 GiB chain');
    const s = await ensureScaleChain(cacheRoot, log);
    json.scale = s;
    const out = path.join(path.dirname(s.child), 'out-compact.vhd');
    spawnSync('cat', [s.parent, s.child], { stdio: ['ignore', 'ignore', 'inherit'] });
    const ops: Op[] = [
      { id: 'scale-info', group: 'scale', label: 'vhdtool info child (2040 GiB virtual)', argv: node('info', s.child), bytes: null, bytesNote: '', expectCode: 0, vhdtool: true, targetSeconds: 1 },
      { id: 'scale-compact', group: 'scale', label: 'vhdtool compact --output child (2040 GiB virtual)', argv: node('compact', s.child, '--output', out, '--force', '--no-progress', '--json'), output: out, bytes: s.childDataBytes, bytesNote: 'child data', expectCode: 0, vhdtool: true, targetSeconds: 3,
        verify: (x) => {
          try {
            const j = JSON.parse(x.stdout) as { sectors?: { kept?: number }; blocks?: { after?: number } };
            const ok = j.sectors?.kept === s.expectKeptSectors && j.blocks?.after === s.expectKeptBlocks;
            return `${ok ? '' : 'FAIL: '}kept ${j.sectors?.kept} sectors in ${j.blocks?.after} blocks (expected ${s.expectKeptSectors} in ${s.expectKeptBlocks})`;
          } catch {
            return 'FAIL: no JSON result';
          }
        } },
      // map of a disk whose data is random (no partition table, no file system it knows): its cost is the
      // leaf's bitmaps and a few probes, whatever the virtual size.
      { id: 'scale-map', group: 'scale', label: 'vhdtool map child (2040 GiB virtual)', argv: node('map', s.child, '--json'), bytes: null, bytesNote: '', expectCode: 0, vhdtool: true, targetSeconds: 1 },
    ];
    const res = await runAll(ops, o, mode);
    const byId = tabulate(ops, res, [], []);
    const secRows = ops.map((op) => byId.get(op.id)!);
    sections.push({
      title: `Scale: 2040 GiB virtual, parent ${s.parentBlocks} blocks, child ${s.childBlocks} blocks (BAT ${(s.virtualSize / s.blockSize).toLocaleString('en')} entries); child file ${(s.childFileBytes / MiB).toFixed(0)} MiB`,
      rows: secRows,
      extra: secRows.flatMap((r) => r.notes.map((n) => `- ${r.label}: ${n}`)),
    });
    rows.push(...secRows);
    json.scaleRaw = rawOf(res);
  }

  // --- maintain --dry-run over 1000 small disks.
  if (wants('maintain') && !o.small) {
    if (maintainAvailable()) {
      log('preparing the 1000-disk tree');
      const t = await ensureTree(cacheRoot, log);
      json.tree = t;
      const summary = (x: Sample): string => {
        try {
          const j = JSON.parse(x.stdout) as { status?: string; summary?: Record<string, number> };
          const m = j.summary ?? {};
          const ok = m.disksFound === t.disks && m.errors === 0 && m.unreadable === 0;
          return `${ok ? '' : 'FAIL: '}status ${j.status}: ${m.disksFound} disks found, ${m.chains} chains, ${m.disksCompacted} disks would be compacted, ${((m.bytesReclaimable ?? 0) / MiB).toFixed(0)} MiB reclaimable, ${m.errors} errors; discovery ${m.discoveryMs} ms`;
        } catch {
          return 'FAIL: no JSON report';
        }
      };
      const ops: Op[] = [
        { id: 'maintain', group: 'maintain', label: `vhdtool maintain --dry-run (${t.disks} disks, default --min-reclaim)`, argv: node('maintain', t.root, '--dry-run', '--no-progress', '--json'), bytes: null, bytesNote: '', expectCode: 0, vhdtool: true, targetSeconds: 30, verify: summary },
        { id: 'maintain-all', group: 'maintain', label: `vhdtool maintain --dry-run --min-reclaim 0 (${t.disks} disks, every disk's data read)`, argv: node('maintain', t.root, '--dry-run', '--min-reclaim', '0', '--no-progress', '--json'), bytes: t.dataBytes, bytesNote: 'data', expectCode: 0, vhdtool: true, targetSeconds: 30, verify: summary },
      ];
      spawnSync('/bin/sh', ['-c', 'find "$1" -name "*.*vhd" -exec cat {} + > /dev/null', 'sh', t.root]);
      const res = await runAll(ops, o, mode);
      const secRows = ops.map((op) => {
        const r = res.get(op.id)!;
        const row = rowOf(op.id, op.label, op.bytes, op.bytesNote, r.samples.map((x) => x.wall), r.samples.map((x) => x.maxRssKiB), r.samples.map((x) => x.otherCores), r.samples.some((x) => x.code !== 0), r.notes);
        row.target = '≤ 30 s';
        row.rssOver = row.peakRssMiB !== null && row.peakRssMiB > RSS_LIMIT_MIB;
        row.verdict = row.median <= 30 ? 'met' : 'missed';
        if (row.notes.some((n) => n.startsWith('FAIL'))) row.failed = true;
        return row;
      });
      sections.push({ title: `maintain: ${t.disks} disks (64 MiB virtual, 512 KiB blocks) in ${t.folders} folders of a base, 10 children and 9 snapshots (${(t.fileBytes / MiB).toFixed(0)} MiB of files)`, rows: secRows, extra: secRows.flatMap((r) => r.notes.map((n) => `- ${r.label}: ${n}`)) });
      rows.push(...secRows);
      json.maintainRaw = Object.fromEntries([...res].map(([id, r]) => [id, r.samples.map(({ stdout, stderr, ...x }) => ({ ...x, stderrTail: stderr.slice(-500), stdoutHead: stdout.slice(0, 2000) }))]));
    } else {
      const row: Row = {
        id: 'maintain', label: 'TODO: vhdtool maintain --dry-run (1000 disks): not measured, `vhdtool maintain --help` does not work yet',
        bytes: null, bytesNote: '', seconds: [NaN], median: NaN, min: NaN, max: NaN, mbps: null, target: '≤ 30 s', peakRssMiB: null, otherCores: null, failed: false, notes: [],
      };
      sections.push({ title: 'maintain: 1000 small disks', rows: [row], extra: ['- TODO: rerun `npm run bench -- --only maintain` once `vhdtool maintain` exists; the 1000-disk tree is generated on first use.'] });
      rows.push(row);
    }
  }

  // --- diff of two 16 GiB NTFS volumes (200,000 files, 1,000 changed) against reading both MFTs and the differing sectors.
  if (wants('diff')) {
    if (spawnSync('ntfs-3g', ['--version'], { stdio: 'ignore' }).error || spawnSync('istat', ['-V'], { stdio: 'ignore' }).error) {
      log('ntfs-3g or Sleuth Kit not found: the diff case is skipped');
    } else {
      log('preparing the NTFS volumes for diff');
      const d = await ensureDiffVolumes(cacheRoot, o.small ? SMALL_DIFF_SPEC : DIFF_SPEC, o.small ? 'diff-small' : 'diff', vhdtool, log);
      json.diff = { ...d, mftA: d.mftA.length, mftB: d.mftB.length, held: d.held.length };
      const span = (r: Array<[number, number]>) => r.reduce((n, [a, b]) => n + b - a, 0);
      const readBytes = span(d.mftA) + span(d.mftB) + 2 * span(d.held);
      const expect = d.expect;
      const ops: Op[] = [
        { id: 'diff-read', group: 'diff', label: 'read both $MFTs and the differing sectors on both sides (vhdtool\'s chain reader)', argv: [process.execPath, path.join(here, 'bench-read-ranges.js'), path.join(path.dirname(d.base), 'meta.json')], env: nodeEnv(o), bytes: readBytes, bytesNote: 'MFTs + differing sectors x 2', expectCode: 0, vhdtool: false },
        { id: 'diff', group: 'diff', label: `vhdtool diff base user (${d.files.toLocaleString('en')} files, ${(d.spec.volumeBytes / 2 ** 30).toFixed(0)} GiB NTFS)`, argv: node('diff', d.base, d.user, '--json', '--no-progress'), bytes: readBytes, bytesNote: 'MFTs + differing sectors x 2', expectCode: 1, vhdtool: true,
          verify: (x) => {
            try {
              const j = JSON.parse(x.stdout) as { summary: Record<string, number>; partitions: Array<{ filesRead: number; bytesRead: number }> };
              const s = j.summary;
              const ok = s.added === expect.added && s.deleted === expect.deleted && s.modified === expect.modified && s.renamed === expect.renamed;
              const read = j.partitions.reduce((n, p) => n + p.filesRead, 0);
              const bytes = j.partitions.reduce((n, p) => n + p.bytesRead, 0);
              return `${ok ? '' : 'FAIL: '}${s.added} added, ${s.deleted} deleted, ${s.modified} modified, ${s.renamed} renamed (expected ${expect.added}, ${expect.deleted}, ${expect.modified}, ${expect.renamed}); ${read} files read (${(bytes / MiB).toFixed(1)} MiB, both sides)`;
            } catch {
              return 'FAIL: no JSON result';
            }
          } },
      ];
      spawnSync('cat', [d.base, d.user], { stdio: ['ignore', 'ignore', 'inherit'] });
      const res = await runAll(ops, o, mode);
      const byId = new Map<string, Row>();
      for (const op of ops) {
        const r = res.get(op.id)!;
        const row = rowOf(op.id, op.label, op.bytes, op.bytesNote, r.samples.map((x) => x.wall), r.samples.map((x) => x.maxRssKiB), r.samples.map((x) => x.otherCores), r.samples.some((x) => x.code !== op.expectCode), r.notes);
        if (row.notes.some((n) => n.startsWith('FAIL'))) row.failed = true;
        if (op.vhdtool) row.rssOver = row.peakRssMiB !== null && row.peakRssMiB > RSS_LIMIT_MIB;
        byId.set(op.id, row);
      }
      const row = byId.get('diff')!;
      const base = byId.get('diff-read')!;
      const per = row.seconds.map((t, i) => t / base.seconds[i]);
      row.baseline = base.label;
      row.ratio = median(per);
      row.ratioRange = [Math.min(...per), Math.max(...per)];
      row.target = '≤ 2.0×';
      row.verdict = row.ratio <= 2 ? 'met' : 'missed';
      const secRows = [base, row];
      sections.push({
        title: `diff: ${(d.spec.volumeBytes / 2 ** 30).toFixed(0)} GiB NTFS, ${d.files.toLocaleString('en')} files (${(d.dataBytes / MiB).toFixed(0)} MiB of data), ${expect.modified + expect.deleted + expect.added + expect.renamed} changed in the child; $MFTs ${(span(d.mftA) / MiB).toFixed(0)} + ${(span(d.mftB) / MiB).toFixed(0)} MiB, child holds ${(span(d.held) / MiB).toFixed(1)} MiB`,
        rows: secRows,
        extra: secRows.flatMap((r) => r.notes.map((n) => `- ${r.label}: ${n}`)),
      });
      rows.push(...secRows);
      json.diffRaw = Object.fromEntries([...res].map(([id, r]) => [id, r.samples.map(({ stdout, stderr, ...x }) => ({ ...x, stderrTail: stderr.slice(-500), stdoutHead: stdout.slice(0, 2000) }))]));
    }
  }

  // --- compact --free-space against plain compact on a chain whose guest deleted half the child's data.
  if (wants('freespace') && !o.small) {
    const sec = await freeSpaceSection(o, mode, json);
    if (sec) {
      sections.push(sec);
      rows.push(...sec.rows);
    }
  }

  // --- relink's guest-filesystems check on 8 GiB volumes of 50,000 files.
  if (wants('relink') && !o.small) {
    log('preparing the relink volumes');
    const rv = await ensureRelinkVolumes(cacheRoot, log);
    json.relink = rv;
    const proofNote = (want: string) => (x: Sample): string => {
      try {
        const j = JSON.parse(x.stdout) as { proof?: { checks?: Array<{ name: string; status: string; fileSystems?: { bytesRead: number; durationMs: number; partitions: Array<{ verdict: string; bytesRead: number }> } }> } };
        const c = j.proof?.checks?.find((k) => k.name === 'guest-filesystems');
        const f = c?.fileSystems;
        if (!c || !f) return 'FAIL: no guest-filesystems check in the output';
        const verdicts = f.partitions.map((p) => p.verdict).join(', ');
        const note = `check ${c.status} (${verdicts}): ${(f.bytesRead / MiB).toFixed(1)} MiB of guest metadata read, ${(f.durationMs / 1000).toFixed(2)} s inside the command`;
        return c.status === want ? note : `FAIL: expected ${want}; ${note}`;
      } catch {
        return 'FAIL: no JSON result';
      }
    };
    const ops: Op[] = rv.volumes.flatMap((v): Op[] => [
      { id: `relink-${v.fs}-same`, group: 'relink', label: `vhdtool relink --dry-run, ${v.fs}, ${v.files} files, child over the true parent (one scan)`, argv: node('relink', v.same, '--parent', v.base, '--dry-run', '--json', '--no-progress'), bytes: null, bytesNote: '', expectCode: 0, vhdtool: true, verify: proofNote('passed') },
      { id: `relink-${v.fs}-lost`, group: 'relink', label: `vhdtool relink --dry-run, ${v.fs}, a child that allocated clusters nothing owns (two scans, refused)`, argv: node('relink', v.lost, '--parent', v.base, '--dry-run', '--json', '--no-progress'), bytes: null, bytesNote: '', expectCode: 9, vhdtool: true, verify: proofNote('failed') },
    ]);
    if (ops.length) {
      for (const v of rv.volumes) spawnSync('cat', [v.base, v.same, v.lost], { stdio: 'ignore' });
      const res = await runAll(ops, o, mode);
      const secRows = ops.map((op) => {
        const r = res.get(op.id)!;
        const row = rowOf(op.id, op.label, op.bytes, op.bytesNote, r.samples.map((x) => x.wall), r.samples.map((x) => x.maxRssKiB), r.samples.map((x) => x.otherCores), r.samples.some((x) => x.code !== op.expectCode), r.notes);
        row.rssOver = row.peakRssMiB !== null && row.peakRssMiB > RSS_LIMIT_MIB;
        if (row.notes.some((n) => n.startsWith('FAIL'))) row.failed = true;
        return row;
      });
      sections.push({ title: `relink's guest-filesystems check: 8 GiB volumes of ${rv.volumes[0].files} files (${rv.volumes.map((v) => `${v.fs} ${(v.usedBytes / MiB).toFixed(0)} MiB used`).join(', ')})`, rows: secRows, extra: [...secRows.flatMap((r) => r.notes.map((n) => `- ${r.label}: ${n}`)), ...rv.skipped.map((s) => `- not measured: ${s}`)] });
      rows.push(...secRows);
    }
  }

  // --- Report.
  const md: string[] = [];
  md.push(`## vhdtool benchmark (\`npm run bench\`)`);
  md.push('');
  md.push(`${mach.date}: ${mach.cpu}, ${mach.cores} cores, ${mach.memoryGiB} GiB, ${mach.kernel}, Node ${mach.node}, ${mach.qemuImg}; load average at start ${mach.loadavg}.`);
  md.push(`${o.runs} run(s) of each operation, interleaved, warm page cache; median wall seconds (min–max). MB/s = 10^6 bytes of the "data" column per second. Ratio = command time / baseline time, median of per-run ratios (< 1 is faster than the baseline). Writing commands include their fsync${o.primeMiB > 0 ? `, and each starts right after a ${o.primeMiB} MiB scratch file was written and deleted beside its output (the same memory state for every writer)` : ''}. Peak RSS bar for vhdtool: ≤ ${RSS_LIMIT_MIB} MiB (over it is marked). "Other CPU" = median cores busy outside the measured command during its runs (other tenants and kernel writeback): above ~0.3 the figure is noisy.`);
  for (const s of sections) {
    md.push('');
    md.push(`### ${s.title}`);
    md.push('');
    md.push(markdownTable(s.rows).replace(/\| NaN \|/g, '| – |'));
    if (s.extra.length) { md.push(''); md.push(...s.extra); }
  }
  const text = md.join('\n').replace(/NaN/g, '–');
  console.log(text);
  json.rows = rows;
  json.markdown = text;
  writeFileSync(path.join(cacheRoot, 'last.json'), JSON.stringify(json, null, 2) + '\n');
  log(`\nwrote ${path.join(cacheRoot, 'last.json')}`);
  if (rows.some((r) => r.failed)) process.exitCode = 1;
}

process.on('SIGINT', () => process.exit(130));
await main();

/**
 * The --free-space case: the same chain compacted to a new file with and
 * without --free-space (bar: at most 1.2x the plain compact's time), which
 * must drop every deleted byte (all in whole free clusters) and stay within
 * the RSS bar.
 */
async function freeSpaceSection(o: Options, mode: RusageMode, json: Record<string, unknown>): Promise<{ title: string; rows: Row[]; extra: string[] } | null> {
  const missing = ['mkfs.fat', 'mcopy', 'sfdisk'].filter((t) => spawnSync(t, ['--version'], { stdio: 'ignore' }).error !== undefined);
  if (missing.length) {
    log(`--free-space case skipped: ${missing.join(', ')} not found`);
    return null;
  }
  log('preparing the --free-space chain');
  const f = await ensureFreeSpaceChain(cacheRoot, log);
  json.freeSpace = f;
  const dir = path.dirname(f.child);
  const out = (n: string) => path.join(dir, `out-${n}.vhd`);
  const check = (free: boolean) => (x: Sample): string => {
    try {
      const j = JSON.parse(x.stdout) as { newSize?: number; freeSpace?: { bytes: { freeSpace: number } } };
      const size = `${((j.newSize ?? 0) / MiB).toFixed(0)} MiB written`;
      if (!free) return size;
      const got = j.freeSpace?.bytes.freeSpace ?? -1;
      return `${got === f.deletedBytes ? '' : 'FAIL: '}dropped ${(got / MiB).toFixed(0)} MiB of free space (deleted in the guest: ${(f.deletedBytes / MiB).toFixed(0)} MiB); ${size}`;
    } catch {
      return 'FAIL: no JSON result';
    }
  };
  const ops: Op[] = [
    { id: 'fs-plain', group: 'freespace', label: 'vhdtool compact --output (plain)', argv: node('compact', f.child, '--output', out('plain'), '--force', '--no-progress', '--json'), output: out('plain'), bytes: f.childFileBytes, bytesNote: 'child file', expectCode: 0, vhdtool: true, verify: check(false) },
    { id: 'fs-free', group: 'freespace', label: 'vhdtool compact --output --free-space', argv: node('compact', f.child, '--output', out('free'), '--force', '--no-progress', '--json', '--free-space'), output: out('free'), bytes: f.childFileBytes, bytesNote: 'child file', expectCode: 0, vhdtool: true, verify: check(true) },
  ];
  spawnSync('cat', [f.base, f.child], { stdio: ['ignore', 'ignore', 'inherit'] });
  const res = await runAll(ops, o, mode);
  const rows = ops.map((op) => {
    const r = res.get(op.id)!;
    const row = rowOf(op.id, op.label, op.bytes, op.bytesNote, r.samples.map((x) => x.wall), r.samples.map((x) => x.maxRssKiB), r.samples.map((x) => x.otherCores), r.samples.some((x) => x.code !== 0), r.notes);
    row.rssOver = row.peakRssMiB !== null && row.peakRssMiB > RSS_LIMIT_MIB;
    if (row.notes.some((n) => n.startsWith('FAIL') || n.includes('FAIL:'))) row.failed = true;
    return row;
  });
  const [plain, free] = rows;
  const per = free.seconds.map((t, i) => t / plain.seconds[i]);
  free.baseline = plain.label;
  free.ratio = median(per);
  free.ratioRange = [Math.min(...per), Math.max(...per)];
  free.target = '≤ 1.2×';
  free.verdict = free.ratio <= 1.2 ? 'met' : 'missed';
  json.freeSpaceRaw = Object.fromEntries([...res].map(([id, r]) => [id, r.samples.map(({ stdout, stderr, ...x }) => ({ ...x, stderrTail: stderr.slice(-500), stdoutHead: stdout.slice(0, 4000) }))]));
  return {
    title: `compact --free-space: ${(f.virtualSize / 2 ** 30).toFixed(0)} GiB disk, one FAT32 partition (mkfs.fat, mtools); the child wrote ${((f.deletedBytes + f.liveBytes) / MiB).toFixed(0)} MiB of files and deleted half (${(f.deletedBytes / MiB).toFixed(0)} MiB); child file ${(f.childFileBytes / MiB).toFixed(0)} MiB`,
    rows,
    extra: rows.flatMap((r) => r.notes.map((n) => `- ${r.label}: ${n}`)),
  };
}
