/** The sandbox runner: a device-mapper kernel (host or user-mode Linux) for tests and demos. */
export {
  chooseKernel,
  detectHostKernel,
  type HostKernelInfo,
  type KernelChoice,
  type KernelPreference,
} from './kernel';
export { ensureSandboxInstalled, missingSandboxPackages, umlKernelRelease, umlModulePaths } from './packages';
export {
  OPTIONAL_MODULES,
  parseGuestResult,
  REQUIRED_MODULES,
  renderCommandSegment,
  renderInitScript,
  shellQuote,
  type InitScriptOptions,
} from './init-script';
export {
  runInSandbox,
  sandboxEnvironment,
  SANDBOX_BASE_DIR,
  SANDBOX_FAILURE_EXIT,
  type SandboxRunOptions,
  type SandboxRunResult,
} from './runner';
export { main as sandboxMain } from './cli';
