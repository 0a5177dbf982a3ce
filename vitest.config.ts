import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/fuzz/**", "node_modules/**"],
    testTimeout: 20000,
    hookTimeout: 60000,
  },
});
