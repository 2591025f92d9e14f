// Bundles the client into one CommonJS file, dist/bin/xkvm.cjs. Start-up time is dominated by
// module loading: one file removes module resolution, and CommonJS avoids Node 20's ESM loader
// (measured: ~1.2× `node -e 1` as split ESM chunks, ~1.05–1.1× as one CJS file). The run
// path's modules are still evaluated only when a VM really starts (lazy requires); node-pty
// stays external (native).
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

rmSync('dist/bin', { recursive: true, force: true });
await build({
  entryPoints: ['client/src/main.ts'],
  outfile: 'dist/bin/xkvm.cjs',
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external: ['node-pty'],
  sourcemap: 'linked',
  logLevel: 'warning',
});
