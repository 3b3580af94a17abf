// Mocha's spec reporter, plus a closing line "tests: N passed, N failed, N skipped"
// that CI and people can read at a glance.
const Mocha = require("mocha");

const { EVENT_RUN_END } = Mocha.Runner.constants;

class TrestleReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const { passes, failures, pending } = runner.stats ?? this.stats;
      // Printed after the spec reporter's epilogue.
      process.nextTick(() => {
        console.log(`tests: ${passes} passed, ${failures} failed, ${pending} skipped`);
      });
    });
  }
}

module.exports = TrestleReporter;
