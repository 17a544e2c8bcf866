/**
 * Preloaded (`node -r dist-bench/cli-modules.js ...`) into one untimed run of each command of
 * the cli section: at exit, writes how many modules the process loaded (require's cache:
 * JavaScript files, JSON, the addon), and how many of them are the package's own (not under
 * node_modules/: dist/, and dist-bench/cli-ref/ for a --cli-ref command line), to the
 * file named by DEVMAPPER_BENCH_MODULES.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const out = process.env.DEVMAPPER_BENCH_MODULES;
const root = resolve(__dirname, '..');
if (out) {
  process.on('exit', () => {
    const files = Object.keys(require.cache).filter((f) => f !== __filename);
    const own = files.filter((f) => f.startsWith(`${root}/`) && !f.startsWith(`${root}/node_modules/`));
    const addon = files.some((f) => f.endsWith('.node'));
    writeFileSync(out, JSON.stringify({ modules: files.length, own: own.length, addon }));
  });
}
