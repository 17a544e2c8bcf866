/** The images section of results.md: time to a ready root disk, ours against containerd's snapshotter. */
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
  const rows: string[][] = [];
  for (const c of IMAGES_CONTENDERS) {
    if (!x.levels.some((l) => l.contenders[c]?.n)) continue;
    rows.push([LABEL[c], ...x.levels.map((l) => {
      const s = l.contenders[c];
      return s?.n ? `${formatNs(s.p50)} / ${formatNs(s.p99)} (n=${s.n})` : '–';
    })]);
  }
  const ratio: string[] = ['containerd p50 / ours over gRPC p50'];
  for (const l of x.levels) {
    const a = l.contenders.containerd?.p50;
    const b = l.contenders.served?.p50;
    ratio.push(a && b ? `${(a / b).toFixed(1)}x` : '–');
  }
  return [
    '',
    `### Images: time to a ready root disk from an imported image, udev ${r.udev}`,
    '',
    `Setup: ${x.setup}. One call: a snapshot of the image's top layer made and its device activated (ours: Snapshotter.prepare through images.rootDisk or gRPC Prepare; containerd: gRPC Prepare, which creates and activates). ` +
      'With N calls started at once, each call\'s own latency; removal after each round not timed. Cells: p50 / p99.' +
      (x.skipped ? ` containerd's side skipped: ${x.skipped}.` : ''),
    '',
    table(['contender', ...x.levels.map((l) => `${l.concurrency} at once`)], [...rows, ...(x.skipped ? [] : [ratio])]),
  ];
}
