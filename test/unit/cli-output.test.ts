/** Tables, JSON documents and the progress line of the devmapper command. */
import { formatTable, Output, Progress } from '../../lib/cli/output';

function capture(isTTY?: boolean): { write(s: string): void; text: string; isTTY?: boolean } {
  return {
    text: '',
    isTTY,
    write(s: string) {
      this.text += s;
    },
  };
}

describe('devmapper output', () => {
  test('tables: columns aligned on the widest cell, two spaces apart, no trailing blanks', () => {
    const text = formatTable(
      ['ID', 'DEVICE ID', 'SIZE', 'MOUNTED'],
      [
        ['ctr', 4, 67108864, '/r/mnt/ctr'],
        ['ctr-init', 13, 1024, null],
      ],
      { align: ['left', 'right', 'right', 'left'] },
    );
    expect(text).toBe(['ID        DEVICE ID      SIZE  MOUNTED', 'ctr               4  67108864  /r/mnt/ctr', 'ctr-init         13      1024  -', ''].join('\n'));
    expect(formatTable(['K', 'V'], [['Pool Name', 'p'], ['Udev', 'true']], { header: false })).toBe('Pool Name  p\nUdev       true\n');
    expect(formatTable(['A', 'B'], [])).toBe('A  B\n');
    expect(formatTable(['A'], [], { header: false })).toBe('');
  });

  test('--json: one parseable document on stdout, nothing else', () => {
    const stdout = capture();
    const stderr = capture();
    const out = new Output(stdout, stderr, true);
    const data = { rows: [['Pool Name', 'p']], status: { data: { usedBytes: 1 } } };
    out.result(data, () => out.line('human'));
    expect(JSON.parse(stdout.text)).toEqual(data);
    expect(stdout.text.endsWith('}\n')).toBe(true);
    expect(stderr.text).toBe('');
  });

  test('without --json the human form is printed instead', () => {
    const stdout = capture();
    const out = new Output(stdout, capture(), false);
    out.result({ rootfs: '/r/mnt/x/rootfs' }, (r) => out.line(r.rootfs));
    expect(stdout.text).toBe('/r/mnt/x/rootfs\n');
  });

  test('progress is silent when stderr is not a terminal', async () => {
    for (const stream of [capture(undefined), capture(false)]) {
      const p = new Progress(stream);
      expect(p.enabled).toBe(false);
      await p.during('opening /r', async () => {
        p.update('removing 1/3');
        await new Promise((r) => setTimeout(r, 600));
      });
      p.stop();
      expect(stream.text).toBe('');
    }
  });

  test('progress on a terminal: one line rewritten in place, elapsed seconds, cleared at the end', async () => {
    const tty = capture(true);
    let now = 1000;
    const p = new Progress(tty, undefined, () => now);
    expect(p.enabled).toBe(true);
    p.start('opening /r');
    now += 2500;
    p.update('removing a (1/2)');
    p.stop();
    expect(tty.text).toBe('\r\x1b[Kopening /r\r\x1b[Kremoving a (1/2) 2s\r\x1b[K');
    expect(tty.text).not.toContain('\n');
  });

  test('a note clears the progress line first and goes to stderr', () => {
    const stdout = capture();
    const stderr = capture(true);
    const out = new Output(stdout, stderr, false);
    out.progress.start('working');
    out.note('warning: loopback');
    expect(stderr.text).toBe('\r\x1b[Kworking\r\x1b[Kdevmapper: warning: loopback\n');
    expect(stdout.text).toBe('');
  });
});
