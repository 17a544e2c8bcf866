/** Prints which kernel and udev mode this run uses; fails when the run requires a kernel it lacks. */
import { kernelEnv } from '../helpers/kernel-env';

export default async function globalSetup(): Promise<void> {
  const env = kernelEnv();
  if (!env.usable) {
    if (process.env.DEVMAPPER_REQUIRE_KERNEL === '1')
      throw new Error(`integration tests need a device-mapper kernel and root: ${env.reason}`);
    process.stdout.write(`\nkernel: none usable (${env.reason}); integration tests will be skipped\n`);
    return;
  }
  process.stdout.write(`\nkernel: ${env.kind} ${env.release}, udev: ${env.udev}\n`);
}
