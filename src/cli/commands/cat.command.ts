import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import type { CliIO } from '../context.js';

export function registerCat(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('cat')
    .description('write the guest-visible content of a disk (through its parents) as raw bytes')
    .argument('<disk>', 'VHD file')
    .option('--parent <path>', "the disk's parent, overriding its locators")
    .option('--lenient', 'read past checksum and footer-copy errors (forensics)')
    .option('-o, --output <file>', 'write to FILE (must not exist) instead of standard output')
    .addHelpText('after', '\nExamples:\n  vhdtool cat child.vhd | sha256sum\n  vhdtool cat evidence.vhd --lenient -o evidence.raw')
    .action(async (disk: string, o: { parent?: string; lenient?: boolean; output?: string }) => {
      const [{ nodeFileSystem }, { openChain }, { ChainReader }] = await Promise.all([
        import('../../io/fsys.js'), import('../../chain/openChain.js'), import('../../chain/reader.js')]);
      const chain = await openChain(nodeFileSystem, disk, { parent: o.parent, mode: o.lenient ? 'lenient' : 'strict' });
      for (const l of chain.layersLeafFirst) for (const i of l.meta.issues) if (i.severity === 'warning' && o.lenient) io.err(`vhdtool: ${l.path}: warning: ${i.message}`);
      const out: Writable = o.output ? createWriteStream(o.output, { flags: 'wx' }) : process.stdout;
      try {
        await new ChainReader(chain).stream(async (chunk) => {
          if (io.signal.aborted) throw new Error('interrupted');
          if (!out.write(Buffer.from(chunk))) await new Promise<void>((res) => out.once('drain', () => res()));
        });
      } finally {
        await chain.close();
        if (o.output) await new Promise<void>((res) => out.end(() => res()));
      }
      done(0);
    });
}
