/**
 * What kernel the integration tests run in, and whether they can run at all. The test
 * script (scripts/test.sh) sets DEVMAPPER_REQUIRE_KERNEL=1, so that a missing kernel there
 * is a failure, never a silent skip.
 */
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';

export interface KernelEnv {
  usable: boolean;
  reason: string;
  kind: 'sandbox' | 'host';
  release: string;
  udev: 'on' | 'off';
}

export function kernelEnv(): KernelEnv {
  // /proc/misc, not /dev/mapper/control: libdevmapper makes that node even without the driver.
  const hasDm = /^\s*\d+\s+device-mapper\s*$/m.test(safeRead('/proc/misc'));
  const isRoot = process.getuid?.() === 0;
  const udevRunning = existsSync('/run/udev/control') && process.env.DM_DISABLE_UDEV !== '1';
  const kind = process.env.DEVMAPPER_SANDBOX === '1' ? 'sandbox' : 'host';
  let reason = '';
  if (!isRoot) reason = 'needs root';
  else if (!hasDm) reason = 'the kernel has no device-mapper (run `npm test`, which boots the sandbox kernel)';
  return { usable: reason === '', reason, kind, release: release(), udev: udevRunning ? 'on' : 'off' };
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** describe() when the kernel is usable, else describe.skip with the reason in the title. */
export function describeKernel(title: string, fn: () => void): void {
  const env = kernelEnv();
  if (env.usable) describe(title, fn);
  else describe.skip(`${title} [skipped: ${env.reason}]`, fn);
}
