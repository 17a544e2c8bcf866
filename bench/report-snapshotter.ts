/** The snapshotter section's tables and chart (report.ts calls these). */
import { backlogCell, backlogColumn, backlogSentence } from './report-udev';
import { formatNs, formatRatio, ratio, type Stats } from './stats';
import { type BarChart } from './svg';
import { type GuestResult, PEER_SETTINGS, type PeerSetting, SNAP_STEPS, type SnapBenchResult, type SnapContenderName, type SnapStream } from './types';

const LABEL: Record<SnapContenderName, string> = {
  snapshotter: 'Snapshotter (ours), in process',
  snapshotterGrpc: 'Snapshotter (ours) over gRPC',
  containerd: "containerd's snapshotter, in process",
  containerdGrpc: "containerd's snapshotter over gRPC",
};

const ORDER: SnapContenderName[] = ['snapshotter', 'snapshotterGrpc', 'containerd', 'containerdGrpc'];

/** The ratios shown: the numerator's time over the denominator's. */
export const SNAP_RATIOS: { top: SnapContenderName; bottom: SnapContenderName; label: string }[] = [
  { top: 'containerd', bottom: 'snapshotter', label: "containerd in process / ours in process" },
  { top: 'containerdGrpc', bottom: 'snapshotterGrpc', label: 'containerd over gRPC / ours over gRPC' },
  { top: 'snapshotterGrpc', bottom: 'snapshotter', label: 'ours: over gRPC / in process' },
  { top: 'containerdGrpc', bottom: 'containerd', label: "containerd's: over gRPC / in process" },
];

const GROUPS = ['lifecycle', ...SNAP_STEPS] as const;

function table(head: string[], rows: string[][]): string {
  const align = head.map((_, i) => (i === 0 ? ':--' : '--:'));
  return [head, align, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

function cell(s: Stats | undefined): string {
  if (!s || !s.n) return '–';
  return `${formatNs(s.mean)} / ${formatNs(s.p50)} / ${formatNs(s.p99)}`;
}

function ratios(a: Stats | undefined, b: Stats | undefined): string {
  return `${formatRatio(ratio(a?.mean, b?.mean))} / ${formatRatio(ratio(a?.p50, b?.p50))} / ${formatRatio(ratio(a?.p99, b?.p99))}`;
}

export function snapStream(p: SnapBenchResult, c: SnapContenderName, s: PeerSetting): SnapStream | undefined {
  return p.streams.find((x) => x.contender === c && x.setting === s);
}

function statsOf(s: SnapStream | undefined, k: (typeof GROUPS)[number]): Stats | undefined {
  return k === 'lifecycle' ? s?.lifecycle : s?.steps[k];
}

function timesTable(p: SnapBenchResult, setting: PeerSetting): string {
  const measured = p.streams.some((s) => s.udevBacklog);
  const rows = ORDER.map((c) => {
    const s = snapStream(p, c, setting);
    const [whole, ...steps] = GROUPS.map((k) => cell(statsOf(s, k)));
    return [`${LABEL[c]}${s?.sameAs ? ` (= its ${s.sameAs})` : ''}`, whole as string, ...(measured ? [backlogCell(s?.udevBacklog)] : []), ...steps];
  });
  return table(['contender', 'whole lifecycle', ...(measured ? [backlogColumn()] : []), ...SNAP_STEPS], rows);
}

/** Per lifecycle and per step: mean / p50 / p99 ratios of the pairs in SNAP_RATIOS. */
export function snapRatioTable(p: SnapBenchResult, setting: PeerSetting): string {
  const rows = SNAP_RATIOS.map((r) => {
    const top = snapStream(p, r.top, setting);
    const bottom = snapStream(p, r.bottom, setting);
    return [r.label, ...GROUPS.map((k) => ratios(statsOf(top, k), statsOf(bottom, k)))];
  });
  return table(['time / time (above 1: the second faster)', 'whole lifecycle', ...SNAP_STEPS], rows);
}

/** Where each contender's time is: step means (and the udev backlog's) and their share of its lifecycle. */
function whereTable(p: SnapBenchResult, setting: PeerSetting): string {
  const streams = ORDER.map((c) => snapStream(p, c, setting));
  const backlog = streams.some((s) => s?.udevBacklog) ? (['udev backlog'] as const) : [];
  const mean = (s: SnapStream | undefined, k: (typeof GROUPS)[number] | 'udev backlog') => (k === 'udev backlog' ? s?.udevBacklog : statsOf(s, k))?.mean ?? NaN;
  const rows = [...GROUPS, ...backlog].map((k) => [
    k,
    ...streams.map((s) => {
      const v = mean(s, k);
      const share = s && k !== 'lifecycle' && Number.isFinite(v) ? ` (${((100 * v) / s.lifecycle.mean).toFixed(0)}%)` : '';
      return `${formatNs(v)}${share}`;
    }),
    formatNs(mean(streams[1], k) - mean(streams[0], k)),
    formatNs(mean(streams[3], k) - mean(streams[2], k)),
  ]);
  return table(['step (means, share of the lifecycle)', ...ORDER.map((c) => LABEL[c]), 'ours: gRPC − in process', "containerd's: gRPC − in process"], rows);
}

function medianOf(a: number[]): number {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor((s.length - 1) / 2)] as number;
}

function outsideLine(p: SnapBenchResult): string {
  const parts = p.streams
    .filter((s) => !s.sameAs)
    .map((s) => {
      const q = s.processes;
      const bits: string[] = [];
      if (s.serverStartMs !== undefined) bits.push(`server start to first answer ${s.serverStartMs.toFixed(0)} ms`);
      if (q?.initMs.length) bits.push(`${s.contender === 'snapshotter' ? 'Snapshotter.open' : 'Init'} ${medianOf(q.initMs).toFixed(0)} ms`);
      if (q?.baseMs.length) bits.push(`base snapshot ${medianOf(q.baseMs).toFixed(0)} ms`);
      if (q?.wallMs.length) bits.push(`ctrdbench spawn to exit ${medianOf(q.wallMs).toFixed(0)} ms`);
      return `${s.contender} ${s.setting}: ${bits.join(', ')}`;
    });
  return `Outside the timed lifecycles (medians per ctrdbench process, one per batch; once for the servers and the in-process Snapshotter): ${parts.join('; ')}.`;
}

export function snapshotterSection(r: GuestResult, p: SnapBenchResult): string[] {
  if (p.skipped) return ['', "### The Snapshotter's path", '', `Skipped: ${p.skipped} (looked in ${p.peersDir}).`];
  const n = p.rounds * p.batch;
  const out: string[] = [
    '',
    `### The Snapshotter's path against containerd's devmapper snapshotter, in process and over gRPC (${n} lifecycles per contender and setting: ${p.rounds} rounds, one batch of ${p.batch} each, rotating)`,
    '',
    `Setup: ${p.setup}. The lifecycle: Prepare(key, base), mount the returned mount, write 26 bytes (no fsync), unmount, Remove(key). ` +
      'In process: our Snapshotter called from this node process (mount(2) and umount2 through lib/sys), containerd\'s in ctrdbench\'s Go process. ' +
      'Over gRPC: `ctrdbench --socket` (containerd\'s proxy client) against `devmapper snapshotter serve` and against `devmapper-proxy` (containerd\'s snapshotter served); ' +
      'the client, its mount and its write are the same program for both. Cells: mean / p50 / p99.',
    '',
    backlogSentence(p.streams.some((s) => s.udevBacklog), {
      served:
        "for ours over gRPC the server's own settle, asked for with SIGUSR2 once ctrdbench has exited, so udev's work during that process's exit is not counted; " +
        "the served contenders' ctrdbench runs with --keep, so that the removal of its base snapshot after the lifecycles is not counted either, while its commit, before them, can be in part",
    }),
    '',
    'Options: ' +
      p.streams
        .filter((s) => !s.sameAs)
        .map((s) => `${s.contender} ${s.setting}: \`${s.options.join(' ')}\``)
        .join('; ') +
      ". Our defaults discard a snapshot's blocks before deleting its device and remove synchronously; containerd's defaults discard nothing (`discard_blocks` off, `async_remove` off). " +
      "The equal settings are ours: containerd with `--discard`; ours are one measurement, shown under both.",
  ];
  for (const setting of PEER_SETTINGS.filter((x) => p.streams.some((s) => s.setting === x))) {
    out.push(
      '',
      `#### ${setting === 'defaults' ? "Each contender's own defaults" : "Equal settings (ours): discard before delete, synchronous remove"}, udev ${r.udev}`,
      '',
      timesTable(p, setting),
      '',
      snapRatioTable(p, setting),
      '',
      whereTable(p, setting),
    );
  }
  out.push('', outsideLine(p));
  return out;
}

const COLORS: Record<string, string> = {
  'snapshotter defaults': '#dd8452',
  'snapshotterGrpc defaults': '#f2b27f',
  'containerd defaults': '#c44e52',
  'containerd equal': '#f4a6a8',
  'containerdGrpc defaults': '#4c72b0',
  'containerdGrpc equal': '#9ecae1',
};

export function snapshotterChart(r: GuestResult, p: SnapBenchResult, date: string): { file: string; chart: BarChart } | null {
  if (p.skipped || !p.streams.length) return null;
  const shown = p.streams.filter((s) => !s.sameAs);
  return {
    file: `snapshotter-udev-${r.udev}.svg`,
    chart: {
      title: `A snapshot's lifecycle: our Snapshotter against containerd's, in process and over gRPC, udev ${r.udev} (means, log scale)`,
      subtitle:
        `${r.kernel.sandbox ? 'sandbox kernel' : 'host kernel'} ${r.kernel.release}, ${date.slice(0, 10)}; ${p.rounds * p.batch} lifecycles each; containerd equal = with --discard, as ours` +
        (p.streams.some((s) => s.udevBacklog) ? "; ours' whole lifecycle includes the udev backlog" : ''),
      groups: ['whole lifecycle', ...SNAP_STEPS],
      series: shown.map((s) => ({
        name: `${s.contender} ${s.setting}`,
        color: COLORS[`${s.contender} ${s.setting}`] ?? '#999',
        values: [s.lifecycle.mean, ...SNAP_STEPS.map((k) => s.steps[k].mean)],
      })),
      yLabel: 'mean',
    },
  };
}
