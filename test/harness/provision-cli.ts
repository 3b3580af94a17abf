// `npm run provision`: install/build everything the e2e tests need, and say what is there.
import { provisionAll } from "./provision.js";

const tools = await provisionAll();
let missing = 0;
for (const tool of tools) {
  if (tool.available) console.log(`ok       ${tool.name} ${tool.version} (${tool.binary})`);
  else {
    // A registry's refusal is outside our control and is reported, not failed on (docs/testing.md).
    if (!tool.refusedByRegistry) missing++;
    console.log(`missing  ${tool.name}: ${tool.reason}`);
  }
}
process.exitCode = missing && process.env.CI === "true" ? 1 : 0;
