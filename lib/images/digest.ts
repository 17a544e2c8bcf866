/**
 * Content digests as the OCI image spec writes them ("sha256:<64 hex>"), and chain IDs: the
 * name of a stack of layers, which is what a committed layer snapshot is called, so that two
 * images with the same bottom layers share them.
 */
import { createHash } from 'node:crypto';

const SHA256 = /^sha256:[0-9a-f]{64}$/;

/** Whether s is a sha256 digest in the spec's form (other algorithms are not read). */
export function isDigest(s: unknown): s is string {
  return typeof s === 'string' && SHA256.test(s);
}

/** "sha256:" + the hex sha256 of the bytes. */
export function digestOf(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/**
 * The chain IDs of a list of diff IDs (bottom first): the first is the first diff ID; each
 * next one is the sha256 of "<chain ID below> <diff ID>" (the OCI image spec's definition).
 */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) out.push(out.length === 0 ? d : digestOf(`${out[out.length - 1]} ${d}`));
  return out;
}
