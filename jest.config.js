'use strict';
// Two projects: unit tests run anywhere without root; integration tests need root and a
// device-mapper kernel (the host's, or the sandbox kernel that scripts/test.sh boots).
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.test.json' }];
const common = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': tsJest },
  moduleFileExtensions: ['ts', 'js', 'json'],
  // The sandbox kernel mounts a tmpfs over /tmp: keep the transform cache in the tree so
  // the host run warms it for the guest.
  cacheDirectory: '<rootDir>/.cache/jest',
};
module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/test/integration/global-setup.ts',
      setupFilesAfterEnv: ['<rootDir>/test/integration/leak-check.ts'],
    },
  ],
};
