/** The pure VHD format layer: bytes in, typed values out, and back. */
export * from './constants.js';
export * from './bytes.js';
export * from './checksum.js';
export * from './uuid.js';
export * from './time.js';
export * from './geometry.js';
export * from './footer.js';
export * from './header.js';
export * from './locator.js';
export * from './bat.js';
export * from './bitmap.js';
export * from './layout.js';
export * from './regions.js';
