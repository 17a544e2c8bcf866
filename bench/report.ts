/**
 * The run's three artifacts from the guests' results: results.json (everything, every
 * sample), results.md (the tables) and the SVG charts (latency per operation and contender;
 * latency per operation and pool size).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatBytes, formatNs, formatRatio, ratio } from './stats';
import { barChartSvg } from './svg';
import { type ContenderName, type GuestResult, type OpName, type OpResult, type OpStats } from './types';

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

function cell(s: OpStats | undefined): string {
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
    rows.push([`${op}: dm / raw < ${limit}x (issue 5)`, `${formatRatio(m)} mean, ${formatRatio(p)} p50`, yes(m < limit), yes(p < limit)]);
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

function referenceLines(r: GuestResult): string {
  const f = r.reference;
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
    out.push(
      '',
      `## udev ${r.udev}`,
      '',
      kernelLine(r),
      '',
      `### Single operations (${cfg.samples} per operation and contender, dmsetup ${dmsetupSamples(r)}; delete three times as many; batches of ${cfg.batch})`,
      '',
      singleTable(r),
      '',
      '### Where the addon\'s time goes (p50)',
      '',
      breakdownTable(r),
      '',
      referenceLines(r),
      '',
      '### Targets',
      '',
      targetsTable(r),
    );
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

export function writeReport(outDir: string, c: CombinedResult): string[] {
  const files: string[] = [];
  const json = join(outDir, 'results.json');
  // Indented, but each array of samples on one line.
  const text = JSON.stringify(c, null, 1).replace(/\[\s*(-?[\d.e+]+(?:,\s*-?[\d.e+]+)*)\s*\]/g, (_, list: string) => `[${list.replace(/\s+/g, '')}]`);
  writeFileSync(json, `${text}\n`);
  files.push(json);
  const md = join(outDir, 'results.md');
  writeFileSync(md, renderMarkdown(c));
  files.push(md);
  for (const chart of renderCharts(c)) {
    const f = join(outDir, chart.file);
    writeFileSync(f, chart.svg);
    files.push(f);
  }
  return files;
}
