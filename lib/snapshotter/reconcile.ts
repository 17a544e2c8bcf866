/**
 * Brings the two stores into agreement at open, after a process died mid-operation: the
 * DeviceSet's files are the truth about devices, SQLite about snapshots.
 */
import type { DeviceSet } from '../deviceset';
import { DevmapperError } from '../errors';
import type { SnapshotStore } from './store';

/** What the reconciliation at `Snapshotter.open` did, by snapshot key or device hash. */
export interface RecoveryReport {
  /** Prepares and views that had not finished: their device (if made) deleted, their record too. */
  rolledBack: string[];
  /** Removals that had not finished: finished. */
  removed: string[];
  /** Devices named like ours (snap-<id>) that no record knew: deleted. */
  orphanDevices: string[];
  /** Records whose device was gone: dropped (their children, if any, keep their data and lose the parent link). */
  droppedRecords: string[];
  /** Active snapshots and views whose device had to be activated again. */
  reactivated: string[];
}

const OUR_HASH = /^snap-(\d+)$/;

export async function reconcile(ds: DeviceSet, store: SnapshotStore): Promise<RecoveryReport> {
  const report: RecoveryReport = { rolledBack: [], removed: [], orphanDevices: [], droppedRecords: [], reactivated: [] };
  const devices = new Set(await ds.list());
  const known = new Set<string>();
  for (const r of store.all()) {
    const hash = `snap-${r.id}`;
    known.add(hash);
    const exists = devices.has(hash);
    if (r.state === 'creating' || r.state === 'removing') {
      if (exists) await ds.deleteDevice(hash, { sync: true });
      store.transaction(() => store.delete(r.id));
      (r.state === 'creating' ? report.rolledBack : report.removed).push(r.name);
    } else if (!exists) {
      store.transaction(() => store.delete(r.id));
      report.droppedRecords.push(r.name);
    } else if (r.kind !== 'committed') {
      const status = await ds.getDeviceStatus(hash);
      if (!status.active) report.reactivated.push(r.name);
      await ds.activateDevice(hash);
    } else {
      // Commit deactivates before it records, but a dead process's leftovers may be active:
      // committed devices are inactive (one still held open by someone stays).
      await ds.deactivateDevice(hash).catch((err: unknown) => {
        if (!(err instanceof DevmapperError && err.code === 'EBUSY')) throw err;
      });
    }
  }
  for (const hash of devices) {
    if (!OUR_HASH.test(hash) || known.has(hash)) continue;
    await ds.deleteDevice(hash, { sync: true });
    report.orphanDevices.push(hash);
  }
  return report;
}
