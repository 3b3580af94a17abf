// `npm test` runs unit and e2e specs in one mocha run, so it ends on a single summary line.
// Specs are named on the command line (package.json scripts): mocha would merge a `spec` here with them.
// Tests load TypeScript sources directly (tsx), and workspace packages resolve to their
// src/ through the "trestle-src" export condition: no build step in the edit-test loop.
module.exports = {
  "node-option": ["import=tsx", "conditions=trestle-src"],
  "watch-files": ["packages/*/src/**/*.ts", "packages/*/test/**/*.ts", "test/**/*.ts"],
  require: [require.resolve("./test/mocha-hooks.ts")],
  reporter: require.resolve("./test/reporter.cjs"),
  timeout: 20000,
  exit: true,
};
