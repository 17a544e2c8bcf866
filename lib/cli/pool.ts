/** `devmapper pool status` and `devmapper pool resize SIZE`. */
import { humanSize, parseSize } from '../util';
import type { DeviceSetStatus } from '../deviceset';
import type { StatusRow } from '../driver';
import { usageError } from './args';
import { arg, type CommandContext, type CommandSpec, type ParsedCommand } from './command';

export interface PoolStatusResult {
  /** Docker's rows, in Docker's order (as `docker info` showed them). */
  rows: StatusRow[];
  /** The typed status: sizes in bytes, the whole thin-pool status line, warnings. */
  status: DeviceSetStatus;
}

export async function poolStatus(_cmd: ParsedCommand, ctx: CommandContext): Promise<void> {
  const status = await ctx.withDeviceSet((ds) => ds.status());
  const { statusRows } = await import('../driver');
  const result: PoolStatusResult = { rows: statusRows(status), status };
  ctx.out.result(result, (r) => {
    ctx.out.table(['KEY', 'VALUE'], r.rows, { header: false });
    for (const w of r.status.warnings) ctx.out.note(`warning: ${w}`);
  });
}

/** SIZE of `pool resize`: a size such as 20G, a whole number of 512-byte sectors. */
export function parsePoolSize(text: string): number {
  let bytes: number;
  try {
    bytes = parseSize(text, 'SIZE');
  } catch {
    throw usageError(`pool resize: SIZE must be a size such as 20G or 512M, not ${JSON.stringify(text)}`, 'SIZE');
  }
  if (bytes <= 0 || bytes % 512 !== 0) throw usageError(`pool resize: SIZE must be positive and a multiple of 512 bytes, not ${JSON.stringify(text)}`, 'SIZE');
  return bytes;
}

export interface PoolResizeResult {
  dataTotalBytes: number;
  dataAvailableBytes: number;
}

export async function poolResize(cmd: ParsedCommand, ctx: CommandContext): Promise<void> {
  const bytes = parsePoolSize(arg(cmd, 'SIZE'));
  const result = await ctx.withDriver(async (driver) => {
    await ctx.out.progress.during(`resizing the pool to ${humanSize(bytes)}`, () => driver.deviceSet.resizePool(bytes));
    const st = await driver.deviceSet.status();
    return { dataTotalBytes: st.data.totalBytes, dataAvailableBytes: st.data.availableBytes } satisfies PoolResizeResult;
  });
  ctx.out.result(result, (r) => ctx.out.line(`pool data: ${humanSize(r.dataTotalBytes)} total, ${humanSize(r.dataAvailableBytes)} available`));
}

export const poolCommands: CommandSpec[] = [
  {
    name: 'pool status',
    summary: "the pool's status rows (Docker's docker-info rows, in Docker's order)",
    description: 'With --json: { rows: [[key, value], ...], status: { ...sizes in bytes, the thin-pool status line, warnings } }.',
    examples: ['devmapper pool status', 'devmapper --root /var/lib/docker/devicemapper pool status --json'],
    run: poolStatus,
  },
  {
    name: 'pool resize',
    summary: "grows the pool's data to SIZE (loopback: the data file; never shrinks)",
    positionals: [{ name: 'SIZE', required: true, description: 'the new data size, e.g. 200G (binary units, as Docker)' }],
    check: (cmd) => void parsePoolSize(arg(cmd, 'SIZE')),
    examples: ['devmapper pool resize 200G'],
    run: poolResize,
  },
];
