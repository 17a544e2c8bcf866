'use strict';
// Adds up jest's JSON reports into the one closing line CI reads: "N passed, N failed, N skipped".
// A run that left no report (a crashed guest, say) counts as a failure.
const fs = require('node:fs');
const path = require('node:path');

const expected = ['unit.json', 'integration-udev-off.json', 'integration-udev-on.json'];
const files = process.argv.slice(2);
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
// Failed steps of scripts/test.sh (some outside jest: sanitizer build, package, benchmark smoke).
const failedSteps = Number(process.env.FAILED_STEPS ?? '0');
if (failedSteps > 0) console.log(`failed steps of scripts/test.sh: ${failedSteps}`);
failed += failedSteps;
console.log(`total: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
