/** The layer commands: create, mount, unmount, remove, list (the graph Driver's calls). */
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { DevmapperError } from '../errors';
import { parseSize } from '../util';
import type { Driver } from '../driver';
import { usageError } from './args';
import { arg, optionalArg, type CommandContext, type CommandSpec, type ParsedCommand } from './command';

/** --size of create: checked before anything is opened, so a typo costs nothing. */
export function parseLayerSize(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  let bytes: number;
  try {
    bytes = parseSize(text, '--size');
  } catch {
    throw usageError(`create: --size must be a size such as 20G or 512M, not ${JSON.stringify(text)}`, '--size');
  }
  if (bytes <= 0 || bytes % 512 !== 0) throw usageError(`create: --size must be positive and a multiple of 512 bytes, not ${JSON.stringify(text)}`, '--size');
  return text;
}

async function requireLayer(driver: Driver, id: string): Promise<void> {
  if (!(await driver.exists(id))) throw (await import('../deviceset')).unknownDevice(id);
}

export interface CreateResult {
  id: string;
  parent: string | null;
  deviceId: number;
  sizeBytes: number;
  deviceName: string;
}

export async function createLayer(cmd: ParsedCommand, ctx: CommandContext): Promise<void> {
  const id = arg(cmd, 'ID');
  const parent = optionalArg(cmd, 'PARENT') ?? null;
  const size = parseLayerSize(cmd.values.size as string | undefined);
  const result = await ctx.withDriver(async (driver): Promise<CreateResult> => {
    await ctx.out.progress.during(`creating ${id}`, () => driver.create(id, parent, size === undefined ? {} : { storageOpt: { size } }));
    const md = await driver.getMetadata(id);
    return { id, parent, deviceId: Number(md.DeviceId), sizeBytes: Number(md.DeviceSize), deviceName: md.DeviceName };
  });
  ctx.out.result(result, (r) => ctx.out.line(r.id));
}

export async function mountLayer(cmd: ParsedCommand, ctx: CommandContext): Promise<void> {
  const id = arg(cmd, 'ID');
  const rootfs = await ctx.withDriver(async (driver) => {
    await requireLayer(driver, id);
    return driver.get(id, cmd.values.label as string | undefined);
  });
  ctx.out.result({ id, rootfs }, (r) => ctx.out.line(r.rootfs));
}

export async function unmountLayer(cmd: ParsedCommand, ctx: CommandContext): Promise<void> {
  const id = arg(cmd, 'ID');
  const sys = await import('../sys');
  const wasMounted = await ctx.withDriver(async (driver) => {
    await requireLayer(driver, id);
    const mounted = sys.isMountPoint(join(driver.home, 'mnt', id));
    // A mount made by an earlier invocation: get counts it as ours, put releases it.
    if (mounted) await driver.put(id);
    return mounted;
  });
  ctx.out.result({ id, unmounted: wasMounted }, (r) => {
    if (!r.unmounted) ctx.out.note(`${id} was not mounted`);
  });
}

export async function removeLayers(cmd: ParsedCommand, ctx: CommandContext): Promise<void> {
  const ids = cmd.args.ID as string[];
  const force = cmd.values.force === true;
  const [sys, { unknownDevice }] = await Promise.all([import('../sys'), import('../deviceset')]);
  const removed = await ctx.withDriver(async (driver) => {
    // All checked before any is removed: a typo or a mounted layer in the list removes nothing.
    const present: string[] = [];
    for (const id of ids) {
      if (await driver.exists(id)) present.push(id);
      else if (!force) throw unknownDevice(id);
    }
    for (const id of present) {
      const mp = join(driver.home, 'mnt', id);
      if (sys.isMountPoint(mp))
        throw new DevmapperError(`${id} is mounted at ${mp}: devmapper unmount ${id} first`, { code: 'EBUSY', errno: osConstants.errno.EBUSY, device: id });
    }
    const done: string[] = [];
    try {
      for (const [i, id] of present.entries()) {
        ctx.out.progress.update(`removing ${id} (${i + 1}/${present.length})`);
        await driver.remove(id);
        done.push(id);
      }
    } finally {
      ctx.out.progress.stop();
    }
    return done;
  });
  ctx.out.result({ removed }, () => undefined);
}

export interface ListEntry {
  id: string;
  deviceId: number;
  sizeBytes: number;
  deviceName: string;
  /** The thin device is mapped in the kernel. */
  active: boolean;
  openCount: number;
  /** home/mnt/<id> is a mount point. */
  mounted: boolean;
  mountPath: string | null;
}

export async function listLayers(_cmd: ParsedCommand, ctx: CommandContext): Promise<void> {
  const sys = await import('../sys');
  const entries = await ctx.withDeviceSet(async (ds, home) => {
    const out: ListEntry[] = [];
    for (const id of await ds.list()) {
      const st = await ds.getDeviceStatus(id);
      const mp = join(home, 'mnt', id);
      const mounted = sys.isMountPoint(mp);
      out.push({
        id,
        deviceId: st.deviceId,
        sizeBytes: st.sizeBytes,
        deviceName: st.deviceName,
        active: st.active,
        openCount: st.openCount,
        mounted,
        mountPath: mounted ? mp : null,
      });
    }
    return out;
  });
  ctx.out.result(entries, (list) =>
    ctx.out.table(
      ['ID', 'DEVICE ID', 'SIZE', 'ACTIVE', 'MOUNTED'],
      list.map((e) => [e.id, e.deviceId, e.sizeBytes, e.active ? `yes (open ${e.openCount})` : 'no', e.mountPath ?? 'no']),
      { align: ['left', 'right', 'right', 'left', 'left'] },
    ),
  );
}

export const layerCommands: CommandSpec[] = [
  {
    name: 'create',
    summary: 'creates layer ID as a snapshot of PARENT (default: the base device)',
    positionals: [
      { name: 'ID', required: true, description: 'the new layer' },
      { name: 'PARENT', required: false, description: 'the layer to snapshot (default: the base device)' },
    ],
    options: { size: { type: 'string', value: 'SIZE', description: "the layer's size, e.g. 20G (at least the parent's; the file system grows)" } },
    check: (cmd) => void parseLayerSize(cmd.values.size as string | undefined),
    examples: ['devmapper create image', 'devmapper create ctr-init image', 'devmapper create ctr ctr-init --size 20G'],
    run: createLayer,
  },
  {
    name: 'mount',
    summary: 'mounts layer ID and prints its rootfs path (ROOT/mnt/ID/rootfs); stays mounted',
    positionals: [{ name: 'ID', required: true, description: 'the layer' }],
    options: { label: { type: 'string', value: 'LABEL', description: 'SELinux mount label (context=)' } },
    run: mountLayer,
  },
  {
    name: 'unmount',
    summary: 'unmounts layer ID and deactivates its device',
    positionals: [{ name: 'ID', required: true, description: 'the layer' }],
    run: unmountLayer,
  },
  {
    name: 'remove',
    summary: 'removes the layers (refused with exit 4 while one is mounted)',
    positionals: [{ name: 'ID', required: true, variadic: true, description: 'the layers; all are checked before any is removed' }],
    options: { force: { type: 'boolean', short: 'f', description: 'skip ids that do not exist instead of failing' } },
    run: removeLayers,
  },
  {
    name: 'list',
    summary: 'the layers: device id, size in bytes, whether active and mounted',
    run: listLayers,
  },
];
