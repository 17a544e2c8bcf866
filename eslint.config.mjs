import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The library's layers, bottom up, and the folders each may import (through their index
// only). errors.ts is shared by all; the addon (native.ts) is loaded only by the layers that
// speak to the kernel. A folder missing here, or an import against this table, fails lint.
const layers = {
  util: [],
  log: ['native'],
  sys: ['util', 'native'],
  dm: ['util', 'log', 'sys', 'native'],
  layers: ['util', 'log', 'sys'],
  sandbox: ['util', 'log'],
  deviceset: ['util', 'log', 'sys', 'dm', 'layers'],
  driver: ['util', 'log', 'sys', 'dm', 'layers', 'deviceset'],
  // containerd's model over the DeviceSet's public API only.
  snapshotter: ['util', 'log', 'deviceset'],
  // Images into snapshots: the Snapshotter's public API, layers' apply, sys' mount.
  images: ['util', 'log', 'sys', 'layers', 'snapshotter'],
  cli: ['util', 'log', 'sys', 'dm', 'layers', 'deviceset', 'driver', 'snapshotter', 'images', 'sandbox'],
  // The demo is an application of the public API: the package root only.
  demo: ['index'],
};
const topLevel = ['errors', 'native', 'index', 'internal'];

function layerRules(folder, allowed) {
  const others = [...Object.keys(layers), ...topLevel].filter((f) => f !== folder && f !== 'errors' && !allowed.includes(f));
  return {
    files: [`lib/${folder}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^\\.\\./[^./]+/', message: 'Import another folder of lib/ through its index (../<folder>), never one of its files.' },
            { regex: '^\\.\\./\\.\\.', message: 'lib/ never imports from outside lib/.' },
            ...(others.length
              ? [{ regex: `^\\.\\./(${others.join('|')})$`, message: `lib/${folder} may import only ${['errors', ...allowed].join(', ')} (the layers below it).` }]
              : []),
          ],
        },
      ],
    },
  };
}

export default tseslint.config(
  { ignores: ['dist/', 'dist-bench/', 'build/', 'node_modules/', '.cache/', 'coverage/', 'docs/api/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', process: 'readonly', console: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  ...Object.entries(layers).map(([folder, allowed]) => layerRules(folder, allowed)),
  {
    // Every folder of lib/ is in the table above.
    files: ['lib/*/**/*.ts'],
    ignores: Object.keys(layers).map((f) => `lib/${f}/**`),
    rules: { 'no-restricted-syntax': ['error', { selector: 'Program', message: 'A new folder of lib/: add it to the layer table in eslint.config.mjs.' }] },
  },
  {
    // The benchmarks use the package as users do, plus the one documented internal entry.
    files: ['bench/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^\\.\\./(dist|lib)/(?!(dm|sys|deviceset|driver|layers|log|snapshotter|internal)$)', message: 'bench/ imports the package root, its public folders, or dist/internal only.' }] },
      ],
    },
  },
);
