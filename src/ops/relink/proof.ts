/**
 * relink's proof: an ordered list of named checks run before anything is
 * written, each reported with its status and evidence.
 *
 * A check passes, fails, warns, or does not apply. A failure refuses the
 * relink; so does a warning that names an override (--force) the user did
 * not give. An override the user gave turns that check's refusal into an
 * accepted risk, and the report says so.
 *
 * VHD records no content link between a child and its parent: only the
 * parent's UUID and a time stamp (its file's modification time when the link
 * was made). The checks prove what those fields can prove, and the report's
 * `limits` say what they cannot. The last check reads the guest's file
 * systems through the chain the relink would make (relink/fsProof.ts): the
 * one content evidence a VHD chain offers.
 */
import { type ErrorCode, type VhdToolError } from '../../errors.js';
import { dateToVhdTime, vhdTimeToIso } from '../../format/index.js';
import type { FileStat, FileSystem } from '../../io/fsys.js';
import type { Chain } from '../../chain/chain.js';
import type { Vhd, VhdMeta } from '../../vhd/image.js';
import type { TaskRunner } from '../../parallel/pool.js';
import type { ProgressSink } from '../../progress.js';
import { checkChain, firstFailure } from '../chainCheck.js';
import { checkGuestFileSystems, type FileSystemsCheck } from './fsProof.js';

export type CheckStatus = 'passed' | 'failed' | 'warning' | 'not-applicable';

export interface ProofCheck {
  /** Stable name: parent-uuid, virtual-size, parent-time, parent-chain, guest-filesystems. */
  name: string;
  /** What the check proves when it passes. */
  proves: string;
  status: CheckStatus;
  /** The facts it looked at, in one line. */
  evidence: string;
  /** The option that accepts a failure or warning of this check, or null when none does. */
  override: '--force' | '--ignore-id-mismatch' | null;
  /** The override was given and this check would otherwise refuse. */
  overridden: boolean;
  /** This check stops the relink. */
  refuses: boolean;
  /** Error code (and so exit status) when it refuses; null otherwise. */
  code: ErrorCode | null;
  /** guest-filesystems: what was checked, partition by partition. */
  fileSystems?: FileSystemsCheck;
}

export interface Proof {
  checks: ProofCheck[];
  /** proven: every check passed or does not apply; accepted: some only by an override; refused. */
  verdict: 'proven' | 'accepted' | 'refused';
  /** What the checks cannot establish. */
  limits: string[];
}

export interface ProofSubject {
  path: string;
  meta: VhdMeta;
  stat: FileStat;
}

export interface ProofContext {
  fs: FileSystem;
  runner: TaskRunner;
  progress?: ProgressSink;
  signal?: AbortSignal;
  child: ProofSubject;
  /** The child, already open (else the steps that read it open it themselves). */
  childVhd?: Vhd;
  candidate: ProofSubject;
  /** The candidate's chain (candidate first), or why it could not be opened. */
  chain: Chain | VhdToolError;
  force: boolean;
  ignoreIdMismatch: boolean;
}

/**
 * What a step decides; prove() adds whether it refuses. `limits`: what this
 * run of the step could not establish (added to the proof's limits).
 */
export type StepResult = Pick<ProofCheck, 'name' | 'proves' | 'status' | 'evidence' | 'override' | 'code' | 'fileSystems'> & { limits?: string[] };
export type ProofStep = (ctx: ProofContext) => Promise<StepResult>;

/** Seconds by which a parent's mtime may pass the recorded stamp (FAT and SMB keep 2-second times). */
export const TIME_SLACK_S = 2;

export const checkParentUuid: ProofStep = async ({ child, candidate, ignoreIdMismatch }) => {
  const want = child.meta.header!.parentUniqueId!;
  const got = candidate.meta.footer.uniqueId;
  const base = { name: 'parent-uuid', proves: 'the candidate carries the identity (UUID) the child was linked to', override: '--ignore-id-mismatch' as const, code: 'PARENT_MISMATCH' as const };
  if (want === got) return { ...base, status: 'passed', evidence: `the child names parent ${want}; ${candidate.path} is ${got}` };
  const more = ignoreIdMismatch ? `; the child's header will name ${got}` : '';
  return { ...base, status: 'failed', evidence: `the child names parent ${want}, but ${candidate.path} is ${got}${more}` };
};

export const checkVirtualSize: ProofStep = async ({ child, candidate }) => {
  const c = child.meta.virtualSize;
  const p = candidate.meta.virtualSize;
  const base = { name: 'virtual-size', proves: 'the candidate covers the whole disk the child shows', code: 'PARENT_MISMATCH' as const };
  if (c === p) return { ...base, status: 'passed', override: null, evidence: `both ${c} bytes` };
  if (c > p) {
    return { ...base, status: 'warning', override: '--force',
      evidence: `the child is ${c} bytes, the candidate ${p}: reads past the candidate's end return zeros (blktap accepts such a chain, Hyper-V refuses it)` };
  }
  return { ...base, status: 'failed', override: null,
    evidence: `the child is ${c} bytes, the candidate ${p}: a child smaller than its parent hides the parent's last ${p - c} bytes; no producer makes such a chain` };
};

export const checkParentTime: ProofStep = async ({ child, candidate, force }) => {
  const recorded = child.meta.header!.parentTimestamp;
  const mtime = dateToVhdTime(new Date(candidate.stat.mtimeMs));
  const base = { name: 'parent-time', proves: 'the candidate was not modified after the link was made (its file time is not later than the one the child recorded)', code: 'REFUSED' as const };
  if (recorded === 0) {
    return { ...base, status: 'not-applicable', override: null, evidence: 'the child records no parent time stamp (0), as Windows\' diskpart and hand-made children do; nothing to compare' };
  }
  const created = candidate.meta.footer.timestamp;
  const createdNote = created > recorded + TIME_SLACK_S ? `; its footer says it was created ${vhdTimeToIso(created)}, also after the link` : '';
  if (mtime <= recorded + TIME_SLACK_S) {
    return { ...base, status: 'passed', override: null, evidence: `the candidate file was last modified ${vhdTimeToIso(mtime)}, not after the link was made (${vhdTimeToIso(recorded)})` };
  }
  const accepted = force ? `; accepted by --force: the header will record ${vhdTimeToIso(mtime)}` : '';
  return { ...base, status: 'warning', override: '--force',
    evidence: `the candidate file was last modified ${vhdTimeToIso(mtime)}, after the link was made (${vhdTimeToIso(recorded)})${createdNote}: ` +
      `it was probably changed since (or copied without keeping its file times), and the child may no longer match it${accepted}` };
};

export const checkParentChain: ProofStep = async ({ fs, runner, progress, signal, chain, child }) => {
  const base = { name: 'parent-chain', proves: "the candidate's own chain is complete and every layer of it passes `vhdtool check`", override: null };
  if (!('layersLeafFirst' in chain)) {
    return { ...base, status: 'failed', code: chain.code, evidence: `${chain.path ? `${chain.path}: ` : ''}${chain.message}` };
  }
  const layers = chain.layersLeafFirst;
  const loop = layers.find((l) => (l.dev === child.stat.dev && l.ino === child.stat.ino) || l.meta.footer.uniqueId === child.meta.footer.uniqueId);
  if (loop) {
    return { ...base, status: 'failed', code: 'CHAIN_CYCLE', evidence: `the candidate's chain contains the child itself (${loop.path}): the link would make a loop` };
  }
  const bad = firstFailure(await checkChain(fs, chain, runner, progress, signal));
  if (bad) return { ...base, status: 'failed', code: 'BAD_FORMAT', evidence: `${bad.path} fails check: ${bad.rule}: ${bad.message}` };
  const names = layers.map((l) => `${l.path} (${l.meta.type})`).join(' -> ');
  return { ...base, status: 'passed', code: null, evidence: `${layers.length} layer(s) open strictly and pass check: ${names}` };
};

/** The checks, in order. */
export const PROOF_STEPS: readonly ProofStep[] = [checkParentUuid, checkVirtualSize, checkParentTime, checkParentChain, checkGuestFileSystems];

/** What no check here can establish. */
export const PROOF_LIMITS: readonly string[] = [
  'VHD records no content link between a child and its parent, only the parent\'s UUID and a time stamp: a candidate that passes can still hold other data than the parent the child was made on (edited by a tool that kept its UUID and file time, or restored from an older backup)',
  'the time stamp is the parent file\'s modification time: copying without keeping file times moves it later (vhdtool\'s own in-place rewrites keep it), and a writer can set it back',
  'the guest-filesystems check proves consistency, not identity: a candidate that differs from the true parent only in file contents, in free space, or in sectors the child itself holds gives a consistent composed view, and passes',
];

function refuses(r: StepResult, ctx: ProofContext): { refuses: boolean; overridden: boolean } {
  if (r.status === 'passed' || r.status === 'not-applicable') return { refuses: false, overridden: false };
  if (r.override === null) return { refuses: r.status === 'failed', overridden: false };
  const given = r.override === '--force' ? ctx.force : ctx.ignoreIdMismatch;
  return { refuses: !given, overridden: given };
}

/** Runs every step (each one is reported, whatever the others found) and decides. */
export async function prove(ctx: ProofContext, steps: readonly ProofStep[] = PROOF_STEPS): Promise<Proof> {
  const checks: ProofCheck[] = [];
  const limits = [...PROOF_LIMITS];
  for (const step of steps) {
    const r = await step(ctx);
    const d = refuses(r, ctx);
    checks.push({
      name: r.name, status: r.status, evidence: r.evidence, proves: r.proves,
      override: r.override, overridden: d.overridden, refuses: d.refuses, code: d.refuses ? r.code : null,
      ...(r.fileSystems ? { fileSystems: r.fileSystems } : {}),
    });
    if (r.limits) limits.push(...r.limits);
  }
  const verdict = checks.some((c) => c.refuses) ? 'refused' : checks.some((c) => c.overridden) ? 'accepted' : 'proven';
  return { checks, verdict, limits };
}

/** The check that decides the refusal: the first that refuses. */
export function refusal(p: Proof): ProofCheck | null {
  return p.checks.find((c) => c.refuses) ?? null;
}

