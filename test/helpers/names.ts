import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Every device a test makes starts with this, so cleanup never touches anything else. */
export const TEST_PREFIX = `dmt${process.pid}-`;
/** Scratch files (loop backing files, mount points) live below this. */
export const SCRATCH_ROOT = join(tmpdir(), `devmapper-test-${process.pid}`);

let counter = 0;
/** A fresh unique prefix for one test's devices: dmt<pid>-<n>-<random>. */
export function uniquePrefix(): string {
  counter += 1;
  return `${TEST_PREFIX}${counter}-${Math.random().toString(36).slice(2, 6)}`;
}
