/**
 * Drives bench/raw/dm_raw_bench in its --serve form: one long-lived process, one request line
 * per batch, one JSON line back. The process stays warm for the whole run, so its first
 * operation costs no more than the addon's (which lives in a warm node process too).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';

export interface RawReply {
  op?: string;
  count?: number;
  udevSync?: boolean;
  ns?: number[];
  /** lifecycle: per operation, ns of each step. */
  steps?: number[][];
  error?: string;
  errno?: number;
  index?: number;
  status?: number;
  logs?: string[];
  ready?: boolean;
  library?: string;
}

export class RawBenchError extends Error {
  override name = 'RawBenchError';
  constructor(
    readonly request: string,
    readonly reply: RawReply,
  ) {
    super(
      `dm_raw_bench: ${request.replace(/\t/g, ' ')}: ${reply.error ?? 'no reply'}` +
        (reply.index !== undefined ? ` (operation ${reply.index} of the batch)` : '') +
        (reply.logs?.length ? ` [${reply.logs.join('; ')}]` : ''),
    );
  }
}

export class RawClient {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: Interface;
  private readonly pending: ((line: string | null) => void)[] = [];
  private readonly queued: string[] = [];
  private closed = false;
  private stderr = '';

  private constructor(binary: string, pool: string, env: NodeJS.ProcessEnv) {
    this.child = spawn(binary, ['--serve', pool], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.on('error', (err) => {
      // Cannot start (or lost) the program: every waiter sees the end of its output.
      this.stderr += ` ${err.message}`;
      this.closed = true;
      for (const w of this.pending.splice(0)) w(null);
    });
    // A write to a program that has gone fails through its output's end, not here.
    this.child.stdin.on('error', () => undefined);
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-2000);
    });
    this.lines = createInterface({ input: this.child.stdout });
    this.lines.on('line', (line) => {
      const waiter = this.pending.shift();
      if (waiter) waiter(line);
      else this.queued.push(line);
    });
    this.lines.on('close', () => {
      this.closed = true;
      for (const w of this.pending.splice(0)) w(null);
    });
  }

  /** Starts the program and waits for its ready line. */
  static async start(binary: string, pool: string, env: NodeJS.ProcessEnv = process.env): Promise<{ client: RawClient; hello: RawReply }> {
    const client = new RawClient(binary, pool, env);
    const line = await client.nextLine();
    if (line === null) throw new Error(`dm_raw_bench did not start: ${client.stderr.trim() || 'no output'}`);
    const hello = JSON.parse(line) as RawReply;
    if (!hello.ready) throw new Error(`dm_raw_bench: unexpected first line ${line}`);
    return { client, hello };
  }

  private nextLine(): Promise<string | null> {
    const q = this.queued.shift();
    if (q !== undefined) return Promise.resolve(q);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => this.pending.push(resolve));
  }

  private async request(line: string): Promise<RawReply> {
    if (this.closed) throw new RawBenchError(line, { error: `the process has ended ${this.stderr.trim()}` });
    this.child.stdin.write(`${line}\n`);
    const reply = await this.nextLine();
    if (reply === null) throw new RawBenchError(line, { error: `the process ended ${this.stderr.trim()}` });
    const parsed = JSON.parse(reply) as RawReply;
    if (parsed.error !== undefined || !parsed.ns) throw new RawBenchError(line, parsed);
    return parsed;
  }

  /** One batch of an operation: `op count key=value...`; per-operation ns. */
  async batch(op: string, count: number, params: Record<string, string | number | undefined>): Promise<number[]> {
    const kv = Object.entries(params)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${String(v)}`);
    const reply = await this.request([op, String(count), ...kv].join(' '));
    return reply.ns as number[];
  }

  /** A batch of lifecycle operations: total ns and each step's ns, per operation. */
  async lifecycle(count: number, params: Record<string, string | number | undefined>): Promise<{ ns: number[]; steps: number[][] }> {
    const kv = Object.entries(params)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${String(v)}`);
    const line = ['lifecycle', String(count), ...kv].join(' ');
    const reply = await this.request(line);
    if (!reply.steps || reply.steps.length !== count) throw new RawBenchError(line, { ...reply, error: 'no step times in the reply' });
    return { ns: reply.ns as number[], steps: reply.steps };
  }

  /** Runs argv once (posix_spawn, output drained, exit status checked); ns from spawn to exit. */
  async spawn(argv: string[]): Promise<number> {
    if (argv.some((a) => a.includes('\t') || a.includes('\n'))) throw new Error('spawn: arguments may not hold tabs or newlines');
    const reply = await this.request(['spawn', ...argv].join('\t'));
    return (reply.ns as number[])[0] as number;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end('quit\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}
