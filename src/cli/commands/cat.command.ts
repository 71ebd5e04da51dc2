import * as path from 'node:path';
import type { Command } from 'commander';
import { VhdToolError } from '../../errors.js';
import type { CliIO } from '../context.js';

export function registerCat(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('cat')
    .description('write the guest-visible content of a disk (through its parents) as raw bytes')
    .argument('<disk>', 'VHD file')
    .option('--parent <path>', "the disk's parent, overriding its locators")
    .option('--lenient', 'read past checksum and footer-copy errors, and a cut last block (read as zeros) (forensics)')
    .option('-o, --output <file>', 'write to FILE (must not exist) instead of standard output')
    .addHelpText('after', '\nStandard output must not be a terminal (use -o FILE or a pipe).\n\nExamples:\n  vhdtool cat child.vhd | sha256sum\n  vhdtool cat evidence.vhd --lenient -o evidence.raw')
    .action(async (disk: string, o: { parent?: string; lenient?: boolean; output?: string }) => {
      if (!o.output && io.stdoutTty) {
        throw new VhdToolError('USAGE', 'refusing to write disk content to a terminal; use -o FILE or a pipe');
      }
      const [{ nodeFileSystem: fs }, { openChain }, { ChainReader }] = await Promise.all([
        import('../../io/fsys.js'), import('../../chain/openChain.js'), import('../../chain/reader.js')]);
      const chain = await openChain(fs, disk, { parent: o.parent, mode: o.lenient ? 'lenient' : 'strict' });
      try {
        for (const l of chain.layersLeafFirst) for (const i of l.meta.issues) if (i.severity === 'warning' && o.lenient) io.err(`vhdtool: ${l.path}: warning: ${i.message}`);
        const reader = new ChainReader(chain);
        if (o.output) await toFile(io, fs, reader, chain, o.output);
        else await toStdout(io, reader);
      } finally {
        await chain.close();
      }
      done(0);
    });
}

type Reader = import('../../chain/reader.js').ChainReader;
type Fs = import('../../io/fsys.js').FileSystem;

function stopIfAborted(io: CliIO): void {
  if (io.signal.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
}

/** A new file, written whole under a temporary name and published only when complete (zeros left as holes). */
async function toFile(io: CliIO, fs: Fs, reader: Reader, chain: import('../../chain/chain.js').Chain, output: string): Promise<void> {
  const [{ refuseOutputIsInput, refuseExisting, requireOutputDir }, { writeAtomically }, { isZero }] = await Promise.all([
    import('../../ops/outputs.js'), import('../../io/atomic.js'), import('../../format/index.js')]);
  await refuseOutputIsInput(fs, output, [chain]);
  await requireOutputDir(fs, output);
  await refuseExisting(fs, output, false);
  await writeAtomically(fs, path.resolve(output), async (file) => {
    await reader.stream(async (chunk, offset) => {
      stopIfAborted(io);
      if (!isZero(chunk)) await file.write(chunk, 0, chunk.length, offset);
    });
    await file.truncate(reader.size);
  }, { replace: false, mode: 0o644 });
}

async function toStdout(io: CliIO, reader: Reader): Promise<void> {
  const out = (await import('../stdio.js')).stdoutStream();
  await reader.stream(async (chunk) => {
    stopIfAborted(io);
    if (!out.write(Buffer.from(chunk))) await new Promise<void>((res) => out.once('drain', () => res()));
  });
}
