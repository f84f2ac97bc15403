import { defineConfig } from 'vitest/config';

// WebGPU tests compile WGSL pipelines on lavapipe (an LLVM compile each, slower on a cold
// shader cache in CI): give tests and hooks a minute unless they say otherwise.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
