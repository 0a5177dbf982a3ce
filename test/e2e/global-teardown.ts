/**
 * Global setup/teardown of the end-to-end run: stops every process a suite started and did not
 * stop (a crashed or killed test worker skips its afterAll), by the pids registered in
 * build/e2e/pids/ — only processes that still carry the mark they were started with.
 */
import { stopLeftovers } from "./support/processes.js";

export async function setup(): Promise<void> {
  const stopped = await stopLeftovers();
  if (stopped.length > 0)
    console.warn(`e2e: stopped processes left by an earlier run: ${stopped.join(", ")}`);
}

export async function teardown(): Promise<void> {
  const stopped = await stopLeftovers();
  if (stopped.length > 0) console.warn(`e2e: stopped processes a suite left running: ${stopped.join(", ")}`);
}
