/**
 * Docker's transaction protocol between the pool and the metadata files. Before a thin id
 * is created or deleted, the intent (open transaction id = pool's + 1, hash, device id) is
 * saved; set_transaction_id commits it. At open, a pool transaction id behind the saved open
 * one means a crash in between: the device of that transaction is deleted from the pool and
 * its metadata removed, so the pool and the metadata agree again. A pool that is read-only at
 * open (needs_check after a failed commit, typically) refuses the delete: the rollback then
 * waits, with the transaction file kept, until a change finds the pool writable.
 */
import * as dm from '../dm';
import { DevmapperError, ErrorCodes } from '../errors';
import { crashSteps } from './crash-points';
import type { DeviceMetadata, MetadataStore, TransactionMetadata } from './metadata-store';

export interface RollbackResult {
  hash: string;
  deviceId: number;
  /** The pool was read-only: the rollback waits for the first change made on a writable pool. */
  deferred: boolean;
}

/** What recover() does with the unfinished transaction's device in memory. */
export interface RecoverCallbacks {
  /** Rolled back: forget the record and free its id. */
  forget(hash: string, deviceId: number): void;
  /** Rollback deferred: forget the record, keep its id taken (the pool may still hold it). */
  hide(hash: string): void;
}

export class TransactionLog {
  /** The pool's committed transaction id. */
  poolTransactionId = 0;
  /** The open transaction's id (pool's + 1 while one is open, equal otherwise). */
  openTransactionId = 0;
  /** An unfinished transaction found at open that the read-only pool would not let us roll back. */
  private pending: TransactionMetadata | null = null;

  constructor(
    private readonly store: MetadataStore,
    private readonly poolName: string,
  ) {}

  async readPoolTransactionId(): Promise<number> {
    const status = await dm.getPoolStatus(this.poolName);
    if (status.state !== 'ok')
      throw new DevmapperError(`the pool ${this.poolName} reports ${status.state === 'fail' ? 'Fail' : 'Error'}: run thin_check`, {
        code: ErrorCodes.POOL_FAILED,
        device: this.poolName,
      });
    return status.transactionId;
  }

  /**
   * Reads the pool's side and rolls back an unfinished transaction. `saved` is the
   * transaction file as read at open (before anything was set up, so that a corrupt one
   * refuses the open with nothing made). On a read-only pool the rollback is deferred (see
   * {@link finishPendingRollback}): the device is hidden, its file and the transaction file
   * stay, so that nothing on disk names an id the pool lacks without the transaction that
   * says so.
   */
  async recover(saved: TransactionMetadata | null, cb: RecoverCallbacks): Promise<RollbackResult | null> {
    this.poolTransactionId = await this.readPoolTransactionId();
    this.openTransactionId = saved?.openTransactionId ?? this.poolTransactionId;
    if (!saved || saved.openTransactionId === this.poolTransactionId) {
      this.openTransactionId = this.poolTransactionId;
      return null;
    }
    if (saved.openTransactionId < this.poolTransactionId)
      throw new DevmapperError(
        `the pool's transaction id ${this.poolTransactionId} is ahead of the metadata's ${saved.openTransactionId}: this metadata belongs to another pool`,
        { code: ErrorCodes.TRANSACTION_MISMATCH, device: this.poolName },
      );
    // A transaction was opened and never committed.
    this.openTransactionId = this.poolTransactionId;
    const status = await dm.getPoolStatus(this.poolName, { noFlush: true });
    if (status.state === 'ok' && status.mode === 'ro') {
      // The kernel refuses pool messages in read-only mode: opening must still work (status,
      // reads, mounts), and every change is refused until the pool is writable again.
      this.pending = saved;
      cb.hide(saved.deviceHash);
      return { hash: saved.deviceHash, deviceId: saved.deviceId, deferred: true };
    }
    await this.rollBack(saved);
    cb.forget(saved.deviceHash, saved.deviceId);
    return { hash: saved.deviceHash, deviceId: saved.deviceId, deferred: false };
  }

  /**
   * After {@link recover}: drops the device files of transactions the pool never committed
   * (transaction_id above the pool's) that the transaction file does not name. A create
   * writes the intent and the device's file before one directory fsync, and a power cut
   * there may keep only the latter; since the fsync precedes create_thin/create_snap, such a
   * device was never made in the pool. Returns what it dropped.
   */
  async dropUncommitted(devices: Map<string, DeviceMetadata>, forget: (hash: string, deviceId: number) => void): Promise<RollbackResult[]> {
    const dropped: RollbackResult[] = [];
    for (const [hash, meta] of [...devices]) {
      if (meta.transactionId <= this.poolTransactionId) continue;
      await this.store.removeDevice(hash);
      forget(hash, meta.deviceId);
      dropped.push({ hash, deviceId: meta.deviceId, deferred: false });
    }
    return dropped;
  }

  /**
   * Finishes a rollback deferred at open; a no-op when none is. Call with the pool lock held,
   * before any new transaction: a new intent would overwrite the transaction file that names
   * the unfinished one. `release` frees the device id once the pool no longer has it.
   */
  async finishPendingRollback(release: (deviceId: number) => void): Promise<void> {
    const saved = this.pending;
    if (!saved) return;
    await this.rollBack(saved);
    this.pending = null;
    release(saved.deviceId);
  }

  private async rollBack(saved: TransactionMetadata): Promise<void> {
    try {
      await dm.deleteDevice(this.poolName, saved.deviceId);
    } catch (err) {
      // Not created yet, or already deleted: either way it is gone now.
      if (!(err instanceof DevmapperError && err.code === 'ENODATA')) throw err;
    }
    await this.store.removeDevice(saved.deviceHash);
    await this.store.writeTransaction({ openTransactionId: this.poolTransactionId, deviceHash: '', deviceId: 0 });
  }

  /**
   * Opens a transaction for `deviceId` of `hash` in memory and returns the steps that save
   * its intent (durably). Run them first in the operation's native job; on failure before
   * they completed, call {@link reset}. `register`: the device's file, written after the
   * intent and made durable by the same directory fsync.
   */
  beginSteps(hash: string, deviceId: number, o: { register?: dm.Step } = {}): dm.Step[] {
    this.openTransactionId = this.poolTransactionId + 1;
    return dm.inPhase('intent', [
      this.store.transactionWriteStep({ openTransactionId: this.openTransactionId, deviceHash: hash, deviceId }),
      ...crashSteps('after-intent'),
      ...(o.register ? [o.register] : []),
      this.store.syncStep(),
      ...(o.register ? crashSteps('after-register') : []),
    ]);
  }

  /** The steps that commit the open transaction in the pool (phase commit); then call {@link committed}. */
  commitSteps(): dm.Step[] {
    return [
      ...crashSteps('before-set-transaction-id'),
      ...dm.setTransactionIdSteps(this.poolName, this.poolTransactionId, this.openTransactionId),
      ...crashSteps('after-set-transaction-id'),
    ];
  }

  /** The commit steps succeeded: the pool's id is the open one now. */
  committed(): void {
    this.poolTransactionId = this.openTransactionId;
  }

  /** Forgets an intent that was never saved: nothing is open. */
  reset(): void {
    this.openTransactionId = this.poolTransactionId;
  }

  /**
   * Abandons the open transaction after a failure that left nothing behind: the pool id
   * stays, and the saved intent is reset so a later open has nothing to roll back.
   */
  async abandon(): Promise<void> {
    this.openTransactionId = this.poolTransactionId;
    await this.store.writeTransaction({ openTransactionId: this.poolTransactionId, deviceHash: '', deviceId: 0 });
  }

}
