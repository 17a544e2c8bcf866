/**
 * The run's three artifacts from the guests' results: results.json (everything, every
 * sample), results.md (the tables) and the SVG charts (latency per operation and contender;
 * latency per operation and pool size).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatBytes, formatNs, formatRatio, ratio, type Stats } from './stats';
import { imagesSection } from './report-images';
import { backlogCell, backlogColumn, backlogSentence } from './report-udev';
import { cliChart, cliSection, peersChart, peersSection } from './report-peers';
import { snapshotterChart, snapshotterSection } from './report-snapshotter';
import { barChartSvg } from './svg';
import {
  type ContenderName,
  type DsConcurrencyResult,
  type DsScalePoint,
  type DsScaleResult,
  type GuestResult,
  LIFECYCLE_CONTENDERS,
  LIFECYCLE_STEPS,
  type LifecycleContenderName,
  type LifecycleResult,
  type OpName,
  type OpResult,
  type OpStats,
} from './types';

export interface CombinedResult {
  schema: 1;
  mode: GuestResult['mode'];
  date: string;
  host: { release: string; cpus: number; node: string; kernelUsed: 'host' | 'sandbox' };
  /** Wall time of the whole benchmark command, boots included (ms). */
  durationMs: number;
  runs: GuestResult[];
}

const LABEL: Record<ContenderName, string> = {
  raw: 'raw C',
  rawHop: 'raw C + thread hop',
  dm: 'devmapper dm',
  dmSync: 'addon sync',
  dmsetup: 'dmsetup',
};
const COLOR: Record<ContenderName, string> = {
  raw: '#4c72b0',
  rawHop: '#8da0cb',
  dm: '#dd8452',
  dmSync: '#55a868',
  dmsetup: '#c44e52',
};

/** Thread-pool round trips (libuv hops) one dm call of each operation makes. */
export const HOPS: Record<OpName, number> = {
  create_thin: 1,
  create_snap: 1,
  create_snap_active: 4,
  delete: 1,
  set_transaction_id: 1,
  activate: 1,
  suspend_resume: 2,
  remove: 1,
  info: 1,
  pool_status: 1,
};

const MESSAGES: OpName[] = ['create_thin', 'create_snap', 'delete', 'set_transaction_id'];

function cell(s: Stats | undefined): string {
  if (!s) return '–';
  return `${formatNs(s.mean)} / ${formatNs(s.p50)} / ${formatNs(s.p99)}`;
}

function get(o: OpResult, c: ContenderName): OpStats | undefined {
  return o.contenders[c];
}

function table(head: string[], rows: string[][]): string {
  const align = head.map((_, i) => (i === 0 ? ':--' : '--:'));
  return [head, align, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

function yes(ok: boolean): string {
  return ok ? 'yes' : '**no**';
}

function kernelLine(r: GuestResult): string {
  return `${r.kernel.sandbox ? 'sandbox (user-mode Linux, 1 CPU)' : 'host'} ${r.kernel.release}, udev ${r.udev}, libdevmapper ${r.library}, node ${r.node}, UV_THREADPOOL_SIZE ${r.uvThreadpoolSize}`;
}

function singleTable(r: GuestResult): string {
  const rows = r.single.map((o) => {
    const raw = get(o, 'raw');
    const hop = get(o, 'rawHop');
    const d = get(o, 'dm');
    const s = get(o, 'dmSync');
    const sh = get(o, 'dmsetup');
    const both = (a?: OpStats, b?: OpStats) => `${formatRatio(ratio(a?.mean, b?.mean))} / ${formatRatio(ratio(a?.p50, b?.p50))}`;
    return [o.op, cell(raw), cell(hop), cell(d), cell(s), cell(sh), both(d, raw), both(d, hop), both(s, raw), both(sh, d)];
  });
  return table(
    ['operation', 'raw C', 'raw C + hop', 'devmapper dm', 'addon sync', 'dmsetup', 'dm / raw', 'dm / (raw + hop)', 'sync / raw', 'dmsetup / dm'],
    rows,
  );
}

function breakdownTable(r: GuestResult): string {
  const rows = r.single.map((o) => {
    const raw = get(o, 'raw')?.p50 ?? NaN;
    const hop = get(o, 'rawHop')?.p50 ?? NaN;
    const d = get(o, 'dm')?.p50 ?? NaN;
    const s = get(o, 'dmSync')?.p50 ?? NaN;
    return [o.op, String(HOPS[o.op]), formatNs(raw), formatNs(hop - raw), formatNs(s - raw), formatNs(d - s), formatNs(d - hop)];
  });
  return table(
    [
      'operation (p50)',
      'addon hops',
      'raw C',
      'one hop in C (raw + hop − raw)',
      'JS, N-API, copies (sync − raw)',
      'addon hops and promise (dm − sync)',
      'dm − (raw + hop)',
    ],
    rows,
  );
}

function targetsTable(r: GuestResult): string {
  const rows: string[][] = [];
  const byOp = new Map(r.single.map((o) => [o.op, o]));
  for (const op of [...MESSAGES, 'activate', 'remove'] as OpName[]) {
    const o = byOp.get(op);
    if (!o) continue;
    const limit = MESSAGES.includes(op) ? 1.5 : 1.15;
    const m = ratio(get(o, 'dm')?.mean, get(o, 'raw')?.mean);
    const p = ratio(get(o, 'dm')?.p50, get(o, 'raw')?.p50);
    rows.push([`${op}: dm / raw < ${limit}x`, `${formatRatio(m)} mean, ${formatRatio(p)} p50`, yes(m < limit), yes(p < limit)]);
  }
  for (const o of r.single) {
    const m = ratio(get(o, 'dm')?.mean, get(o, 'raw')?.mean);
    const p = ratio(get(o, 'dm')?.p50, get(o, 'raw')?.p50);
    rows.push([`${o.op}: dm / raw < 1.25x`, `${formatRatio(m)} mean, ${formatRatio(p)} p50`, yes(m < 1.25), yes(p < 1.25)]);
  }
  for (const c of r.concurrency.filter((x) => !x.workload.includes('control'))) {
    rows.push([
      `${c.parallel} concurrent ${c.workload}: event-loop delay p99 < 20 ms`,
      `${c.eldConcurrent.p99.toFixed(1)} ms (${c.eldRaw.p99.toFixed(1)} ms while only the C program runs)`,
      yes(c.eldConcurrent.p99 < 20),
      '',
    ]);
  }
  const first = r.scale[0];
  const last = r.scale[r.scale.length - 1];
  if (first && last && last !== first) {
    for (const o of last.ops) {
      const base = first.ops.find((x) => x.op === o.op);
      if (!base) continue;
      const m = ratio(get(o, 'dm')?.mean, get(base, 'dm')?.mean);
      const p = ratio(get(o, 'dm')?.p50, get(base, 'dm')?.p50);
      rows.push([`${o.op}: dm at ${last.devices} devices / at ${first.devices} < 1.2x`, `${formatRatio(m)} mean, ${formatRatio(p)} p50`, yes(m < 1.2), yes(p < 1.2)]);
    }
  }
  return table(['target', 'figure', 'met (mean)', 'met (p50)'], rows);
}

function scaleTable(r: GuestResult): string {
  if (r.scale.length === 0) return '';
  const first = r.scale[0]!;
  const last = r.scale[r.scale.length - 1]!;
  const head = ['operation (mean / p50)'];
  for (const c of ['raw', 'dm'] as ContenderName[]) for (const p of r.scale) head.push(`${LABEL[c]} @${p.devices}`);
  head.push(`raw ${last.devices}/${first.devices}`, `dm ${last.devices}/${first.devices}`);
  const rows: string[][] = first.ops.map((o0) => {
    const row: string[] = [o0.op];
    for (const c of ['raw', 'dm'] as ContenderName[]) {
      for (const p of r.scale) {
        const s = p.ops.find((x) => x.op === o0.op)?.contenders[c];
        row.push(s ? `${formatNs(s.mean)} / ${formatNs(s.p50)}` : '–');
      }
    }
    const lastOp = last.ops.find((x) => x.op === o0.op);
    for (const c of ['raw', 'dm'] as ContenderName[]) {
      const a = lastOp?.contenders[c];
      const b = o0.contenders[c];
      row.push(`${formatRatio(ratio(a?.mean, b?.mean))} / ${formatRatio(ratio(a?.p50, b?.p50))}`);
    }
    return row;
  });
  rows.push([
    'create_thin while filling (raw C)',
    ...r.scale.map((p) => `${formatNs(p.fill.mean)} / ${formatNs(p.fill.p50)}`),
    ...r.scale.map(() => ''),
    '',
    '',
  ]);
  return table(head, rows);
}

function concurrencyTable(r: GuestResult): string {
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor((a.length - 1) / 2)] ?? NaN;
  const rows = r.concurrency.map((c) => [
    `${c.workload} x ${c.parallel}`,
    `${med(c.serialMs).toFixed(0)} ms`,
    `${med(c.concurrentMs).toFixed(0)} ms`,
    formatRatio(med(c.serialMs) / med(c.concurrentMs)),
    `${med(c.rawMs).toFixed(0)} ms`,
    `${c.eldConcurrent.p50.toFixed(1)} / ${c.eldConcurrent.p99.toFixed(1)} / ${c.eldConcurrent.max.toFixed(0)} ms`,
    `${c.eldSerial.p50.toFixed(1)} / ${c.eldSerial.p99.toFixed(1)} / ${c.eldSerial.max.toFixed(0)} ms`,
    `${c.eldRaw.p50.toFixed(1)} / ${c.eldRaw.p99.toFixed(1)} / ${c.eldRaw.max.toFixed(0)} ms`,
  ]);
  return table(
    [
      'workload',
      'serial (dm)',
      'all at once (dm)',
      'throughput vs serial',
      'serial floor (raw C; fs.statSync for the control)',
      'event-loop delay p50 / p99 / max, at once',
      '… serial',
      '… node idle, C program working',
    ],
    rows,
  );
}

function memoryTable(r: GuestResult): string {
  const m = r.memory;
  if (!m) return '';
  const base = m.checkpoints[0];
  const rows = m.checkpoints.map((c) => [
    String(c.calls),
    formatBytes(c.rss),
    formatBytes(c.heapUsed),
    formatBytes(c.external),
    base ? formatBytes(c.rss - base.rss) : '',
    base ? formatBytes(c.heapUsed - base.heapUsed) : '',
  ]);
  return `${table(['dm calls', 'RSS', 'heap used', 'external', 'RSS vs first', 'heap vs first'], rows)}\n\nGrowth per call (least squares over the second half of the run): heap ${m.heapUsedBytesPerCall.toFixed(1)} B, RSS ${m.rssBytesPerCall.toFixed(1)} B. ${m.gcExposed ? 'Each checkpoint after a full GC.' : 'No --expose-gc: checkpoints without a forced GC.'}`;
}

const LIFECYCLE_LABEL: Record<LifecycleContenderName, string> = {
  raw: 'raw C',
  deviceSet: 'DeviceSet',
  driver: 'Driver',
  dmsetup: 'dmsetup',
};
const LIFECYCLE_COLOR: Record<LifecycleContenderName, string> = { raw: '#4c72b0', deviceSet: '#dd8452', driver: '#55a868', dmsetup: '#c44e52' };

/** Docker's own driver in this sandbox kernel: the lifecycle's reference, not a contender. */
export const DOCKER_LIFECYCLE = 'Docker (moby v24.0.9) measured earlier in this sandbox kernel: 36 ms / 527 ms (udev off / on; 26 ms with dm.blkdiscard=false)';

/** libuv thread-pool round trips among async_hooks types: each a hop to a worker and back. */
function isThreadPoolHop(type: string): boolean {
  return type.startsWith('devmapper:') || type === 'FSREQPROMISE' || type === 'FSREQCALLBACK' || type === 'FILEHANDLECLOSEREQ';
}

/** Whether the run counted the udev backlog (older results did not). */
function backlogMeasured(l: LifecycleResult): boolean {
  return Object.values(l.contenders).some((s) => s?.udevBacklog);
}

function lifecycleTable(l: LifecycleResult): string {
  const raw = l.contenders.raw;
  const measured = backlogMeasured(l);
  const rows = LIFECYCLE_CONTENDERS.map((c) => {
    const s = l.contenders[c];
    return [
      LIFECYCLE_LABEL[c],
      cell(s),
      ...(measured ? [backlogCell(s?.udevBacklog)] : []),
      ...LIFECYCLE_STEPS.map((k) => cell(s?.steps[k])),
      `${formatRatio(ratio(s?.mean, raw?.mean))} / ${formatRatio(ratio(s?.p50, raw?.p50))}`,
    ];
  });
  return table(['contender', 'whole lifecycle', ...(measured ? [backlogColumn()] : []), ...LIFECYCLE_STEPS, '/ raw C'], rows);
}

function lifecycleTargets(r: GuestResult, l: LifecycleResult): string {
  const c = l.contenders;
  const both = (a?: OpStats, b?: OpStats) => [ratio(a?.mean, b?.mean), ratio(a?.p50, b?.p50)] as const;
  const rows: string[][] = [];
  for (const k of ['deviceSet', 'driver'] as const) {
    const [m, p] = both(c[k], c.raw);
    rows.push([`${LIFECYCLE_LABEL[k]} / raw C within 1.15x`, `${formatRatio(m)} mean, ${formatRatio(p)} p50`, yes(m <= 1.15), yes(p <= 1.15)]);
  }
  for (const k of ['deviceSet', 'driver'] as const) {
    const [m, p] = both(c.dmsetup, c[k]);
    rows.push([`dmsetup / ${LIFECYCLE_LABEL[k]} at least 20x`, `${formatRatio(m)} mean, ${formatRatio(p)} p50`, yes(m >= 20), yes(p >= 20)]);
  }
  if (r.udev === 'off') {
    for (const k of ['deviceSet', 'driver'] as const) {
      const s = c[k];
      rows.push([
        `${LIFECYCLE_LABEL[k]} lifecycle under 12 ms without udev`,
        `${formatNs(s?.mean ?? NaN)} mean, ${formatNs(s?.p50 ?? NaN)} p50`,
        yes((s?.mean ?? Infinity) < 12e6),
        yes((s?.p50 ?? Infinity) < 12e6),
      ]);
    }
  }
  return table(['target', 'figure', 'met (mean)', 'met (p50)'], rows);
}

function hopsTable(l: LifecycleResult): string {
  const hop = l.hopCost.asyncNs - l.hopCost.syncNs;
  const raw = l.contenders.raw?.mean;
  const kinds = [...new Set(Object.values(l.hops).flatMap((h) => Object.keys(h ?? {})))].sort(
    (a, b) => Number(isThreadPoolHop(b)) - Number(isThreadPoolHop(a)) || a.localeCompare(b),
  );
  const hopKinds = kinds.filter(isThreadPoolHop);
  const other = kinds.filter((k) => !isThreadPoolHop(k));
  const rows = (['deviceSet', 'driver'] as const).map((k) => {
    const h = l.hops[k] ?? {};
    const total = hopKinds.reduce((sum, t) => sum + (h[t] ?? 0), 0);
    // What the caller saw: the udev backlog is no thread hop.
    const s = l.contenders[k];
    const over = (s?.mean ?? NaN) - (s?.udevBacklog?.mean ?? 0) - (raw ?? NaN);
    return [
      LIFECYCLE_LABEL[k],
      ...hopKinds.map((t) => String(h[t] ?? 0)),
      String(total),
      formatNs(total * hop),
      formatNs(over),
      other.map((t) => `${t} ${h[t] ?? 0}`).join(', '),
    ];
  });
  return `${table(
    [
      'one lifecycle',
      ...hopKinds,
      'thread-pool round trips',
      '× one hop',
      `mean − raw C mean${backlogMeasured(l) ? ' (udev backlog left out)' : ''}`,
      'other async resources (no thread)',
    ],
    rows,
  )}\n\nOne hop in this run: ${formatNs(hop)} (fs.promises.stat ${formatNs(l.hopCost.asyncNs)} p50 against fs.statSync ${formatNs(l.hopCost.syncNs)}).`;
}

/** Per step: the DeviceSet's and the Driver's time over raw C against their thread hops. */
function whereTable(l: LifecycleResult): string {
  const per = l.hopsPerStep;
  if (!per) return '';
  const hop = l.hopCost.asyncNs - l.hopCost.syncNs;
  const hopsOf = (k: 'deviceSet' | 'driver', step?: (typeof LIFECYCLE_STEPS)[number]) => {
    const counts = step ? per[k]?.[step] : l.hops[k];
    return Object.entries(counts ?? {})
      .filter(([t]) => isThreadPoolHop(t))
      .reduce((sum, [, n]) => sum + n, 0);
  };
  const detail = (k: 'deviceSet' | 'driver', step: (typeof LIFECYCLE_STEPS)[number]) => {
    const c = per[k]?.[step] ?? {};
    const jobs = c['devmapper:steps'] ?? 0;
    const dmTasks = c['devmapper:task'] ?? 0;
    const mounts = (c['devmapper:mount'] ?? 0) + (c['devmapper:umount'] ?? 0);
    const fs = (c.FSREQPROMISE ?? 0) + (c.FSREQCALLBACK ?? 0) + (c.FILEHANDLECLOSEREQ ?? 0);
    return `${jobs} + ${dmTasks} + ${mounts} + ${fs}`;
  };
  const mean = (k: LifecycleContenderName, step?: (typeof LIFECYCLE_STEPS)[number]) =>
    (step ? l.contenders[k]?.steps[step]?.mean : l.contenders[k]?.mean) ?? NaN;
  const rows = [...LIFECYCLE_STEPS, undefined].map((step) => {
    const row = [step ?? 'whole lifecycle', formatNs(mean('raw', step))];
    for (const k of ['deviceSet', 'driver'] as const) {
      const n = hopsOf(k, step);
      row.push(
        formatNs(mean(k, step)),
        formatNs(mean(k, step) - mean('raw', step)),
        step ? `${n} (${detail(k, step)})` : String(n),
        formatNs(n * hop),
      );
    }
    return row;
  });
  // The udev backlog after the calls returned: no step, no hop; in the whole lifecycle.
  const backlog = (k: LifecycleContenderName) => l.contenders[k]?.udevBacklog?.mean;
  if (backlog('deviceSet') !== undefined || backlog('driver') !== undefined)
    rows.splice(LIFECYCLE_STEPS.length, 0, [
      'udev backlog (raw C waits for udev in its calls)',
      '0',
      formatNs(backlog('deviceSet') ?? NaN),
      formatNs(backlog('deviceSet') ?? NaN),
      '–',
      '',
      formatNs(backlog('driver') ?? NaN),
      formatNs(backlog('driver') ?? NaN),
      '–',
      '',
    ]);
  return table(
    [
      'step (means)',
      'raw C',
      'DeviceSet',
      'DeviceSet − raw C',
      'DeviceSet hops (step jobs + dm tasks + mount/umount + fs)',
      '× one hop',
      'Driver',
      'Driver − raw C',
      'Driver hops (step jobs + dm tasks + mount/umount + fs)',
      '× one hop',
    ],
    rows,
  );
}

function lifecycleSection(r: GuestResult, l: LifecycleResult): string[] {
  const cfg = r.udevSync ? r.config.lifecycleUdev : r.config.lifecycle;
  return [
    '',
    `### Layer lifecycle (${l.contenders.raw?.n ?? 0} per contender, dmsetup ${l.contenders.dmsetup?.n ?? 0}; batches of ${cfg?.batch ?? '?'}; ${formatBytes(l.sizeBytes)} ext4 layers)`,
    '',
    'Steps: create = addDevice(snapshot of an inactive image) / Driver.create / create_snap + set_transaction_id; ' +
      'mount = mkdir + mountDevice / Driver.get / activate + mkdir + mount; write = 4 KiB + fsync; ' +
      'unmount = unmountDevice / Driver.put / umount + rmdir + remove; delete = deleteDevice / Driver.remove / delete + set_transaction_id. ' +
      'raw C also writes the DeviceSet\'s metadata files (temporary file, fsync, rename, fsync of the directory); dmsetup writes none. ' +
      `DeviceSet and Driver options: ${l.options.join(' ')}.`,
    '',
    backlogSentence(backlogMeasured(l)),
    '',
    lifecycleTable(l),
    '',
    lifecycleTargets(r, l),
    '',
    `- ${DOCKER_LIFECYCLE}.`,
    '',
    'Thread hops of one lifecycle (async_hooks, an untimed lifecycle; raw C makes none, dmsetup starts 8 processes besides its write):',
    '',
    hopsTable(l),
    ...(l.hopsPerStep ? ['', 'Where the time goes, step by step:', '', whereTable(l)] : []),
  ];
}

function medianOf(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? (s[Math.floor((s.length - 1) / 2)] as number) : NaN;
}

/** A point's memory figure: the median over its opens. */
function openMemory(p: DsScalePoint, k: 'rss' | 'heapUsed' | 'external' | 'retained'): number {
  return medianOf(p.opens.map((o) => (k === 'retained' ? o.heapUsed - o.heapUsedBefore : o[k])));
}

/** The targets for the DeviceSet at scale. */
export const DS_HEAP_PER_DEVICE_LIMIT = 1024;
export const DS_LIFECYCLE_SCALE_LIMIT = 1.2;
/** Open time is called linear when the last size step's time per device is within this factor of the first's. */
export const DS_OPEN_LINEAR_FACTOR = 2;

/** Growth per registered device between the smallest and the largest size (bytes or ms). */
function perDevice(d: DsScaleResult, value: (p: DsScalePoint) => number): number {
  const first = d.points[0];
  const last = d.points[d.points.length - 1];
  if (!first || !last || last === first) return NaN;
  return (value(last) - value(first)) / (last.registered - first.registered);
}

/**
 * Open time per device over the smallest size's, at each larger size (ms): (median open at N
 * − median at the smallest) / (devices at N − at the smallest). Linear growth keeps it flat.
 */
function openPerDevice(d: DsScaleResult): number[] {
  const first = d.points[0];
  if (!first) return [];
  return d.points.slice(1).map((p) => (p.openMedianMs - first.openMedianMs) / (p.registered - first.registered));
}

/**
 * Whether the open time is linear in the devices: the time per device at the largest size
 * within DS_OPEN_LINEAR_FACTOR of that at the middle one. Not judged with two sizes, nor when
 * the middle size's difference from the smallest is within the spread of their opens (the
 * shared machine's noise would decide it).
 */
function openLinearity(d: DsScaleResult): { growth: number; judged: boolean; why: string } {
  const per = openPerDevice(d);
  if (per.length < 2) return { growth: NaN, judged: false, why: 'it needs three sizes' };
  const growth = ratio(per[per.length - 1], per[0]);
  const first = d.points[0] as DsScalePoint;
  const mid = d.points[1] as DsScalePoint;
  const spreadOf = (p: DsScalePoint) => Math.max(...p.opens.map((o) => o.ms)) - Math.min(...p.opens.map((o) => o.ms));
  const spread = Math.max(spreadOf(first), spreadOf(mid));
  const signal = mid.openMedianMs - first.openMedianMs;
  if (signal <= spread)
    return { growth, judged: false, why: `${mid.devices} devices add ${signal.toFixed(0)} ms, within the opens' spread of ${spread.toFixed(0)} ms` };
  return { growth, judged: true, why: '' };
}

function dsScaleTable(d: DsScaleResult): string {
  const first = d.points[0];
  const measured = d.points.some((p) => p.lifecycle.udevBacklog);
  const rows = d.points.map((p) => [
    String(p.devices),
    String(p.registered),
    `${(p.fill.totalMs / 1000).toFixed(1)} s (create_thin ${formatNs(p.fill.createThin.mean)} each, files ${(p.fill.filesMs / 1000).toFixed(1)} s)`,
    p.opens.map((o) => `${o.ms.toFixed(0)}`).join(', ') + ' ms',
    `${p.openMedianMs.toFixed(0)} ms`,
    formatBytes(openMemory(p, 'rss')),
    formatBytes(openMemory(p, 'heapUsed')),
    formatBytes(openMemory(p, 'retained')),
    formatBytes(openMemory(p, 'external')),
    cell(p.lifecycle),
    ...(measured ? [backlogCell(p.lifecycle.udevBacklog)] : []),
    `${formatRatio(ratio(p.lifecycle.mean, first?.lifecycle.mean))} / ${formatRatio(ratio(p.lifecycle.p50, first?.lifecycle.p50))}`,
  ]);
  return table(
    [
      'devices added',
      'registered (with base and image)',
      'fill (raw C create_thin + metadata files)',
      'DeviceSet.open, each',
      'open, median',
      'RSS after open (GC)',
      'heap used',
      'heap: after open − before',
      'external',
      'lifecycle (mean / p50 / p99)',
      ...(measured ? [`${backlogColumn()} (in the lifecycle)`] : []),
      'lifecycle / smallest (mean / p50)',
    ],
    rows,
  );
}

function dsScaleStepsTable(d: DsScaleResult): string {
  const first = d.points[0];
  const rows = d.points.map((p) => [
    String(p.devices),
    ...LIFECYCLE_STEPS.map((k) => `${cell(p.lifecycle.steps[k])} (${formatRatio(ratio(p.lifecycle.steps[k]?.mean, first?.lifecycle.steps[k]?.mean))})`),
  ]);
  return table(['devices added', ...LIFECYCLE_STEPS.map((k) => `${k} (mean / smallest)`)], rows);
}

function dsScaleTargets(d: DsScaleResult): string {
  const first = d.points[0];
  const last = d.points[d.points.length - 1];
  if (!first || !last || first === last) return '';
  const heap = perDevice(d, (p) => openMemory(p, 'heapUsed'));
  const rss = perDevice(d, (p) => openMemory(p, 'rss'));
  const ext = perDevice(d, (p) => openMemory(p, 'external'));
  const retained = perDevice(d, (p) => openMemory(p, 'retained'));
  const openMs = perDevice(d, (p) => p.openMedianMs);
  const per = openPerDevice(d);
  const lin = openLinearity(d);
  const m = ratio(last.lifecycle.mean, first.lifecycle.mean);
  const p50 = ratio(last.lifecycle.p50, first.lifecycle.p50);
  const rows = [
    [
      `heap per registered device under 1 KiB (heap used after open and GC, ${last.registered} against ${first.registered} registered)`,
      `${formatBytes(heap)} (after − before the open: ${formatBytes(retained)}; RSS ${formatBytes(rss)}, external ${formatBytes(ext)})`,
      yes(heap < DS_HEAP_PER_DEVICE_LIMIT),
      '',
    ],
    [
      `lifecycle with ${last.devices} devices within ${DS_LIFECYCLE_SCALE_LIMIT}x of ${first.devices}`,
      `${formatRatio(m)} mean, ${formatRatio(p50)} p50`,
      yes(m <= DS_LIFECYCLE_SCALE_LIMIT),
      yes(p50 <= DS_LIFECYCLE_SCALE_LIMIT),
    ],
    [
      `open time linear in the devices (time per device over the smallest size's: at the largest size within ${DS_OPEN_LINEAR_FACTOR}x of that at the middle one)`,
      `${formatNs(openMs * 1e6)} per device overall; at ${d.points
        .slice(1)
        .map((p, i) => `${p.devices}: ${formatNs((per[i] as number) * 1e6)}`)
        .join(', ')}` + (lin.judged ? ` (${formatRatio(lin.growth)})` : ` (not judged: ${lin.why})`),
      lin.judged ? yes(lin.growth <= DS_OPEN_LINEAR_FACTOR && lin.growth >= 1 / DS_OPEN_LINEAR_FACTOR) : '–',
      '',
    ],
  ];
  return table(['target', 'figure', 'met (mean)', 'met (p50)'], rows);
}

function dsScaleSection(r: GuestResult, d: DsScaleResult): string[] {
  const cfg = r.udevSync ? r.config.dsscaleUdev : r.config.dsscale;
  return [
    '',
    `### DeviceSet scale (${cfg?.opens ?? '?'} opens and ${cfg?.lifecycles ?? '?'} lifecycles per size; ${formatBytes(d.sizeBytes)} ext4 devices)`,
    '',
    'Per size a root of its own: opened fresh (pool, base, an image device), then that many devices registered in bulk ' +
      '(create_thin from the C program in the DeviceSet\'s pool, one metadata file each in Docker\'s format, next_device_id moved past them; ' +
      'the pool\'s transaction id untouched, so no open rolls back). Then one untimed open of each root, and the timed opens, the sizes in turn (one DeviceSet open at a time, each shut down ' +
      'before the next open, the pool made again from its loop files, as at a restart), with the memory after each open and a full GC' +
      `${d.gcExposed ? '' : ' (no --expose-gc: without the GC)'} (RSS, external: medians; heap before the open for the difference). ` +
      `Then all sizes open together and the DeviceSet lifecycle of the layer-lifecycle rows on each, ${cfg?.batch ?? '?'} at a time, the sizes in turn. ` +
      `Options: ${d.options.join(' ')}.`,
    '',
    ...(d.points.some((p) => p.lifecycle.udevBacklog)
      ? [backlogSentence(true, { others: false }) + ' udev also settles, untimed, before each timed open.']
      : [backlogSentence(false)]),
    '',
    dsScaleTable(d),
    '',
    'Lifecycle steps (mean / p50 / p99, and the mean against the smallest size):',
    '',
    dsScaleStepsTable(d),
    '',
    dsScaleTargets(d),
  ];
}

function dsConcurrencySection(r: GuestResult, d: DsConcurrencyResult): string[] {
  const serial = medianOf(d.serialMs);
  const at = medianOf(d.concurrentMs);
  const row = [
    String(d.parallel),
    `${(serial / 1000).toFixed(2)} s`,
    `${(at / 1000).toFixed(2)} s`,
    formatRatio(serial / at),
    ...(d.serialBacklogMs && d.concurrentBacklogMs
      ? [`${(medianOf(d.serialBacklogMs) / 1000).toFixed(2)} s / ${(medianOf(d.concurrentBacklogMs) / 1000).toFixed(2)} s`]
      : []),
    cell(d.serialItem),
    cell(d.concurrentItem),
    `${d.eldConcurrent.p50.toFixed(1)} / ${d.eldConcurrent.p99.toFixed(1)} / ${d.eldConcurrent.max.toFixed(0)} ms`,
    `${d.eldSerial.p50.toFixed(1)} / ${d.eldSerial.p99.toFixed(1)} / ${d.eldSerial.max.toFixed(0)} ms`,
  ];
  return [
    '',
    `### DeviceSet concurrency (${d.parallel} lifecycles, ${d.repetitions} repetition${d.repetitions === 1 ? '' : 's'}; medians of the wall times)`,
    '',
    `One DeviceSet (${d.options.join(' ')}); each lifecycle its own hash: addDevice (snapshot of an image device), mkdir + mountDevice, 4 KiB + fsync, unmountDevice, deleteDevice { sync: true }. ` +
      'All started at once (Promise.all) against the same number one after another; event-loop delay from perf_hooks.monitorEventLoopDelay (1 ms resolution, a fresh monitor per run; across repetitions the median p50 and p99, the largest max).' +
      (r.udevSync && d.parallel < r.config.dsconcurrency.parallel ? ` With udev ${d.parallel} lifecycles instead of ${r.config.dsconcurrency.parallel}: each waits for udev twice.` : ''),
    '',
    d.serialBacklogMs
      ? 'Udev backlog: after each run (outside its event-loop monitor) the time until none of its reaped udev cookies was pending (`dm.udevSettle`) is added to its wall time and shared out equally over its lifecycles; then an untimed `udevadm settle -t 60` (with udev only) before the next run.'
      : backlogSentence(false),
    '',
    table(
      [
        'lifecycles',
        'one after another',
        'all at once',
        'throughput vs serial',
        ...(d.serialBacklogMs ? ['udev backlog after the run, one after another / all at once (in the wall times)'] : []),
        'one lifecycle, serially',
        'one lifecycle, at once',
        'event-loop delay p50 / p99 / max, at once',
        '… serially',
      ],
      [row],
    ),
    '',
    table(
      ['target', 'figure', 'met'],
      [[`${d.parallel} lifecycles at once: event-loop delay p99 under 20 ms`, `${d.eldConcurrent.p99.toFixed(1)} ms`, yes(d.eldConcurrent.p99 < 20)]],
    ),
  ];
}

function referenceLines(r: GuestResult): string {
  const f = r.reference;
  if (!f) return '';
  return [
    `- Process start of /bin/true: ${formatNs(f.posixSpawnTrue.p50)} p50 with posix_spawn from the C program, ${formatNs(f.nodeSpawnSyncTrue.p50)} with node's spawnSync (node forks a large process).`,
    `- A libuv thread-pool round trip that is not the addon's: fs.promises.stat ${formatNs(f.statAsync.p50)} p50 against fs.statSync ${formatNs(f.statSync.p50)}, a hop of ${formatNs(f.statAsync.p50 - f.statSync.p50)}.`,
  ].join('\n');
}

function dmsetupSamples(r: GuestResult): number {
  return r.single.find((o) => o.op === 'info')?.contenders.dmsetup?.n ?? 0;
}

export function renderMarkdown(c: CombinedResult): string {
  const out: string[] = [];
  out.push(
    `# devmapper benchmark, ${c.mode} run, ${c.date.slice(0, 10)}`,
    '',
    `Host: ${c.host.release}, ${c.host.cpus} CPUs (shared with other work), node ${c.host.node}; device-mapper kernel: ${c.host.kernelUsed}. ` +
      `The whole command took ${(c.durationMs / 1000).toFixed(0)} s.`,
    '',
    c.host.kernelUsed === 'sandbox'
      ? 'Absolute times are the sandbox kernel\'s (user-mode Linux, where every system call and context switch is a ptrace round trip): they are not a real host\'s. The ratios, measured side by side in the same kernel and run, are the point.'
      : 'Measured in the host kernel.',
    '',
    'Cells: mean / p50 / p99 per operation. Ratios: of means / of p50s. Contenders interleaved batch by batch.',
  );
  for (const r of c.runs) {
    const cfg = r.udevSync ? r.config.singleUdev : r.config.single;
    out.push('', `## udev ${r.udev}`, '', kernelLine(r));
    if (r.single.length)
      out.push(
        '',
        `### Single operations (${cfg.samples} per operation and contender, dmsetup ${dmsetupSamples(r)}; delete three times as many; batches of ${cfg.batch})`,
        '',
        singleTable(r),
        '',
        '### Where the addon\'s time goes (p50)',
        '',
        breakdownTable(r),
      );
    if (r.reference) out.push('', referenceLines(r));
    if (r.single.length) out.push('', '### Targets', '', targetsTable(r));
    if (r.lifecycle) out.push(...lifecycleSection(r, r.lifecycle));
    if (r.dsscale) out.push(...dsScaleSection(r, r.dsscale));
    if (r.dsconcurrency) out.push(...dsConcurrencySection(r, r.dsconcurrency));
    if (r.peers) out.push(...peersSection(r, r.peers));
    if (r.snapshotter) out.push(...snapshotterSection(r, r.snapshotter));
    if (r.cli) out.push(...cliSection(r.cli));
    if (r.images) out.push(...imagesSection(r, r.images));
    if (r.scale.length) out.push('', `### Scale: idle thin devices in the pool (${r.config.scale.samples} per operation)`, '', scaleTable(r));
    if (r.concurrency.length) out.push('', '### Concurrency (dm level)', '', concurrencyTable(r));
    if (r.memory) out.push('', `### Memory (${r.memory.workload})`, '', memoryTable(r));
  }
  return `${out.join('\n')}\n`;
}

export function renderCharts(c: CombinedResult): { file: string; svg: string }[] {
  const charts: { file: string; svg: string }[] = [];
  for (const r of c.runs) {
    const contenders: ContenderName[] = ['raw', 'rawHop', 'dm', 'dmSync', 'dmsetup'];
    const l = r.lifecycle;
    if (l)
      charts.push({
        file: `lifecycle-udev-${r.udev}.svg`,
        svg: barChartSvg({
          title: `Mean time of a layer's lifecycle and of its steps, udev ${r.udev} (log scale)`,
          subtitle:
            `${r.kernel.sandbox ? 'sandbox kernel' : 'host kernel'} ${r.kernel.release}, ${c.date.slice(0, 10)}; absolute times are not a real host's, the ratios are the point` +
            (backlogMeasured(l) ? "; ours' whole lifecycle includes the udev backlog" : ''),
          groups: ['whole lifecycle', ...LIFECYCLE_STEPS],
          series: LIFECYCLE_CONTENDERS.map((k) => ({
            name: LIFECYCLE_LABEL[k],
            color: LIFECYCLE_COLOR[k],
            values: [l.contenders[k]?.mean ?? NaN, ...LIFECYCLE_STEPS.map((s) => l.contenders[k]?.steps[s]?.mean ?? NaN)],
          })),
          yLabel: 'mean',
        }),
      });
    const d = r.dsscale;
    if (d?.points.length)
      charts.push({
        file: `dsscale-udev-${r.udev}.svg`,
        svg: barChartSvg({
          title: `DeviceSet.open and a layer's lifecycle against registered devices, udev ${r.udev} (log scale)`,
          subtitle: `${r.kernel.sandbox ? 'sandbox kernel' : 'host kernel'} ${r.kernel.release}, ${c.date.slice(0, 10)}; open: median of ${d.points[0]?.opens.length ?? 0}, lifecycle: mean of ${d.points[0]?.lifecycle.n ?? 0}`,
          groups: d.points.map((p) => `${p.devices} devices`),
          series: [
            { name: 'DeviceSet.open', color: '#4c72b0', values: d.points.map((p) => p.openMedianMs * 1e6) },
            { name: 'lifecycle', color: '#dd8452', values: d.points.map((p) => p.lifecycle.mean) },
          ],
          yLabel: 'time',
        }),
      });
    for (const x of [
      r.peers ? peersChart(r, r.peers, c.date) : null,
      r.snapshotter ? snapshotterChart(r, r.snapshotter, c.date) : null,
      r.cli ? cliChart(r, r.cli, c.date) : null,
    ])
      if (x) charts.push({ file: x.file, svg: barChartSvg(x.chart) });
    if (!r.single.length) continue;
    charts.push({
      file: `latency-udev-${r.udev}.svg`,
      svg: barChartSvg({
        title: `Mean latency per operation, udev ${r.udev} (log scale)`,
        subtitle: `${r.kernel.sandbox ? 'sandbox kernel' : 'host kernel'} ${r.kernel.release}, ${c.date.slice(0, 10)}; absolute times are not a real host's, the ratios are the point`,
        groups: r.single.map((o) => o.op),
        series: contenders.map((k) => ({ name: LABEL[k], color: COLOR[k], values: r.single.map((o) => o.contenders[k]?.mean ?? NaN) })),
        yLabel: 'mean per operation',
      }),
    });
    if (r.scale.length) {
      const palette = ['#9ecae1', '#4292c6', '#08519c', '#fdae6b', '#f16913', '#a63603'];
      const series = (['raw', 'dm'] as ContenderName[]).flatMap((k, ki) =>
        r.scale.map((p, pi) => ({
          name: `${LABEL[k]} @${p.devices}`,
          color: palette[(ki * 3 + pi) % palette.length] as string,
          values: p.ops.map((o) => o.contenders[k]?.mean ?? NaN),
        })),
      );
      charts.push({
        file: `scale-udev-${r.udev}.svg`,
        svg: barChartSvg({
          title: `Mean latency per operation against idle thin devices in the pool, udev ${r.udev}`,
          subtitle: `${r.kernel.sandbox ? 'sandbox kernel' : 'host kernel'} ${r.kernel.release}, ${c.date.slice(0, 10)}`,
          groups: r.scale[0]?.ops.map((o) => o.op) ?? [],
          series,
          yLabel: 'mean per operation',
        }),
      });
    }
  }
  return charts;
}

/** Writes STEM.json, STEM.md and the charts (prefixed STEM- unless STEM is 'results'). */
export function writeReport(outDir: string, c: CombinedResult, stem = 'results'): string[] {
  const files: string[] = [];
  const json = join(outDir, `${stem}.json`);
  // Indented, but each array of samples on one line.
  const text = JSON.stringify(c, null, 1).replace(/\[\s*(-?[\d.e+]+(?:,\s*-?[\d.e+]+)*)\s*\]/g, (_, list: string) => `[${list.replace(/\s+/g, '')}]`);
  writeFileSync(json, `${text}\n`);
  files.push(json);
  const md = join(outDir, `${stem}.md`);
  writeFileSync(md, renderMarkdown(c));
  files.push(md);
  for (const chart of renderCharts(c)) {
    const f = join(outDir, stem === 'results' || chart.file.startsWith(`${stem}-`) ? chart.file : `${stem}-${chart.file}`);
    writeFileSync(f, chart.svg);
    files.push(f);
  }
  return files;
}
