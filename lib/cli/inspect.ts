/** `devmapper inspect ID`: a layer's metadata file and the kernel's view of its device, side by side. */
import { join } from 'node:path';
import { humanSize } from '../util';
import { arg, type CommandContext, type CommandSpec, type ParsedCommand } from './command';

export interface InspectResult {
  id: string;
  metadataFile: string;
  /** The file's fields under Docker's names. */
  metadata: { device_id: number; size: number; transaction_id: number; initialized: boolean; deleted: boolean };
  kernel: {
    name: string;
    active: boolean;
    openCount: number;
    /** The table lines ("0 131072 thin 254:0 5"), empty when inactive. */
    table: string[];
    mappedSectors: number | null;
    highestMappedSector: number | null;
  };
  mountPath: string | null;
}

export async function inspectLayer(cmd: ParsedCommand, ctx: CommandContext): Promise<void> {
  const id = arg(cmd, 'ID');
  const [dm, sys, { metadataFileName, unknownDevice }] = await Promise.all([import('../dm'), import('../sys'), import('../deviceset')]);
  const result = await ctx.withDeviceSet(async (ds, home): Promise<InspectResult> => {
    const meta = ds.getDeviceMetadata(id);
    if (!meta || meta.deleted) throw unknownDevice(id);
    const name = ds.deviceName(id);
    const info = await dm.getInfo(name);
    let table: string[] = [];
    let mapped: number | null = null;
    let highest: number | null = null;
    if (info) {
      table = (await dm.getTable(name)).map((t) => `${t.start} ${t.length} ${t.type} ${t.params}`);
      const st = await dm.getThinStatus(name);
      if (st.state === 'ok') {
        mapped = st.mappedSectors;
        highest = st.highestMappedSector;
      }
    }
    const mp = join(home, 'mnt', id);
    return {
      id,
      metadataFile: join(home, 'metadata', metadataFileName(id)),
      metadata: {
        device_id: meta.deviceId,
        size: meta.size,
        transaction_id: meta.transactionId,
        initialized: meta.initialized,
        deleted: meta.deleted,
      },
      kernel: { name, active: info !== null, openCount: info?.openCount ?? 0, table, mappedSectors: mapped, highestMappedSector: highest },
      mountPath: sys.isMountPoint(mp) ? mp : null,
    };
  });
  ctx.out.result(result, (r) => {
    const k = r.kernel;
    const tableDevice = k.table.length === 1 ? /thin \S+ (\d+)/.exec(k.table[0] as string)?.[1] : undefined;
    const tableBytes = k.table.length === 1 ? Number((k.table[0] as string).split(' ')[1]) * 512 : undefined;
    ctx.out.table(
      ['FIELD', 'METADATA FILE', 'KERNEL'],
      [
        ['file / name', r.metadataFile, k.name],
        ['device_id', r.metadata.device_id, tableDevice ?? '-'],
        ['size', r.metadata.size, tableBytes ?? '-'],
        ['transaction_id', r.metadata.transaction_id, '-'],
        ['initialized', r.metadata.initialized, '-'],
        ['deleted', r.metadata.deleted, '-'],
        ['active', '-', k.active ? 'yes' : 'no'],
        ['open count', '-', k.active ? k.openCount : '-'],
        ['table', '-', k.table.join('; ') || '-'],
        ['mapped', '-', k.mappedSectors === null ? '-' : `${k.mappedSectors} sectors (${humanSize(k.mappedSectors * 512)})`],
        ['mounted at', '-', r.mountPath ?? 'no'],
      ],
    );
  });
}

export const inspectCommands: CommandSpec[] = [
  {
    name: 'inspect',
    summary: "a layer's metadata file fields and the kernel's view (dm name, open count, table, mapped sectors)",
    positionals: [{ name: 'ID', required: true, description: 'the layer' }],
    examples: ['devmapper inspect ctr', 'devmapper inspect ctr --json'],
    run: inspectLayer,
  },
];
