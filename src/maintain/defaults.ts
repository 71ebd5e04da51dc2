/** maintain's defaults, apart from the engine so the CLI can show them without loading it. */

/**
 * Default --min-reclaim: 64 MiB. Compacting rewrites the whole disk (it reads
 * every allocated block and the parent's, and writes what it keeps), so a
 * nightly job should not rewrite a multi-gigabyte file to free a few blocks;
 * 64 MiB is 32 blocks of the usual 2 MiB, and bounds how much space can stay
 * unreclaimed per disk. Use --min-reclaim 0 to compact whatever frees space.
 */
export const DEFAULT_MIN_RECLAIM = 64 * 1024 * 1024;
/** Disks worked on at once (each holds one lane of the runner). */
export const DEFAULT_CONCURRENCY = 2;
