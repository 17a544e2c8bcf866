/** The images section of results.md: time to a ready root disk, ours against containerd's snapshotter. */
import { backlogCell, backlogColumn, backlogSentence } from './report-udev';
import { formatNs } from './stats';
import type { GuestResult, ImagesBenchResult, ImagesContender } from './types';
import { IMAGES_CONTENDERS } from './types';

const LABEL: Record<ImagesContender, string> = {
  library: 'images.rootDisk (ours, in-process)',
  served: 'our Snapshotter over gRPC',
  containerd: "containerd's devmapper snapshotter over gRPC (devmapper-proxy)",
};

function table(head: string[], rows: string[][]): string {
  const align = head.map((_, i) => (i === 0 ? ':--' : '--:'));
  return [head, align, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

export function imagesSection(r: GuestResult, x: ImagesBenchResult): string[] {
  // Older results have no backlog: no column for it.
  const measured = x.levels.some((l) => l.udevBacklog);
  const rows: string[][] = [];
  for (const c of IMAGES_CONTENDERS) {
    if (!x.levels.some((l) => l.contenders[c]?.n)) continue;
    rows.push([
      LABEL[c],
      ...x.levels.flatMap((l) => {
        const s = l.contenders[c];
        return [s?.n ? `${formatNs(s.p50)} / ${formatNs(s.p99)} (n=${s.n})` : '–', ...(measured ? [backlogCell(l.udevBacklog?.[c])] : [])];
      }),
    ]);
  }
  const ratio: string[] = ['containerd p50 / ours over gRPC p50'];
  for (const l of x.levels) {
    const a = l.contenders.containerd?.p50;
    const b = l.contenders.served?.p50;
    ratio.push(a && b ? `${(a / b).toFixed(1)}x` : '–', ...(measured ? [''] : []));
  }
  const head = x.levels.flatMap((l) => [`${l.concurrency} at once`, ...(measured ? [`${backlogColumn('call')}, ${l.concurrency} at once (mean / p50 / p99)`] : [])]);
  return [
    '',
    `### Images: time to a ready root disk from an imported image, udev ${r.udev}`,
    '',
    `Setup: ${x.setup}. One call: a snapshot of the image's top layer made and its device activated (ours: Snapshotter.prepare through images.rootDisk or gRPC Prepare; containerd: gRPC Prepare, which creates and activates). ` +
      'With N calls started at once, each call\'s own latency; removal after each round not timed. Cells: p50 / p99.' +
      (x.skipped ? ` containerd's side skipped: ${x.skipped}.` : ''),
    '',
    backlogSentence(measured, { unit: 'call' }) + (measured ? ' A batch here is one round of N calls at once; the removals after it are not timed, and their udev work is settled untimed.' : ''),
    '',
    table(['contender', ...head], [...rows, ...(x.skipped ? [] : [ratio])]),
  ];
}
