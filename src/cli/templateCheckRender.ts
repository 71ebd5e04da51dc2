/** The human output of `rebase --check` (one child, or one line per user over folders). */
import { displaySafe } from '../errors.js';
import type { ChangeEntry, Conflict } from '../ops/templateConflicts.js';
import type { TemplateCheckResult, TemplateRootsResult, UserCheck } from '../ops/templateCheck.js';
import { fmtBytes, type CliIO } from './context.js';

/** Entries listed per kind in the human output (--json lists all). */
const LIMIT = 20;

function counts(list: ChangeEntry[]): string {
  const n = (c: string) => list.filter((e) => e.change === c).length;
  return `${list.length} (${n('added')} added, ${n('deleted')} deleted, ${n('modified')} modified)`;
}

function conflictLine(c: Conflict): string {
  const why = c.directory !== undefined ? ` (in ${displaySafe(c.directory)}/, which the ${c.reason === 'directory-deleted-by-update' ? 'update' : 'user'} deleted)` : '';
  const to = [c.updateRenamedTo !== undefined ? `update renamed it to ${displaySafe(c.updateRenamedTo)}` : '', c.userRenamedTo !== undefined ? `user renamed it to ${displaySafe(c.userRenamedTo)}` : ''].filter(Boolean).join(', ');
  return `${c.partition}: ${displaySafe(c.path)}: update ${c.update}, user ${c.user}${why}${to ? `; ${to}` : ''}`;
}

function listChanges(io: CliIO, title: string, list: ChangeEntry[]): void {
  io.out(`  ${title}: ${counts(list)}`);
  for (const e of list.slice(0, LIMIT)) io.out(`    ${e.change === 'added' ? '+' : e.change === 'deleted' ? '-' : 'M'} ${e.partition}: ${displaySafe(e.path)}${e.directory ? '/' : ''}`);
  if (list.length > LIMIT) io.out(`    ... and ${list.length - LIMIT} more (--json lists all)`);
}

function naiveLine(r: UserCheck): string {
  if (r.naiveRelinkSafe) return 'a naive relink (vhd-util modify -p, Set-VHD -ParentPath) would be safe: the two sides share no changed sector and not both changed metadata';
  return `a naive relink (vhd-util modify -p, Set-VHD -ParentPath) would corrupt this disk: ${r.naiveRelink.reasons.join('; ')}`;
}

export function renderCheck(io: CliIO, r: TemplateCheckResult): void {
  io.out(`${displaySafe(r.child)} on ${displaySafe(r.old)}, update to ${displaySafe(r.newTemplate)}:`);
  listChanges(io, 'files the update changed', r.updateChanged);
  listChanges(io, 'files the user changed', r.userChanged);
  io.out(`  conflicts: ${r.conflicts.length}`);
  for (const c of r.conflicts.slice(0, LIMIT)) io.out(`    ${conflictLine(c)}`);
  if (r.conflicts.length > LIMIT) io.out(`    ... and ${r.conflicts.length - LIMIT} more (--json lists all)`);
  if (r.sameChanges.length) io.out(`  changed the same way by both (no conflict): ${r.sameChanges.length}`);
  for (const n of r.notCompared) io.out(`  partition ${n.partition} changed on both sides but was not compared: ${displaySafe(n.note)}`);
  if (r.metadataConflicts.length) {
    io.out(`  metadata both changed: ${r.metadataConflicts.map((m) => `${displaySafe(m.name)}${m.commonBytes ? ` (${fmtBytes(m.commonBytes)} in common)` : ''}`).join(', ')}`);
  }
  io.out(`  verdict: safe-to-rebase: \`vhdtool rebase ${displaySafe(r.child)} --onto ${displaySafe(r.newTemplate)}\` keeps the user's view byte for byte (the update does not flow into it)`);
  io.out(`  ${naiveLine(r)}`);
  if (r.naiveRelink.tornFiles.length) {
    const t = r.naiveRelink.tornFiles;
    io.out(`  files on sectors both changed: ${t.slice(0, LIMIT).map((f) => `${f.partition}: ${displaySafe(f.path)}`).join(', ')}${t.length > LIMIT ? `, ... (${t.length} in all)` : ''}`);
  }
}

export function renderCheckRoots(io: CliIO, r: TemplateRootsResult): void {
  io.out(`update ${displaySafe(r.old)} -> ${displaySafe(r.newTemplate)}: files changed: ${counts(r.updateChanged)}; ${r.users.length} user disk${r.users.length === 1 ? '' : 's'} on the old template`);
  for (const u of r.users) {
    if (!u.ok) {
      io.out(`${displaySafe(u.path)}: error: ${displaySafe(u.error.message)}`);
      continue;
    }
    const c = u.conflicts;
    const conflicts = c.length ? `${c.length} conflict${c.length === 1 ? '' : 's'} (${c.slice(0, 3).map((x) => displaySafe(x.path)).join(', ')}${c.length > 3 ? ', ...' : ''})` : 'no conflict';
    const nc = u.notCompared.length ? `; ${u.notCompared.length} partition(s) not compared` : '';
    io.out(`${displaySafe(u.path)}: ${conflicts}${nc}; changed ${u.userChanged.length} file(s); safe-to-rebase; naive relink ${u.naiveRelinkSafe ? 'safe' : 'would corrupt'}`);
  }
  const s = r.summary;
  io.out(`${s.users} user disk${s.users === 1 ? '' : 's'}: ${s.withConflicts} with conflicts, ${s.naiveRelinkUnsafe} a naive relink would corrupt, ${s.errors} error${s.errors === 1 ? '' : 's'}`);
}
