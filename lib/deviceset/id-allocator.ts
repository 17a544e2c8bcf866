/**
 * Thin device ids: 24 bits (dm-thin's MAX_DEV_ID), handed out the way Docker's devmapper
 * driver did (deviceset.go getNextFreeDeviceID): start after the last id handed out, wrap
 * around at 2^24, skip ids in use. The bitmap is not persisted: at open it is rebuilt from
 * the device files with markUsed, and `nextDeviceId` comes from deviceset-metadata.
 */
import { DevmapperError, ErrorCodes, invalidArgument } from '../errors';
import { MAX_THIN_DEVICE_ID } from '../dm';

const ID_COUNT = MAX_THIN_DEVICE_ID + 1;

/** A bitmap of the 2^24 thin device ids (2 MiB), with Docker's wrap-around allocation. */
export class DeviceIdAllocator {
  /** Bit (id & 7) of byte (id >> 3), as Docker's deviceIDMap. */
  private readonly bits = new Uint8Array(ID_COUNT / 8);
  /** The same memory by 32-bit words, to skip 32 used ids at a time when scanning. */
  private readonly words = new Uint32Array(this.bits.buffer);
  private next = 0;
  private used = 0;

  /**
   * The last id handed out, Docker's `next_device_id` (despite the name, allocation starts
   * after it). Docker started at 0, so the base device got id 1. Persist it in
   * deviceset-metadata; set it back at open.
   */
  get nextDeviceId(): number {
    return this.next;
  }

  set nextDeviceId(id: number) {
    this.next = checkId(id, 'nextDeviceId');
  }

  /** How many ids are marked used. */
  get usedCount(): number {
    return this.used;
  }

  /** Marks an id used (a registered device, or one the pool already has). Idempotent. */
  markUsed(id: number): void {
    checkId(id, 'deviceId');
    const mask = 1 << (id & 7);
    if ((this.bits[id >> 3] & mask) === 0) {
      this.bits[id >> 3] |= mask;
      this.used++;
    }
  }

  /** Frees an id (its device was deleted, or its creation rolled back). Idempotent. */
  release(id: number): void {
    checkId(id, 'deviceId');
    const mask = 1 << (id & 7);
    if ((this.bits[id >> 3] & mask) !== 0) {
      this.bits[id >> 3] &= ~mask;
      this.used--;
    }
  }

  /** Whether an id is marked used. */
  isUsed(id: number): boolean {
    checkId(id, 'deviceId');
    return (this.bits[id >> 3] & (1 << (id & 7))) !== 0;
  }

  /**
   * Hands out the first free id after `nextDeviceId`, wrapping from 2^24-1 to 0, marks it
   * used and makes it the new `nextDeviceId`. O(1) when the next id is free (the common
   * case); otherwise a scan that skips fully used 32-id words.
   *
   * @throws DevmapperError ERR_NO_FREE_DEVICE_ID when every id is in use
   */
  allocate(): number {
    const id = this.used < ID_COUNT ? this.findFree((this.next + 1) & MAX_THIN_DEVICE_ID) : -1;
    if (id < 0)
      throw new DevmapperError(`no free thin device id: all ${ID_COUNT} 24-bit ids are in use`, {
        code: ErrorCodes.NO_FREE_DEVICE_ID,
        operation: 'allocate device id',
      });
    this.markUsed(id);
    this.next = id;
    return id;
  }

  /** The first free id at or after `start`, wrapping around once; -1 when none. */
  private findFree(start: number): number {
    // The ids of start's word from start on, then whole words, then the head of start's word.
    const startWord = start >>> 5;
    let id = this.freeInWord(startWord, start & 31, 32);
    if (id >= 0) return id;
    const wordCount = this.words.length;
    for (let step = 1; step < wordCount; step++) {
      const w = (startWord + step) % wordCount;
      if (this.words[w] === 0xffffffff) continue;
      id = this.freeInWord(w, 0, 32);
      if (id >= 0) return id;
    }
    return this.freeInWord(startWord, 0, start & 31);
  }

  /** The first free id among bits [from, to) of a 32-id word, -1 when none. */
  private freeInWord(word: number, from: number, to: number): number {
    // Byte by byte so the answer does not depend on the platform's endianness.
    for (let bit = from; bit < to; bit++) {
      const id = word * 32 + bit;
      const byte = this.bits[id >> 3];
      if (byte === 0xff) {
        bit |= 7; // the rest of this byte is used
        continue;
      }
      if ((byte & (1 << (id & 7))) === 0) return id;
    }
    return -1;
  }
}

function checkId(id: number, argument: string): number {
  // `id >>> 0 === id` holds exactly for integers 0..2^32-1 (cheaper than Number.isInteger,
  // which matters when a root's ids are marked one by one at open).
  if (typeof id !== 'number' || id >>> 0 !== id || id > MAX_THIN_DEVICE_ID)
    throw invalidArgument(argument, `an integer thin device id from 0 to ${MAX_THIN_DEVICE_ID}`, id);
  return id;
}
