/**
 * The guest sample bundled in fixtures/sample/guest/ (written by
 * make-sample.ts; shown by `npm start`): a golden image and a user's
 * differencing disk over it, holding a real FAT16 file system.
 *
 * golden.vhd  dynamic, 16 MiB virtual, 512 KiB blocks: an MBR disk with one
 *             FAT16 partition (type 0x0E, active) from 1 MiB to the end,
 *             2 KiB clusters, label GOLDEN; an installed program, a few
 *             system folders, long names.
 * user.vhd    differencing over golden.vhd: one session of the guest. It
 *             wrote new folders and files, rewrote settings.ini in place
 *             (longer, so its chain grew), downloaded a 2 MiB installer and
 *             deleted it (its clusters are free but the child still holds
 *             them), and deleted a log file of the golden image.
 *
 * Each layer holds exactly the sectors its session wrote (formatting writes
 * the FATs and the root directory whole; files are written in whole
 * clusters; a mount and a clean unmount rewrite FAT[1]), so the child also
 * holds sectors it rewrote with the bytes its parent has.
 *
 * The operations below are the description: the tests compare what Sleuth
 * Kit, mtools and fsck.fat read from the generated disks with the trees
 * these operations leave (`guestTrees`).
 */
import { dateToVhdTime, encodeUtf16Le, SECTOR, type Uuid } from '../src/format/index.js';
import { Fat16Volume, type Fat16Options } from '../src/synth/fat16.js';
import { mbrSector } from '../src/synth/mbr.js';
import { patternBytes } from '../src/synth/random.js';
import type { SynthLayer, SynthWrite } from '../src/synth/build.js';

const K = 1024;
const M = 1024 * K;

export const GUEST_DIR = 'guest';
export const GUEST_NAMES = ['golden.vhd', 'user.vhd'];
export const GUEST_UUIDS = ['5a3b1e00-0000-4000-8000-000000000003', '5a3b1e00-0000-4000-8000-000000000004'] as Uuid[];

export const VIRTUAL_SIZE = 16 * M;
const BLOCK_SIZE = 512 * K;
/** The partition: from 1 MiB to the end of the disk. */
export const PARTITION_START = 2048;
export const PARTITION_SECTORS = VIRTUAL_SIZE / SECTOR - PARTITION_START;

const FAT: Fat16Options = {
  bytes: PARTITION_SECTORS * SECTOR,
  sectorsPerCluster: 4,
  hiddenSectors: PARTITION_START,
  volumeId: 0x5a3b1e03,
  label: 'GOLDEN',
};

export type GuestOp =
  | { op: 'mkdir'; path: string; at: Date }
  | { op: 'write'; path: string; data: Uint8Array; at: Date }
  | { op: 'rewrite'; path: string; data: Uint8Array; at: Date }
  | { op: 'delete'; path: string };

const nov = (day: number, h: number, m: number, s = 0) => new Date(Date.UTC(2026, 10, day, h, m, s));
/** Text as a Windows guest writes it: UTF-8, CRLF line ends. */
const text = (lines: string[]) => new Uint8Array(Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'utf8'));

function settings(version: 1 | 2): Uint8Array {
  const lines = ['; Sample App settings', '[General]', 'Language=en-US', `CheckForUpdates=${version === 1 ? 1 : 0}`, 'DataFolder=C:\\Users\\Public', ''];
  lines.push('[Plugins]');
  for (let i = 1; i <= 60; i++) lines.push(`Plugin${String(i).padStart(3, '0')}=C:\\Program Files\\Sample App\\plugins\\plugin${i}.dll,enabled`);
  if (version === 2) {
    lines.push('', '[RecentFiles]');
    for (let i = 1; i <= 30; i++) lines.push(`File${i}=C:\\Users\\Alice\\Documents\\Quarterly report 2026-Q3.txt;page=${i * 3}`);
  }
  return text(lines);
}

function log(lines: number, what: string): Uint8Array {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) out.push(`2026-11-02 09:${String(3 + Math.floor(i / 60)).padStart(2, '0')}:${String(i % 60).padStart(2, '0')} ${what} step ${i + 1} of ${lines}: ok`);
  return text(out);
}

/** The golden image's session: an installation. */
export const GOLDEN_OPS: GuestOp[] = [
  { op: 'write', path: 'AUTOEXEC.BAT', data: text(['@ECHO OFF', 'PATH C:\\WINDOWS;C:\\WINDOWS\\SYSTEM32']), at: nov(2, 9, 0) },
  { op: 'write', path: 'CONFIG.SYS', data: text(['FILES=40', 'BUFFERS=20']), at: nov(2, 9, 0, 4) },
  { op: 'mkdir', path: 'Windows', at: nov(2, 9, 1) },
  { op: 'mkdir', path: 'Windows/System32', at: nov(2, 9, 1, 2) },
  { op: 'write', path: 'Windows/System32/drivers.dat', data: patternBytes(256 * K, 11), at: nov(2, 9, 2) },
  { op: 'mkdir', path: 'Windows/Temp', at: nov(2, 9, 3) },
  { op: 'write', path: 'Windows/Temp/install.log', data: log(120, 'install'), at: nov(2, 9, 4) },
  { op: 'mkdir', path: 'Program Files', at: nov(2, 9, 5) },
  { op: 'mkdir', path: 'Program Files/Sample App', at: nov(2, 9, 5, 1) },
  { op: 'write', path: 'Program Files/Sample App/sampleapp.exe', data: patternBytes(384 * K, 12), at: nov(2, 9, 6) },
  { op: 'write', path: 'Program Files/Sample App/settings.ini', data: settings(1), at: nov(2, 9, 6, 30) },
  { op: 'write', path: 'Program Files/Sample App/Read Me First.txt', data: text(['Sample App 2.0', '', 'Thank you for installing Sample App.', 'Your settings are in settings.ini beside this file.']), at: nov(2, 9, 7) },
  { op: 'mkdir', path: 'Users', at: nov(2, 9, 8) },
  { op: 'mkdir', path: 'Users/Public', at: nov(2, 9, 8, 1) },
  { op: 'write', path: 'Users/Public/Welcome to the sample disk.txt', data: text(['This disk is the golden image of the vhdtool guest sample.', 'Each user gets a differencing disk over it.']), at: nov(2, 9, 9) },
];

/** The user's session over the golden image. */
export const USER_OPS: GuestOp[] = [
  { op: 'mkdir', path: 'Users/Alice', at: nov(20, 8, 30) },
  { op: 'mkdir', path: 'Users/Alice/Documents', at: nov(20, 8, 30, 1) },
  { op: 'write', path: 'Users/Alice/Documents/Quarterly report 2026-Q3.txt', data: text(Array.from({ length: 80 }, (_, i) => `Line ${i + 1}: revenue, costs and the plan for the next quarter, region ${(i % 7) + 1}.`)), at: nov(20, 9, 15) },
  { op: 'write', path: 'Users/Alice/Documents/Résumé.txt', data: text(['Alice Example', 'Engineer, 2019 to 2026']), at: nov(20, 9, 40) },
  { op: 'mkdir', path: 'Users/Alice/Pictures', at: nov(20, 10, 0) },
  { op: 'write', path: 'Users/Alice/Pictures/holiday photo 01.jpg', data: patternBytes(320 * K, 21), at: nov(20, 10, 1) },
  { op: 'write', path: 'Users/Alice/Pictures/holiday photo 02.jpg', data: patternBytes(192 * K, 22), at: nov(20, 10, 1, 20) },
  { op: 'rewrite', path: 'Program Files/Sample App/settings.ini', data: settings(2), at: nov(20, 11, 0) },
  { op: 'mkdir', path: 'Users/Alice/Downloads', at: nov(20, 14, 0) },
  { op: 'write', path: 'Users/Alice/Downloads/sample-app-2.1-setup.iso', data: patternBytes(2 * M, 23), at: nov(20, 14, 5) },
  { op: 'delete', path: 'Users/Alice/Downloads/sample-app-2.1-setup.iso' },
  { op: 'delete', path: 'Windows/Temp/install.log' },
];

/** Footer time stamps: the golden image closed after its session, the user's disk after its. */
const GOLDEN_TIME = dateToVhdTime(nov(2, 10, 0));
const USER_TIME = dateToVhdTime(nov(20, 17, 0));

function apply(vol: Fat16Volume, ops: GuestOp[]): void {
  vol.mount();
  for (const o of ops) {
    if (o.op === 'mkdir') vol.mkdir(o.path, o.at);
    else if (o.op === 'write') vol.writeFile(o.path, o.data, o.at);
    else if (o.op === 'rewrite') vol.rewriteFile(o.path, o.data, o.at);
    else vol.deleteFile(o.path);
  }
  vol.unmount();
}

/** What a session wrote, as disk writes: each run with the volume's bytes at the session's end. */
function sessionWrites(vol: Fat16Volume): SynthWrite[] {
  return vol.takeWritten().map((r) => ({
    sector: PARTITION_START + r.sector,
    data: vol.bytes.slice(r.sector * SECTOR, (r.sector + r.count) * SECTOR),
  }));
}

/** The two layers, base first. */
export function guestLayers(): SynthLayer[] {
  const vol = Fat16Volume.format(FAT, nov(2, 8, 59));
  apply(vol, GOLDEN_OPS);
  const mbr = mbrSector(0x5a3b1e03, [{ type: 0x0e, start: PARTITION_START, sectors: PARTITION_SECTORS, active: true }]);
  const golden: SynthLayer = {
    type: 'dynamic', virtualSize: VIRTUAL_SIZE, blockSize: BLOCK_SIZE, uniqueId: GUEST_UUIDS[0], timestamp: GOLDEN_TIME,
    writes: [{ sector: 0, data: mbr }, ...sessionWrites(vol)],
  };
  apply(vol, USER_OPS);
  const user: SynthLayer = {
    type: 'differencing', virtualSize: VIRTUAL_SIZE, blockSize: BLOCK_SIZE, uniqueId: GUEST_UUIDS[1], timestamp: USER_TIME,
    parentTimestamp: GOLDEN_TIME,
    locators: [
      { platform: 'W2ku', data: encodeUtf16Le('C:\\VMs\\golden\\golden.vhd') },
      { platform: 'W2ru', data: encodeUtf16Le('.\\golden.vhd') },
    ],
    writes: sessionWrites(vol),
  };
  return [golden, user];
}

/** A folder (null) or a file's content, by path. */
export type GuestTree = Map<string, Uint8Array | null>;

function tree(ops: GuestOp[], from: GuestTree = new Map()): GuestTree {
  const t = new Map(from);
  for (const o of ops) {
    if (o.op === 'mkdir') t.set(o.path, null);
    else if (o.op === 'delete') t.delete(o.path);
    else t.set(o.path, o.data);
  }
  return t;
}

/** The files and folders each view holds, from the operations alone. */
export function guestTrees(): { golden: GuestTree; user: GuestTree } {
  const golden = tree(GOLDEN_OPS);
  return { golden, user: tree(USER_OPS, golden) };
}
