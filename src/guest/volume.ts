/**
 * The one interface every file-system reader implements (NTFS, FAT, ext,
 * swap), so that `map`, `compact --free-space`, `diff` and `relink`'s proof
 * treat them alike. All offsets are bytes relative to the start of the
 * volume (the partition); the operations shift them onto the disk.
 *
 * A reader reads through a ByteSource only, validates every offset and length
 * it takes from the volume, and throws a GuestError for a volume it cannot
 * read safely. Problems that leave the rest readable (a torn MFT record, a
 * cross-linked cluster) are anomalies, reported in the scan.
 */
import type { RangeSet } from './ranges.js';

export type FsKind = 'ntfs' | 'fat12' | 'fat16' | 'fat32' | 'ext2' | 'ext3' | 'ext4' | 'swap' | 'unknown';

/**
 * clean: safe to trust the allocation maps.
 * dirty: NTFS $Volume dirty flag, FAT dirty bit.
 * unclean-log: NTFS $LogFile not cleanly closed.
 * hibernated: NTFS hiberfil.sys holds a hibernation image (hibernation or Fast Startup); swap holds a suspend image.
 * needs-recovery: ext journal needs replaying.
 */
export type VolumeStateName = 'clean' | 'dirty' | 'unclean-log' | 'hibernated' | 'needs-recovery';

export interface VolumeState {
  /** The most serious condition found ('clean' when none). */
  state: VolumeStateName;
  /** Every condition found, one sentence each (empty when clean). */
  reasons: string[];
}

export interface GuestFile {
  /**
   * Identity of the file across two views of one volume (for diff):
   * NTFS `mft:<record>:<sequence>`, ext `ino:<inode>:<generation>`, FAT
   * `path:<path in lower case>` (FAT has no file numbers).
   */
  id: string;
  /** Full path, `/`-separated, from the root, without a leading `/` or a volume name; a named stream is `path:name`. */
  path: string;
  /** Logical size in bytes (a directory: 0, or its index's size). */
  size: number;
  directory: boolean;
  /** The file system's own files (NTFS $MFT, $LogFile, ...; the ext journal): their bytes count as metadata. */
  system: boolean;
  /** Allocated clusters holding the content (sparse and resident parts excluded). */
  data: RangeSet;
  /** The file's own metadata: its MFT record(s) or inode, extent-tree or indirect blocks, FAT directory entry. */
  meta: RangeSet;
  /** Reader-private handle for readContent (a record or inode number, a first cluster). */
  ref: number;
}

export interface Anomaly {
  /**
   * torn-record (bad update-sequence fixup), bad-record, orphan (in use but
   * reachable from no directory), double-owned (a cluster two files claim),
   * owned-but-free (a file's cluster the allocation map calls free),
   * unowned-allocated (allocated, claimed by nothing), bad-chain (FAT),
   * bad-extent (ext), bad-sequence (NTFS), bad-runlist (NTFS: a runlist leaving
   * the volume), mirror-mismatch (NTFS: $MFT and $MFTMirr differ),
   * bad-index and unindexed (NTFS directory indexes against the MFT, with
   * ScanOptions.indexes).
   */
  kind: string;
  message: string;
  /** Volume bytes concerned, where known. */
  ranges?: RangeSet;
  /** Cases of this kind the message stands for, where the reader counts them. */
  count?: number;
}

export interface VolumeScan {
  state: VolumeState;
  /** Whole free clusters. */
  free: RangeSet;
  /**
   * Everything the file system needs besides user file data: boot sectors,
   * FATs, MFT, bitmaps, inode tables, journal, directories, system files,
   * the area outside the cluster range, and allocated space nothing claims.
   */
  metadata: RangeSet;
  /** Clusters holding user files' data (named streams included). */
  fileData: RangeSet;
  anomalies: Anomaly[];
  files: number;
  directories: number;
  /** With ScanOptions.resumable, from a reader that can scan incrementally: what a later `since` scan starts from. */
  resume?: ScanResume;
  /**
   * Set only by an incremental scan (ScanOptions.since) that the reader
   * could make: true for the `ref` of a file of the earlier scan that this
   * scan left out of onFile because it is the same file in this view (same
   * id, path, size, directory, system, data and meta), none of whose data or
   * meta bytes is in `changed`. Every other file of this view went to
   * onFile. In such a scan `metadata` and `fileData` hold only their bytes in
   * `changed`, and `anomalies` only what was found in what was read again.
   */
  unreported?: (ref: number) => boolean;
}

/**
 * A scan's state kept for an incremental scan of another view of the same
 * volume (reader-private: only the reader that made it reads it).
 */
export interface ScanResume {
  readonly kind: FsKind;
}

export interface ScanOptions {
  /** Called once per file and directory, after its path is known. */
  onFile?: (f: GuestFile) => void;
  /**
   * A hint for onFile: the caller needs only the files whose `data` has a
   * byte in these volume ranges (map: the sectors a disk holds). A reader
   * may leave the others out of onFile, and so build no path or object for
   * them; one that cannot tell early calls onFile for every file.
   */
  filesTouching?: RangeSet;
  signal?: AbortSignal;
  /**
   * Also cross-check directory indexes against the files where the file
   * system keeps both (NTFS $I30: anomalies bad-index, unindexed). Costs a
   * read of every directory's index; relink's proof asks for it.
   */
  indexes?: boolean;
  /**
   * The caller needs the scan's metadata and fileData only within these
   * bytes (diff: those that differ). A reader may then give them clipped to
   * them, and make its ownership cross-check (anomalies) only there.
   */
  within?: RangeSet;
  /** Keep what an incremental scan of another view needs (VolumeScan.resume): the reader's tables stay in memory. */
  resumable?: boolean;
  /**
   * Scan incrementally: `from` is a resumable scan of another view of this
   * volume (the same partition through another disk), `changed` every
   * volume byte where the two views may differ. Files the earlier scan found
   * that are the same in this view may be left out of onFile (see
   * VolumeScan.unreported). A reader that cannot (another kind of volume, a
   * layout that moved, ScanOptions.indexes) scans in full.
   */
  since?: {
    from: ScanResume;
    changed: RangeSet;
    /**
     * Called, in an incremental scan, with the earlier view's version of
     * every file that may differ: each earlier file whose data or meta has a
     * byte in `changed`, and each earlier file with the ref of a file this
     * scan reports; before onFile gets this view's files of that record. So
     * the earlier scan itself need not have reported any file (see
     * Volume.continuesFrom).
     */
    onEarlier?: (f: GuestFile) => void;
  };
}

export interface Volume {
  readonly kind: FsKind;
  /** The volume's size in bytes (its partition's). */
  readonly size: number;
  /** Allocation unit in bytes (cluster, block). */
  readonly clusterSize: number;
  /** Bytes [start, end) that allocation units cover; the rest (a backup boot sector, slack) is never free. */
  readonly clusterArea: { start: number; end: number };
  readonly label: string | null;
  /** One pass over the file system's metadata: state, maps, anomalies, and every file through onFile. */
  scan(opts?: ScanOptions): Promise<VolumeScan>;
  /** A file's logical content (zeros for sparse parts), in order, `size` bytes in all. */
  readContent(f: GuestFile): AsyncIterable<Uint8Array>;
  /**
   * Whether scan({ since: { from, changed } }), `from` a resumable scan of
   * `earlier` (another view of this volume), will be incremental; readers
   * that cannot scan incrementally leave it out.
   */
  continuesFrom?(earlier: Volume, changed: RangeSet): boolean;
}

/** A partition whose content is recognised but not read (BitLocker, LVM, LUKS, exFAT...), or not recognised at all. */
export interface UnknownVolume {
  readonly kind: 'unknown';
  readonly size: number;
  /** What it looks like ("BitLocker", "LVM2 physical volume", "exFAT", or "unrecognised"). */
  readonly name: string;
}
