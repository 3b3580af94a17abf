// Root hooks shared by every test file. Kept empty of global state on purpose:
// each e2e suite starts and stops its own harness instances.
export const mochaHooks = {};
