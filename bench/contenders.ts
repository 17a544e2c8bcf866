/**
 * The contenders, each able to run a batch of one operation and time every operation in it.
 * A batch names thin ids from `firstId` on; device i of the batch is `<prefix><id>`.
 * (The DeviceSet and Driver levels have their own section and contenders: lifecycle.ts.)
 */
import * as dm from '../dist/dm';
import { native, type NativeTaskSpec } from '../dist/internal';
import type { RawClient } from './raw-client';
import type { ContenderName, OpName } from './types';

export interface Batch {
  op: OpName;
  count: number;
  firstId: number;
  /** create_snap, create_snap_active: the origin of operation i is baseId + i. */
  baseId?: number;
  /** set_transaction_id: the pool's transaction id before the batch. */
  fromTransactionId?: number;
  /** Devices are named prefix + thin id. */
  prefix: string;
  /** activate: the thin device's size. */
  sizeBytes: number;
}

export interface Contender {
  name: ContenderName;
  /** Runs the batch; per-operation ns. */
  run(b: Batch): Promise<number[]>;
}

export interface BenchEnv {
  pool: string;
  raw: RawClient;
  /** A second C process, used only to start dmsetup (posix_spawn, as Go's os/exec). */
  spawner: RawClient;
}

const SECTOR = 512;

function now(): bigint {
  return process.hrtime.bigint();
}

function base(b: Batch, i: number): number {
  if (b.baseId === undefined) throw new Error(`${b.op}: batch without baseId`);
  return b.baseId + i;
}

function from(b: Batch, i: number): number {
  if (b.fromTransactionId === undefined) throw new Error(`${b.op}: batch without fromTransactionId`);
  return b.fromTransactionId + i;
}

function rawBatch(env: BenchEnv, b: Batch, hop: boolean): Promise<number[]> {
  return env.raw.batch(b.op, b.count, {
    id: b.firstId,
    base: b.baseId,
    from: b.fromTransactionId,
    prefix: b.prefix,
    size: b.op === 'activate' ? b.sizeBytes / SECTOR : undefined,
    hop: hop ? 1 : undefined,
  });
}

export function rawContender(env: BenchEnv): Contender {
  return { name: 'raw', run: (b) => rawBatch(env, b, false) };
}

/** The C program with each operation on a worker thread: the floor of any async design. */
export function rawHopContender(env: BenchEnv): Contender {
  return { name: 'rawHop', run: (b) => rawBatch(env, b, true) };
}

/** This project's dm API, one awaited promise per operation. */
export function dmContender(env: BenchEnv): Contender {
  const pool = env.pool;
  const one = async (b: Batch, i: number): Promise<void> => {
    const id = b.firstId + i;
    const name = `${b.prefix}${id}`;
    switch (b.op) {
      case 'create_thin':
        return dm.createDevice(pool, id);
      case 'create_snap':
        return dm.createSnapDevice(pool, id, null, base(b, i));
      case 'create_snap_active':
        return dm.createSnapDevice(pool, id, `${b.prefix}${base(b, i)}`, base(b, i));
      case 'delete':
        return dm.deleteDevice(pool, id);
      case 'set_transaction_id':
        return dm.setTransactionId(pool, from(b, i), from(b, i) + 1);
      case 'activate':
        return dm.activateDevice(pool, name, id, b.sizeBytes);
      case 'suspend_resume':
        await dm.suspendDevice(name);
        return dm.resumeDevice(name);
      case 'remove':
        return dm.removeDevice(name);
      case 'info':
        if (!(await dm.getInfo(name))) throw new Error(`info: ${name} does not exist`);
        return;
      case 'pool_status':
        if ((await dm.getPoolStatus(pool)).state !== 'ok') throw new Error('pool status: the pool failed');
        return;
    }
  };
  return {
    name: 'dm',
    async run(b) {
      const ns: number[] = [];
      for (let i = 0; i < b.count; i++) {
        const t0 = now();
        await one(b, i);
        ns.push(Number(now() - t0));
      }
      return ns;
    },
  };
}

/**
 * The addon's synchronous runner with exactly the task specs the dm functions send (see
 * lib/dm/messages.ts, device.ts, query.ts): the dm level without the thread hop and the
 * promise. Not a public API for most of these operations; it is here to split the cost.
 */
export function dmSyncContender(env: BenchEnv): Contender {
  const pool = env.pool;
  const run = (spec: NativeTaskSpec) => native().runTaskSync({ udevTimeoutMs: dm.getTaskDefaults().udevTimeoutMs, ...spec });
  const msg = (message: string) => run({ type: 'targetMsg', name: pool, sector: 0, message, operation: message });
  const one = (b: Batch, i: number): void => {
    const id = b.firstId + i;
    const name = `${b.prefix}${id}`;
    switch (b.op) {
      case 'create_thin':
        msg(`create_thin ${id}`);
        return;
      case 'create_snap':
        msg(`create_snap ${id} ${base(b, i)}`);
        return;
      case 'create_snap_active': {
        const origin = `${b.prefix}${base(b, i)}`;
        const message = `create_snap ${id} ${base(b, i)}`;
        const info = run({ type: 'info', name: origin, operation: 'info' });
        if (!(info.info?.exists && !info.info.suspended)) {
          msg(message);
          return;
        }
        run({ type: 'suspend', name: origin, operation: `suspend origin for ${message}` });
        try {
          msg(message);
        } finally {
          run({ type: 'resume', name: origin, operation: `resume origin after ${message}` });
        }
        return;
      }
      case 'delete':
        msg(`delete ${id}`);
        return;
      case 'set_transaction_id':
        msg(`set_transaction_id ${from(b, i)} ${from(b, i) + 1}`);
        return;
      case 'activate': {
        const params = dm.formatThinTable({ poolDevice: `/dev/mapper/${pool}`, deviceId: id });
        run({
          type: 'create',
          name,
          targets: [{ start: 0, length: b.sizeBytes / SECTOR, type: 'thin', params }],
          addNode: 'create',
          operation: `activate thin ${id}`,
        });
        return;
      }
      case 'suspend_resume':
        run({ type: 'suspend', name, operation: 'suspend' });
        run({ type: 'resume', name, operation: 'resume' });
        return;
      case 'remove':
        run({ type: 'remove', name, operation: 'remove' });
        return;
      case 'info':
        if (!run({ type: 'info', name, operation: 'info' }).info?.exists) throw new Error(`info: ${name} does not exist`);
        return;
      case 'pool_status': {
        const line = run({ type: 'status', name: pool, operation: 'status' }).targets?.[0];
        if (!line || dm.parseThinPoolStatus(line.params.trimEnd()).state !== 'ok') throw new Error('pool status: the pool failed');
        return;
      }
    }
  };
  return {
    name: 'dmSync',
    async run(b) {
      const ns: number[] = [];
      for (let i = 0; i < b.count; i++) {
        const t0 = now();
        one(b, i);
        ns.push(Number(now() - t0));
      }
      return ns;
    },
  };
}

/**
 * dmsetup, one process per kernel call, as containerd's devmapper snapshotter runs it
 * (create_snap of an active origin: suspend, message, resume; containerd asks no info first).
 */
export function dmsetupContender(env: BenchEnv): Contender {
  const pool = env.pool;
  const argvs = (b: Batch, i: number): string[][] => {
    const id = b.firstId + i;
    const name = `${b.prefix}${id}`;
    const message = (m: string) => ['dmsetup', 'message', pool, '0', m];
    switch (b.op) {
      case 'create_thin':
        return [message(`create_thin ${id}`)];
      case 'create_snap':
        return [message(`create_snap ${id} ${base(b, i)}`)];
      case 'create_snap_active': {
        const origin = `${b.prefix}${base(b, i)}`;
        return [['dmsetup', 'suspend', origin], message(`create_snap ${id} ${base(b, i)}`), ['dmsetup', 'resume', origin]];
      }
      case 'delete':
        return [message(`delete ${id}`)];
      case 'set_transaction_id':
        return [message(`set_transaction_id ${from(b, i)} ${from(b, i) + 1}`)];
      case 'activate':
        return [['dmsetup', 'create', name, '--table', `0 ${b.sizeBytes / SECTOR} thin /dev/mapper/${pool} ${id}`]];
      case 'suspend_resume':
        return [
          ['dmsetup', 'suspend', name],
          ['dmsetup', 'resume', name],
        ];
      case 'remove':
        return [['dmsetup', 'remove', name]];
      case 'info':
        return [['dmsetup', 'info', name]];
      case 'pool_status':
        return [['dmsetup', 'status', pool]];
    }
  };
  return {
    name: 'dmsetup',
    async run(b) {
      const ns: number[] = [];
      for (let i = 0; i < b.count; i++) {
        let total = 0;
        for (const argv of argvs(b, i)) total += await env.spawner.spawn(argv);
        ns.push(total);
      }
      return ns;
    },
  };
}
