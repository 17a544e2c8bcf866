/** The Snapshotter's public types: containerd's snapshot model, in JavaScript case. */

/** containerd's kinds: an active snapshot is writable, a view read-only, a committed one an immutable parent. */
export type SnapshotKind = 'active' | 'view' | 'committed';

/** What {@link Snapshotter.stat} and {@link Snapshotter.walk} give for a snapshot. */
export interface SnapshotInfo {
  /** active, view or committed. */
  kind: SnapshotKind;
  /** The key of an active snapshot or view; the name of a committed one. */
  name: string;
  /** The parent's name ('' when none). */
  parent: string;
  /** The snapshot's labels (containerd keeps its garbage-collection references here). */
  labels: Record<string, string>;
  /** When it was made (for a committed snapshot: when it was committed). */
  created: Date;
  /** When its labels last changed, else `created`. */
  updated: Date;
  /** `created` in microseconds since the epoch (a Date keeps milliseconds only). */
  createdMicros: number;
  /** `updated` in microseconds since the epoch. */
  updatedMicros: number;
}

/** A mount containerd (or a VM manager) can perform: the snapshot's block device. */
export interface SnapshotMount {
  /** The file system on the device: the DeviceSet's (dm.fs). */
  type: 'ext4' | 'xfs';
  /** /dev/mapper/NAME */
  source: string;
  /** 'ro' for views, 'nouuid' on xfs (snapshots share the base's file-system UUID). */
  options: string[];
}

/** What {@link Snapshotter.usage} reports. */
export interface SnapshotUsage {
  /**
   * Bytes the pool has allocated to the snapshot's thin device: read from the device while
   * it is active, recorded at commit for committed snapshots.
   */
  sizeBytes: number;
  /** Always 0: a block device's inode count is not known without mounting its file system. */
  inodes: number;
}

/** Options of {@link Snapshotter.prepare}, {@link Snapshotter.view} and {@link Snapshotter.commit}. */
export interface SnapshotOptions {
  /** Labels to give the snapshot (each key plus value at most 4096 bytes). */
  labels?: Record<string, string>;
  /**
   * prepare and view: the device's size in bytes (a multiple of 512, at least the parent's);
   * a bigger one has its file system grown before it is handed out. Default: the parent's.
   * commit ignores it.
   */
  size?: number;
}

/** The labels and name a caller passes to {@link Snapshotter.update}. */
export interface SnapshotUpdate {
  /** The key or committed name of the snapshot to change. */
  name: string;
  /** The labels, read as the field paths say. */
  labels?: Record<string, string>;
}
