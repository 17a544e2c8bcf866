/**
 * The stream stages of a layer import: a sha256 counter over bytes passing through, and a
 * decompressor (gzip from zlib, zstd from fzstd: Node 20's zlib has
 * no zstd). Each stage passes data on as it comes: no layer is ever held whole in memory.
 */
import { createHash, type Hash } from 'node:crypto';
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import type { Compression } from './media-types';

/** Hashes and counts what passes; digest() once the stream has ended. */
export class Sha256Counter extends Transform {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;
  private result: string | null = null;

  constructor(private readonly onBytes?: (bytes: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.result = `sha256:${this.hash.digest('hex')}`;
    cb();
  }

  /** The digest of everything that passed, or null while the stream has not ended. */
  digest(): string | null {
    return this.result;
  }
}

/** zstd frames decoded as they arrive (fzstd keeps only its window, not the stream). */
class ZstdDecoder extends Transform {
  private readonly decoder: Decompress;
  private failure: Error | null = null;

  constructor() {
    super();
    this.decoder = new Decompress((data) => {
      // fzstd may hand back a view of its window, which it reuses: copy.
      if (data.length > 0) this.push(Buffer.from(data));
    });
  }

  private feed(chunk: Uint8Array, final: boolean, cb: TransformCallback): void {
    try {
      this.decoder.push(chunk, final);
      cb();
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
      cb(new Error(`zstd: ${this.failure.message}`));
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.feed(chunk, false, cb);
  }

  override _flush(cb: TransformCallback): void {
    this.feed(new Uint8Array(0), true, cb);
  }
}

/** The stage that turns a blob of this compression into the tar. */
export function decompressor(compression: Compression): Transform {
  if (compression === 'gzip') return createGunzip();
  if (compression === 'zstd') return new ZstdDecoder();
  return new PassThrough();
}
