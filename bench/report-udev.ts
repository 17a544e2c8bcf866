/** The udev backlog in the reports (udev-backlog.ts measures it): its column and the sentence saying how it is counted. */
import { formatNs, type Stats } from './stats';

/** The column's header, per lifecycle (or per call). */
export function backlogColumn(unit: 'lifecycle' | 'call' = 'lifecycle'): string {
  return `udev backlog, per ${unit}`;
}

/** mean / p50 / p99 of the backlog's shares; '–' where it was not measured (contenders that wait for udev in their calls, older results). */
export function backlogCell(s: Stats | undefined): string {
  if (!s || !s.n) return '–';
  return `${formatNs(s.mean)} / ${formatNs(s.p50)} / ${formatNs(s.p99)}`;
}

/**
 * How the backlog is counted, in one sentence (with `measured` false: these results predate
 * it). `served`: how a served contender settles; `unit`: what the share is per; `others`:
 * whether there are contenders besides ours (default true).
 */
export function backlogSentence(measured: boolean, opts: { served?: string; unit?: 'lifecycle' | 'call'; others?: boolean } = {}): string {
  const unit = opts.unit ?? 'lifecycle';
  if (!measured) return `These results predate the count of the udev backlog: each ${unit} is the time the caller saw, whatever udev still had to do after it.`;
  return (
    `Udev backlog: our calls return before udev's rules ran for them (a reaper thread collects their udev cookies later), so after each batch of ours the time until none of its cookies was pending ` +
    `(\`dm.udevSettle\`${opts.served ? `; ${opts.served}` : ''}) is shared out equally over the batch's ${unit}s, shown as "${backlogColumn(unit)}" and ` +
    (unit === 'lifecycle' ? 'included in the whole lifecycle (so in its ratios and targets), while the steps stay the latency the caller saw' : "included in each call's figures and ratios") +
    (opts.others === false ? '' : '; the other contenders wait for udev inside their calls (–)') +
    `, and an untimed \`udevadm settle -t 60\` runs after every batch of every contender ` +
    `so that none starts while udev still works on an earlier one's events (without udev nothing is reaped and udevadm is not run).`
  );
}
