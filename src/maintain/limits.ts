/** The largest --min-reclaim that makes sense: no VHD holds more than 2040 GiB (a bigger figure is a typo). */
export const MAX_MIN_RECLAIM = 2040 * 1024 ** 3;
