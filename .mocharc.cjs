// One mocha run covers unit and e2e tests, so `npm test` ends on a single summary line.
// Tests load TypeScript sources directly (tsx), and workspace packages resolve to their
// src/ through the "trestle-src" export condition: no build step in the edit-test loop.
module.exports = {
  "node-option": ["import=tsx", "conditions=trestle-src"],
  spec: ["packages/*/test/**/*.test.ts", "test/e2e/**/*.test.ts"],
  "watch-files": ["packages/*/src/**/*.ts", "packages/*/test/**/*.ts", "test/**/*.ts"],
  require: [require.resolve("./test/mocha-hooks.ts")],
  reporter: require.resolve("./test/reporter.cjs"),
  timeout: 20000,
  exit: true,
};
