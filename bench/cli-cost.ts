/**
 * The cli section: what the command line costs from spawn to exit, in the same kernel boot,
 * started by the same posix_spawn runner (the C program's `spawn`: output drained, exit
 * status checked), the commands interleaved run by run:
 *
 *   node -e 0               the floor: node starting and stopping
 *   devmapper --version     (node dist/cli/main.js --version)
 *   devmapper --help
 *   devmapper pool status   on an existing root (made before, untimed)
 *   dockerdm status         Docker's driver binary on an existing root: Init + Status + Cleanup
 *
 * Both roots use the peers section's pool (512 MiB / 128 MiB loop files in the guest's /tmp,
 * 16 MiB ext4 base), given on every call as options.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Driver } from '../dist/driver';
import { DOCKERDM, peerOptions, peersMissing } from './peers';
import type { RawClient } from './raw-client';
import { summarize } from './stats';
import type { CliCommandResult, CliCostResult } from './types';

export interface CliCostPlan {
  spawner: RawClient;
  udevSync: boolean;
  peersDir: string;
  runs: number;
  warmup: number;
  /** Another command line's main.js (lib/cli of another commit, bench/cli.ts --cli-ref), timed beside ours. */
  ref?: { main: string; name: string };
  progress?: (line: string) => void;
}

/** The command line as npm installs it: `devmapper` is dist/cli/main.js run by node. */
const CLI_MAIN = resolve(__dirname, '..', 'dist', 'cli', 'main.js');
const MODULES_HOOK = join(__dirname, 'cli-modules.js');

/** One untimed run of a node command with the hook preloaded: the modules it loaded. */
function modulesOf(argv: string[], file: string): CliCommandResult['modules'] {
  const [node, ...rest] = argv;
  const r = spawnSync(node as string, ['-r', MODULES_HOOK, ...rest], { env: { ...process.env, DEVMAPPER_BENCH_MODULES: file }, stdio: 'ignore' });
  if (r.status !== 0) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as CliCommandResult['modules'];
  } catch {
    return undefined;
  }
}

export async function measureCliCost(plan: CliCostPlan): Promise<CliCostResult> {
  const log = plan.progress ?? (() => undefined);
  const dir = join(tmpdir(), `devmapper-bench-${process.pid}-cli`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const options = peerOptions('defaults', plan.udevSync);
  const ours = join(dir, 'devmapper');
  const docker = join(dir, 'docker');
  const node = process.execPath;
  const commands: { name: string; argv: string[] }[] = [
    { name: 'node -e 0', argv: [node, '-e', '0'] },
    { name: 'devmapper --version', argv: [node, CLI_MAIN, '--version'] },
    { name: 'devmapper --help', argv: [node, CLI_MAIN, '--help'] },
    { name: 'devmapper pool status', argv: [node, CLI_MAIN, '--root', ours, ...options.flatMap((o) => ['--option', o]), 'pool', 'status'] },
  ];
  if (plan.ref) {
    const m = plan.ref.main;
    commands.push(
      { name: `devmapper --version, lib/cli of ${plan.ref.name}`, argv: [node, m, '--version'] },
      { name: `devmapper --help, lib/cli of ${plan.ref.name}`, argv: [node, m, '--help'] },
      { name: `devmapper pool status, lib/cli of ${plan.ref.name}`, argv: [node, m, '--root', ours, ...options.flatMap((o) => ['--option', o]), 'pool', 'status'] },
    );
  }
  const skipped: string[] = [];
  const missing = peersMissing(plan.peersDir);
  if (missing) skipped.push(`dockerdm status: ${missing}`);
  else commands.push({ name: 'dockerdm status', argv: [DOCKERDM(plan.peersDir), '--root', docker, ...options.flatMap((o) => ['--opt', o]), 'status'] });
  try {
    log('the roots, untimed: devmapper pool status (makes the base) and dockerdm init');
    await plan.spawner.spawn(commands[3]!.argv);
    if (!missing) await plan.spawner.spawn([DOCKERDM(plan.peersDir), '--root', docker, ...options.flatMap((o) => ['--opt', o]), 'init']);
    for (let i = 0; i < plan.warmup; i++) for (const c of commands) await plan.spawner.spawn(c.argv);
    const samples = commands.map(() => [] as number[]);
    for (let r = 0; r < plan.runs; r++) {
      // The order rotates run by run, so that a slow spell of the shared machine falls on all alike.
      for (let j = 0; j < commands.length; j++) {
        const k = (j + r) % commands.length;
        samples[k]!.push(await plan.spawner.spawn(commands[k]!.argv));
      }
      log(`run ${r + 1}/${plan.runs}`);
    }
    // The modules each node command loads: one more run each, untimed, with a preloaded hook.
    const modules = commands.map((c, k) => (c.argv[0] === node ? modulesOf(c.argv, join(dir, `modules-${k}.json`)) : undefined));
    return {
      runs: plan.runs,
      skipped,
      commands: commands.map((c, k) => ({
        name: c.name,
        argv: c.argv,
        stats: { ...summarize(samples[k]!), samples: samples[k]! },
        ...(modules[k] ? { modules: modules[k] } : {}),
      })),
    };
  } finally {
    // The CLI releases the Driver and leaves the pool active: take it down.
    try {
      const d = await Driver.init(ours, options);
      await d.cleanup();
    } catch (err) {
      log(`cleanup of ${ours}: ${String(err)}`);
    }
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
