/** Peer readers used as oracles: qemu-img and libvhdi (pyvhdi). Tests skip when absent. */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';

export const HAVE_QEMU = spawnSync('qemu-img', ['--version']).status === 0;
export const HAVE_PYVHDI = spawnSync('/usr/bin/python3', ['-c', 'import pyvhdi']).status === 0;

/** sha256 of what qemu-img reads from a dynamic or fixed VHD (sized by current_size). */
export function qemuHash(file: string): string {
  const raw = `${file}.qemu.raw`;
  try {
    execFileSync('qemu-img', ['convert', '-O', 'raw', '--image-opts', `driver=vpc,force_size_calc=current_size,file.filename=${file}`, raw]);
    return createHash('sha256').update(readFileSync(raw)).digest('hex');
  } finally {
    rmSync(raw, { force: true });
  }
}

/** sha256 and media size of what libvhdi reads (optionally with a parent). */
export function libvhdiHash(file: string, parent?: string): { sha256: string; size: number } {
  const py = `
import pyvhdi, hashlib, sys
f = pyvhdi.file(); f.open(sys.argv[1])
if len(sys.argv) > 2:
    p = pyvhdi.file(); p.open(sys.argv[2]); f.set_parent(p)
n = f.get_media_size(); h = hashlib.sha256(); off = 0
while off < n:
    k = min(4 << 20, n - off); h.update(f.read_buffer_at_offset(k, off)); off += k
print(h.hexdigest(), n)
`;
  const out = execFileSync('/usr/bin/python3', ['-c', py, file, ...(parent ? [parent] : [])]).toString().trim().split(' ');
  return { sha256: out[0], size: Number(out[1]) };
}
