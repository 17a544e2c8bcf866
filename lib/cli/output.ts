/**
 * What a command prints: aligned tables for people, one JSON document for scripts (--json),
 * and a one-line progress display on stderr that shows only on a terminal.
 */

/** A stream we write to; isTTY as Node's tty.WriteStream has it. */
export interface OutStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export type Align = 'left' | 'right';

export interface TableOptions {
  /** Per column; default left. */
  align?: Align[];
  /** Print the header row (default true). */
  header?: boolean;
}

/**
 * Columns separated by two spaces, each as wide as its widest cell; no trailing spaces.
 * Cells are printed as given (null and undefined as '-').
 */
export function formatTable(headers: string[], rows: ReadonlyArray<ReadonlyArray<unknown>>, opts: TableOptions = {}): string {
  const cell = (v: unknown): string => (v === null || v === undefined ? '-' : String(v));
  const body = rows.map((r) => headers.map((_, i) => cell(r[i])));
  const all = opts.header === false ? body : [headers, ...body];
  if (all.length === 0) return '';
  const widths = headers.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const lines = all.map((r) =>
    r
      .map((c, i) => {
        const last = i === r.length - 1;
        if (opts.align?.[i] === 'right') return c.padStart(widths[i]);
        return last ? c : c.padEnd(widths[i]);
      })
      .join('  ')
      .trimEnd(),
  );
  return `${lines.join('\n')}\n`;
}

/**
 * A single updating line on stderr while long work runs ("opening /var/lib/devmapper 3s").
 * Enabled only when the stream is a terminal: scripts and logs get nothing.
 */
export class Progress {
  private label = '';
  private startedAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private shown = false;
  readonly enabled: boolean;

  constructor(
    private readonly stream: OutStream,
    enabled: boolean = stream.isTTY === true,
    private readonly now: () => number = Date.now,
  ) {
    this.enabled = enabled;
  }

  /** Shows (or replaces) the line and keeps its elapsed time ticking. */
  start(label: string): void {
    if (!this.enabled) return;
    this.label = label;
    this.startedAt = this.now();
    this.draw();
    if (!this.timer) {
      this.timer = setInterval(() => this.draw(), 500);
      this.timer.unref();
    }
  }

  /** Changes the text, keeping the clock. */
  update(label: string): void {
    if (!this.enabled) return;
    if (!this.timer) return this.start(label);
    this.label = label;
    this.draw();
  }

  /** Clears the line. Idempotent. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.shown) this.stream.write('\r\x1b[K');
    this.shown = false;
  }

  /** Runs fn with the line shown, cleared after whatever happens. */
  async during<T>(label: string, fn: () => Promise<T>): Promise<T> {
    this.start(label);
    try {
      return await fn();
    } finally {
      this.stop();
    }
  }

  private draw(): void {
    const seconds = Math.floor((this.now() - this.startedAt) / 1000);
    let text = `${this.label}${seconds > 0 ? ` ${seconds}s` : ''}`;
    const width = this.stream.columns;
    if (width && text.length >= width) text = `${text.slice(0, width - 2)}…`;
    this.stream.write(`\r\x1b[K${text}`);
    this.shown = true;
  }
}

/** Where a command's results go. */
export class Output {
  readonly progress: Progress;

  constructor(
    readonly stdout: OutStream,
    readonly stderr: OutStream,
    /** --json: the command prints one JSON document and no table. */
    readonly json: boolean,
    progress?: Progress,
  ) {
    this.progress = progress ?? new Progress(stderr);
  }

  /** One JSON document on stdout (2-space indented, newline at the end). */
  document(value: unknown): void {
    this.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  table(headers: string[], rows: ReadonlyArray<ReadonlyArray<unknown>>, opts?: TableOptions): void {
    this.stdout.write(formatTable(headers, rows, opts));
  }

  line(text: string): void {
    this.stdout.write(`${text}\n`);
  }

  /** A remark for a person on stderr (warnings); never part of the data. */
  note(text: string): void {
    this.progress.stop();
    this.stderr.write(`devmapper: ${text}\n`);
  }

  /**
   * Prints `data` as JSON, or else as people read it: `human` gets the same data. Commands
   * call this once.
   */
  result<T>(data: T, human: (data: T) => void): void {
    if (this.json) this.document(data);
    else human(data);
  }
}
