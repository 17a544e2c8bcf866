/** containerd's snapshot model over a DeviceSet, and its gRPC service for containerd's proxy plugins. */
export { Snapshotter, type SnapshotterOpenOptions } from './snapshotter';
export type { RecoveryReport } from './reconcile';
export type { SnapshotInfo, SnapshotKind, SnapshotMount, SnapshotUsage, SnapshotOptions, SnapshotUpdate } from './types';
export { serveSnapshotter } from './serve';
export type { ServeOptions, SnapshotterServer } from './server';
