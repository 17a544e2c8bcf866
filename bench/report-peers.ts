/** The peers and cli sections' tables, targets and charts (report.ts calls these). */
import { backlogCell, backlogColumn, backlogSentence } from './report-udev';
import { formatNs, formatRatio, ratio, type Stats } from './stats';
import { type BarChart } from './svg';
import {
  type CliCostResult,
  type GuestResult,
  PEER_STEP_NAMES,
  PEER_STEPS,
  type PeerContenderName,
  type PeerSetting,
  type PeersResult,
  type PeerStream,
} from './types';

const LABEL: Record<PeerContenderName, string> = {
  driver: 'Driver (ours)',
  deviceSet: 'DeviceSet (ours, reference)',
  docker: "Docker's driver (dockerdm)",
  containerd: "containerd's snapshotter (ctrdbench)",
};

function table(head: string[], rows: string[][]): string {
  const align = head.map((_, i) => (i === 0 ? ':--' : '--:'));
  return [head, align, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

function cell(s: Stats | undefined): string {
  if (!s || !s.n) return '–';
  return `${formatNs(s.mean)} / ${formatNs(s.p50)} / ${formatNs(s.p99)}`;
}

function met(ok: boolean, value: number): string {
  if (!Number.isFinite(value)) return '–';
  return ok ? 'met' : '**missed**';
}

function stream(p: PeersResult, c: PeerContenderName, s: PeerSetting): PeerStream | undefined {
  return p.streams.find((x) => x.contender === c && x.setting === s);
}

/** create + get and put + remove, means: the same kernel work whichever step holds the activation and deactivation. */
function pairs(s: PeerStream | undefined): { up: number; down: number } {
  if (!s) return { up: NaN, down: NaN };
  return { up: s.steps.create.mean + s.steps.get.mean, down: s.steps.put.mean + s.steps.remove.mean };
}

function ratios(a: Stats | undefined, b: Stats | undefined): string {
  return `${formatRatio(ratio(a?.mean, b?.mean))} / ${formatRatio(ratio(a?.p50, b?.p50))} / ${formatRatio(ratio(a?.p99, b?.p99))}`;
}

const ORDER: PeerContenderName[] = ['driver', 'deviceSet', 'docker', 'containerd'];

function timesTable(p: PeersResult, setting: PeerSetting): string {
  const measured = p.streams.some((s) => s.udevBacklog);
  const rows = ORDER.map((c) => {
    const s = stream(p, c, setting);
    const pr = pairs(s);
    return [
      `${LABEL[c]}${s?.sameAs ? ` (= its ${s.sameAs})` : ''}`,
      cell(s?.lifecycle),
      ...(measured ? [backlogCell(s?.udevBacklog)] : []),
      ...PEER_STEPS.map((k) => cell(s?.steps[k])),
      formatNs(pr.up),
      formatNs(pr.down),
    ];
  });
  return table(['contender', 'whole lifecycle', ...(measured ? [backlogColumn()] : []), ...PEER_STEPS, 'create + get (means)', 'put + remove (means)'], rows);
}

function ratioTable(p: PeersResult, setting: PeerSetting): string {
  const ours = stream(p, 'driver', setting);
  const op = pairs(ours);
  const rows = (['docker', 'containerd', 'deviceSet'] as const).map((c) => {
    const s = stream(p, c, setting);
    const pr = pairs(s);
    return [
      `${LABEL[c]} / Driver`,
      ratios(s?.lifecycle, ours?.lifecycle),
      ...PEER_STEPS.map((k) => ratios(s?.steps[k], ours?.steps[k])),
      formatRatio(ratio(pr.up, op.up)),
      formatRatio(ratio(pr.down, op.down)),
    ];
  });
  return table(['peer time / our time (above 1: ours faster)', 'whole lifecycle', ...PEER_STEPS, 'create + get', 'put + remove'], rows);
}

/** Where the time is: per step (and the udev backlog), the Driver's mean against each peer's. */
function whereTable(p: PeersResult, setting: PeerSetting): string {
  const ours = stream(p, 'driver', setting);
  const peers = (['docker', 'containerd'] as const).map((c) => stream(p, c, setting));
  const backlog = ours?.udevBacklog ? ['udev backlog'] : [];
  const rows = [...PEER_STEPS, ...backlog, 'lifecycle'].map((k) => {
    const get = (s: PeerStream | undefined) =>
      (k === 'lifecycle' ? s?.lifecycle.mean : k === 'udev backlog' ? s?.udevBacklog?.mean : s?.steps[k as (typeof PEER_STEPS)[number]].mean) ?? NaN;
    const o = get(ours);
    return [k, formatNs(o), `${ours ? ((100 * o) / ours.lifecycle.mean).toFixed(0) : '–'}%`, ...peers.flatMap((s) => [formatNs(get(s)), formatNs(o - get(s))])];
  });
  return table(['step (means)', 'Driver', 'share of its lifecycle', 'Docker', 'Driver − Docker', 'containerd', 'Driver − containerd'], rows);
}

function targetRows(r: GuestResult, p: PeersResult): string[][] {
  const rows: string[][] = [];
  const factor = r.udev === 'off' ? 3 : 5;
  const one = (setting: PeerSetting, c: 'docker' | 'containerd', at: number, label: string) => {
    const ours = stream(p, 'driver', setting);
    const peer = stream(p, c, setting);
    const m = ratio(peer?.lifecycle.mean, ours?.lifecycle.mean);
    const q = ratio(peer?.lifecycle.p50, ours?.lifecycle.p50);
    rows.push([label, `${formatRatio(m)} mean, ${formatRatio(q)} p50 (whole lifecycles${ours?.udevBacklog ? ', the udev backlog in ours' : ''})`, met(m >= at, m), met(q >= at, q)]);
  };
  for (const c of ['docker', 'containerd'] as const)
    one('defaults', c, factor, `Driver at least ${factor}x faster than ${LABEL[c]}, each with its defaults, udev ${r.udev}`);
  for (const c of ['docker', 'containerd'] as const) one('equal', c, 1.5, `Driver at least 1.5x faster than ${LABEL[c]}, equal settings, udev ${r.udev}`);
  return rows;
}

function medianOf(a: number[]): number {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor((s.length - 1) / 2)] as number;
}

export function peersSection(r: GuestResult, p: PeersResult): string[] {
  if (p.skipped) return ['', '### Peers', '', `Skipped: ${p.skipped} (looked in ${p.peersDir}).`];
  const n = p.rounds * p.batch;
  const out: string[] = [
    '',
    `### Peers: Docker's driver and containerd's snapshotter against the Driver (${n} lifecycles per contender and setting: ${p.rounds} rounds, one batch of ${p.batch} each, rotating)`,
    '',
    `Setup: ${p.setup}. The lifecycle: create a snapshot of the image layer, get (mount), write 26 bytes (no fsync), put (unmount), remove. ` +
      `containerd's steps are ${PEER_STEPS.map((k) => PEER_STEP_NAMES.containerd[k]).join(', ')}, shown under ours: its Prepare also activates the device (our get does) and its Remove deactivates it (our put does), ` +
      'so only the whole lifecycle and the pairs create + get and put + remove are like for like with it. Cells: mean / p50 / p99.',
    '',
    backlogSentence(p.streams.some((s) => s.udevBacklog)),
    '',
    'Options: ' +
      p.streams
        .filter((s) => !s.sameAs && s.contender !== 'deviceSet')
        .map((s) => `${s.contender} ${s.setting}: \`${s.options.join(' ')}\``)
        .join('; ') +
      ' (the DeviceSet has the Driver\'s). containerd\'s defaults (discard_blocks and async_remove off) are the equal settings: one measurement, shown under both.',
  ];
  for (const setting of ['defaults', 'equal'] as const) {
    out.push(
      '',
      `#### ${setting === 'defaults' ? "Each contender's own defaults" : 'Equal settings: no discard, no deferred removal or deletion'}, udev ${r.udev}`,
      '',
      timesTable(p, setting),
      '',
      ratioTable(p, setting),
      '',
      whereTable(p, setting),
    );
  }
  out.push('', '#### Targets (benchmark output, not pass/fail)', '', table(['target', 'figure', 'mean', 'p50'], targetRows(r, p)));
  const procs = p.streams.filter((s) => s.processes && !s.sameAs);
  if (procs.length)
    out.push(
      '',
      'Outside the timed lifecycles, per peer process (one per batch), medians: ' +
        procs
          .map((s) => {
            const q = s.processes!;
            const base = q.baseMs.length ? `, base snapshot ${medianOf(q.baseMs).toFixed(0)} ms` : '';
            return `${s.contender} ${s.setting}: Init ${medianOf(q.initMs).toFixed(0)} ms${base}, spawn to exit ${medianOf(q.wallMs).toFixed(0)} ms`;
          })
          .join('; ') +
        '.',
    );
  return out;
}

export function peersChart(r: GuestResult, p: PeersResult, date: string): { file: string; chart: BarChart } | null {
  if (p.skipped || !p.streams.length) return null;
  const colors: Record<string, string> = {
    'driver defaults': '#dd8452',
    'driver equal': '#f2b27f',
    'deviceSet defaults': '#55a868',
    'deviceSet equal': '#a1d99b',
    'docker defaults': '#4c72b0',
    'docker equal': '#9ecae1',
    'containerd defaults': '#c44e52',
  };
  const shown = p.streams.filter((s) => !s.sameAs);
  return {
    file: `peers-udev-${r.udev}.svg`,
    chart: {
      title: `A layer's lifecycle against Docker's driver and containerd's snapshotter, udev ${r.udev} (means, log scale)`,
      subtitle:
        `${r.kernel.sandbox ? 'sandbox kernel' : 'host kernel'} ${r.kernel.release}, ${date.slice(0, 10)}; ${p.rounds * p.batch} lifecycles each; containerd: prepare, mount, write, unmount, remove; its defaults = equal settings` +
        (p.streams.some((s) => s.udevBacklog) ? "; ours' whole lifecycle includes the udev backlog" : ''),
      groups: ['whole lifecycle', ...PEER_STEPS],
      series: shown.map((s) => ({
        name: `${s.contender} ${s.setting}`,
        color: colors[`${s.contender} ${s.setting}`] ?? '#999',
        values: [s.lifecycle.mean, ...PEER_STEPS.map((k) => s.steps[k].mean)],
      })),
      yLabel: 'mean',
    },
  };
}

export function cliSection(c: CliCostResult): string[] {
  const get = (name: string) => c.commands.find((x) => x.name === name)?.stats;
  const node = get('node -e 0');
  const docker = get('dockerdm status');
  const rows = c.commands.map((x) => [
    `\`${x.name}\``,
    String(x.stats.n),
    cell(x.stats),
    `${formatRatio(ratio(x.stats.mean, node?.mean))} / ${formatRatio(ratio(x.stats.p50, node?.p50))}`,
    `${formatRatio(ratio(x.stats.mean, docker?.mean))} / ${formatRatio(ratio(x.stats.p50, docker?.p50))}`,
    x.modules ? `${x.modules.modules} (${x.modules.own} the package's${x.modules.addon ? ', the addon among them' : ''})` : '–',
  ]);
  const version = get('devmapper --version');
  const status = get('devmapper pool status');
  const vm = ratio(version?.mean, node?.mean);
  const vp = ratio(version?.p50, node?.p50);
  const sm = ratio(status?.mean, docker?.mean);
  const sp = ratio(status?.p50, docker?.p50);
  const out = [
    '',
    `### The command line's own cost: spawn to exit (${c.runs} runs each, interleaved, posix_spawn from the C program)`,
    '',
    '`devmapper` is `node dist/cli/main.js`; `pool status` and `dockerdm status` on existing roots of the peers section\'s pool (options given on every call). Cells: mean / p50 / p99.',
    '',
    table(['command', 'runs', 'spawn to exit', '/ node -e 0 (mean / p50)', '/ dockerdm status (mean / p50)', 'modules loaded (one more run)'], rows),
    '',
    table(
      ['target', 'figure', 'mean', 'p50'],
      [
        ['`devmapper --version` within 1.3x of `node -e 0`', `${formatRatio(vm)} mean, ${formatRatio(vp)} p50`, met(vm <= 1.3, vm), met(vp <= 1.3, vp)],
        ['`devmapper pool status` no slower than `dockerdm status`', `${formatRatio(sm)} mean, ${formatRatio(sp)} p50`, met(sm <= 1, sm), met(sp <= 1, sp)],
      ],
    ),
  ];
  for (const s of c.skipped) out.push('', `Skipped: ${s}.`);
  return out;
}

export function cliChart(r: GuestResult, c: CliCostResult, date: string): { file: string; chart: BarChart } | null {
  if (!c.commands.length) return null;
  return {
    file: `cli-udev-${r.udev}.svg`,
    chart: {
      title: `Spawn to exit of the command line against node -e 0 and dockerdm status, udev ${r.udev} (log scale)`,
      subtitle: `${r.kernel.sandbox ? 'sandbox kernel' : 'host kernel'} ${r.kernel.release}, ${date.slice(0, 10)}; ${c.runs} runs each`,
      groups: c.commands.map((x) => x.name),
      series: [
        { name: 'p50', color: '#4c72b0', values: c.commands.map((x) => x.stats.p50) },
        { name: 'mean', color: '#dd8452', values: c.commands.map((x) => x.stats.mean) },
      ],
      yLabel: 'spawn to exit',
    },
  };
}
