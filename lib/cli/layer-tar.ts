/** The layer tar commands: import (create + applyDiff) and export (diff), the graph Driver's layer diffs. */
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { usageError } from './args';
import { arg, optionalArg, type CommandContext, type CommandSpec, type ParsedCommand } from './command';

export interface ImportResult {
  id: string;
  parent: string | null;
  /** Bytes of file content the tar brought, as the Driver's applyDiff reports them. */
  bytes: number;
}

/** TAR ('-' = stdin) into a new layer ID made from PARENT; a refused tar leaves no layer behind. */
export async function importLayer(cmd: ParsedCommand, ctx: CommandContext): Promise<void> {
  const file = arg(cmd, 'TAR');
  const id = arg(cmd, 'ID');
  const parent = optionalArg(cmd, 'PARENT') ?? null;
  const result = await ctx.withDriver(async (driver): Promise<ImportResult> => {
    await driver.create(id, parent);
    try {
      const input: Readable = file === '-' ? process.stdin : createReadStream(file);
      const bytes = await ctx.out.progress.during(`importing ${file === '-' ? 'stdin' : file} into ${id}`, () => driver.applyDiff(id, parent, input));
      return { id, parent, bytes };
    } catch (err) {
      await driver.remove(id).catch(() => undefined);
      throw err;
    }
  });
  ctx.out.result(result, (r) => ctx.out.line(`${r.id}: ${r.bytes} bytes`));
}

/** The tar of ID's changes against PARENT (no PARENT: the whole layer) to --output or stdout. */
export async function exportLayer(cmd: ParsedCommand, ctx: CommandContext): Promise<void> {
  const id = arg(cmd, 'ID');
  const parent = optionalArg(cmd, 'PARENT') ?? null;
  const output = cmd.values.output as string | undefined;
  await ctx.withDriver(async (driver) => {
    const tar = await driver.diff(id, parent);
    const sink: Writable = output === undefined || output === '-' ? process.stdout : createWriteStream(output, { mode: 0o600 });
    try {
      await pipeline(tar, sink, { end: sink !== process.stdout });
    } catch (err) {
      // A half-written file is not a layer.
      if (sink !== process.stdout && output) await rm(output, { force: true });
      throw err;
    }
  });
}

export const layerTarCommands: CommandSpec[] = [
  {
    name: 'import',
    summary: 'creates layer ID from PARENT (default: the base device) and applies the layer tar TAR (- = stdin)',
    description:
      'An uncompressed layer tar, as docker save and OCI images hold them: whiteouts (.wh.NAME, .wh..wh..opq) delete what lower layers had; owners, modes, xattrs, hard links and symlinks are kept; entries that would escape the layer are refused and the layer is removed again.',
    positionals: [
      { name: 'TAR', required: true, description: 'the layer tar, or - for stdin' },
      { name: 'ID', required: true, description: 'the new layer' },
      { name: 'PARENT', required: false, description: 'the layer it sits on (default: the base device)' },
    ],
    examples: ['devmapper import layer.tar image', 'gzip -dc layer.tar.gz | devmapper import - app image'],
    run: importLayer,
  },
  {
    name: 'export',
    summary: "writes the tar of ID's changes against PARENT (deletions as whiteouts); no PARENT: the whole layer",
    positionals: [
      { name: 'ID', required: true, description: 'the layer' },
      { name: 'PARENT', required: false, description: 'the layer to compare with (default: none, the whole layer)' },
    ],
    options: { output: { type: 'string', short: 'O', value: 'FILE', description: 'write the tar to FILE instead of stdout' } },
    check: (cmd) => {
      const output = cmd.values.output as string | undefined;
      if ((output === undefined || output === '-') && process.stdout.isTTY)
        throw usageError('export: stdout is a terminal; give --output FILE or redirect stdout', '--output');
    },
    examples: ['devmapper export ctr ctr-init > ctr.tar', 'devmapper export image --output image.tar'],
    run: exportLayer,
  },
];
