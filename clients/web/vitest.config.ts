import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    environment: "happy-dom",
    include: ["test/**/*.test.ts"],
    // The drift check runs buf; everything else is in-process and quick.
    testTimeout: 20_000,
  },
});
