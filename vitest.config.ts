import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Media tests spawn FFmpeg and decode in real time: run files one at a time on 2 cores
    // so that timing-sensitive assertions (frame rate, tone levels) are not starved.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ["default"],
  },
});
