'use strict';
// Adds up jest's JSON reports into the one closing line CI reads: "N passed, N failed, N skipped".
// A run that left no report (a crashed guest, say) counts as a failure.
//
//   node scripts/summarize-tests.js [--expect NAME,...] REPORT.json...
//
// --expect  the reports the run must have left, by name without .json (default: unit,
//           integration-udev-off, integration-udev-on, those of scripts/test.sh)
const fs = require('node:fs');
const path = require('node:path');

let args = process.argv.slice(2);
let expected = ['unit.json', 'integration-udev-off.json', 'integration-udev-on.json'];
if (args[0] === '--expect') {
  expected = String(args[1] ?? '')
    .split(',')
    .filter(Boolean)
    .map((n) => `${n}.json`);
  args = args.slice(2);
}
const files = args;
let passed = 0;
let failed = 0;
let skipped = 0;
let missing = 0;
for (const name of expected) {
  const file = files.find((f) => path.basename(f) === name);
  if (!file || !fs.existsSync(file)) {
    console.log(`no report from ${name.replace(/\.json$/, '')}: counted as failed`);
    missing++;
    continue;
  }
  const r = JSON.parse(fs.readFileSync(file, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests + r.numRuntimeErrorTestSuites;
  skipped += r.numPendingTests + r.numTodoTests;
  console.log(`${name.replace(/\.json$/, '')}: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
}
failed += missing;
// Failed steps of the calling script (some outside jest: sanitizer build, package, benchmark smoke).
const failedSteps = Number(process.env.FAILED_STEPS ?? '0');
if (failedSteps > 0) console.log(`failed steps: ${failedSteps}`);
failed += failedSteps;
console.log(`total: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
