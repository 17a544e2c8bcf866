/** Which kernel runs device-mapper work: the host's, or the user-mode Linux sandbox. */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { invalidArgument } from '../errors';

export type KernelPreference = 'auto' | 'host' | 'sandbox';
export type KernelChoice = 'host' | 'sandbox';

export interface HostKernelInfo {
  release: string;
  hasDeviceMapper: boolean;
  isRoot: boolean;
}

/**
 * Whether the running kernel has a device-mapper driver (built in or loaded). Only the
 * kernel's own list counts: libdevmapper creates /dev/mapper/control even on a kernel
 * without the driver, so that node proves nothing.
 */
function hostHasDeviceMapper(): boolean {
  try {
    // /proc/misc lists "<minor> <name>" for every misc device, device-mapper among them.
    return /^\s*\d+\s+device-mapper\s*$/m.test(readFileSync('/proc/misc', 'utf8'));
  } catch {
    return false;
  }
}

export function detectHostKernel(): HostKernelInfo {
  return {
    release: release(),
    hasDeviceMapper: hostHasDeviceMapper(),
    isRoot: process.getuid?.() === 0,
  };
}

/**
 * Which kernel runs the command: 'auto' takes the host's when it can drive device-mapper
 * (driver present and we are root), else the user-mode Linux sandbox. 'host' and 'sandbox'
 * are taken as asked, even when the host kernel cannot do the job.
 */
export function chooseKernel(pref: KernelPreference, host: HostKernelInfo = detectHostKernel()): KernelChoice {
  switch (pref) {
    case 'host':
    case 'sandbox':
      return pref;
    case 'auto':
      return host.hasDeviceMapper && host.isRoot ? 'host' : 'sandbox';
    default:
      throw invalidArgument('kernel', "'auto', 'host' or 'sandbox'", pref);
  }
}
