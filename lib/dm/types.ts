/**
 * Plain data types for device-mapper table and status lines (see ./parse.ts).
 *
 * Units are part of the names: `...Sectors` are 512-byte sectors, `...Blocks` are pool data
 * blocks (for data counts) or 4 KiB metadata blocks (for metadata counts). Every count is a
 * plain `number`: the kernel prints 64-bit values, but the parsers reject any value above
 * `Number.MAX_SAFE_INTEGER` (2^53 - 1) rather than lose precision.
 */

/**
 * One line of a device-mapper table: `<start sector> <length sectors> <target type> <params...>`.
 */
export interface TargetLine {
  /** First sector of the device covered by this target (512-byte sectors). */
  start: number;
  /** Number of sectors the target covers (512-byte sectors, at least 1). */
  length: number;
  /** Target type name: 'thin-pool', 'thin', 'linear', ... */
  type: string;
  /** The target's parameters, as one string: everything after the type, trimmed (may be ''). */
  params: string;
}

/** A block device number as the kernel prints it, `<major>:<minor>` (e.g. `254:0`). */
export interface DeviceNumber {
  /** Major number, 0 .. 4095 (12 bits in the kernel's dev_t). */
  major: number;
  /** Minor number, 0 .. 1048575 (20 bits in the kernel's dev_t). */
  minor: number;
}

/** The parameters of a `thin-pool` table line. */
export interface ThinPoolTable {
  /** Metadata device: `maj:min` as the kernel prints it, or a path when loading. */
  metadataDevice: string;
  /** Data device: `maj:min` as the kernel prints it, or a path when loading. */
  dataDevice: string;
  /** Data block size in 512-byte sectors: a multiple of 128 (64 KiB) up to 2097152 (1 GiB). */
  blockSizeSectors: number;
  /** Free data blocks below which the kernel raises a dm event (in data blocks). */
  lowWaterMarkBlocks: number;
  /**
   * Feature arguments in table order: 'skip_block_zeroing', 'ignore_discard',
   * 'no_discard_passdown', 'read_only', 'error_if_no_space'; unknown ones are kept verbatim.
   */
  features: string[];
}

/** The parameters of a `thin` table line: `<pool dev> <dev id> [<external origin dev>]`. */
export interface ThinTable {
  /** The pool device: `maj:min` as the kernel prints it, or a path when loading. */
  poolDevice: string;
  /** The thin device's 24-bit id inside the pool (0 .. 16777215). */
  deviceId: number;
  /** Read-only device used as the origin of unprovisioned blocks, when there is one. */
  externalOrigin?: string;
}

/** Pool mode as reported in thin-pool status. Out of *metadata* space is reported as 'ro'. */
export type ThinPoolMode = 'rw' | 'ro' | 'out_of_data_space';

/** How the pool handles discards. */
export type ThinPoolDiscards = 'discard_passdown' | 'no_discard_passdown' | 'ignore_discard';

/** What the pool does with writes once its data device is full. */
export type ThinPoolNoSpacePolicy = 'error_if_no_space' | 'queue_if_no_space';

/** A thin-pool status the kernel could compute. */
export interface ThinPoolStatusOk {
  /** The kernel printed a full status line (not `Fail` or `Error`). */
  state: 'ok';
  /** The 64-bit transaction id userspace keeps in the pool metadata. */
  transactionId: number;
  /** Metadata blocks in use (4 KiB metadata blocks). */
  metadataUsedBlocks: number;
  /** Metadata blocks in total (4 KiB metadata blocks). */
  metadataTotalBlocks: number;
  /** Data blocks in use (data blocks of the pool's block size). */
  dataUsedBlocks: number;
  /** Data blocks in total (data blocks of the pool's block size). */
  dataTotalBlocks: number;
  /** Metadata block of the held metadata snapshot root, or null when none is held ('-'). */
  heldMetadataRoot: number | null;
  /**
   * 'rw' normally; 'out_of_data_space' when the data device is full (writes queue or fail
   * by the no-space policy); 'ro' when the metadata is full or the kernel switched the pool
   * to read-only after an error. Only 'rw' takes new devices.
   */
  mode: ThinPoolMode;
  /** Null on kernels too old to report it. */
  discards: ThinPoolDiscards | null;
  /** Null on kernels too old to report it. */
  noSpacePolicy: ThinPoolNoSpacePolicy | null;
  /** True when the metadata needs a thin_check; false when '-' or when the kernel is too old to say. */
  needsCheck: boolean;
  /** Free metadata blocks below which the kernel raises a dm event; null before Linux 4.19. */
  metadataLowWatermarkBlocks: number | null;
}

/**
 * Status of a `thin-pool` target: 'fail' when the pool is in failure mode (the kernel prints
 * `Fail`), 'error' when the kernel could not read the metadata to report (it prints `Error`).
 */
export type ThinPoolStatus =
  | ThinPoolStatusOk
  | {
      /** The pool is in failure mode (`Fail`): run thin_check on its metadata. */
      state: 'fail';
    }
  | {
      /** The kernel could not read the pool's metadata to report (`Error`). */
      state: 'error';
    };

/** A thin device status the kernel could compute. */
export interface ThinStatusOk {
  /** The kernel printed the mapped-sector counts. */
  state: 'ok';
  /** Number of mapped (provisioned) sectors: mapped blocks times the pool block size. */
  mappedSectors: number;
  /** Last sector of the highest mapped block, or null when nothing is mapped ('-'). */
  highestMappedSector: number | null;
}

/**
 * Status of a `thin` target: 'fail' when its pool is in failure mode (`Fail`), 'error' when
 * the kernel could not read the mapping (`Error`), 'unset' when the thin device is not set up
 * yet (`-`).
 */
export type ThinStatus =
  | ThinStatusOk
  | {
      /** The pool is in failure mode (`Fail`). */
      state: 'fail';
    }
  | {
      /** The kernel could not read the mapping (`Error`). */
      state: 'error';
    }
  | {
      /** The thin device is not set up yet (`-`). */
      state: 'unset';
    };
