// Bundles the client into one CommonJS file, dist/bin/xkvm.cjs (and xkvm-bridge-helper into
// dist/bin/xkvm-bridge-helper.cjs, the same way). Start-up time is dominated by
// module loading: one file removes module resolution, and CommonJS avoids Node 20's ESM loader
// (measured: ~1.2× `node -e 1` as split ESM chunks, ~1.05–1.1× as one CJS file). The run
// path's modules are still evaluated only when a VM really starts (lazy requires); node-pty
// stays external (native).
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

rmSync('dist/bin', { recursive: true, force: true });
const common = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external: ['node-pty'],
  sourcemap: 'linked',
  logLevel: 'warning',
  // client/src/native/fdpass.ts reads import.meta.url only when __filename is absent (tsc's ESM
  // output); in this CommonJS bundle it never is.
  define: { 'import.meta.url': 'undefined' },
};
await build({ ...common, entryPoints: ['client/src/main.ts'], outfile: 'dist/bin/xkvm.cjs' });
await build({ ...common, entryPoints: ['client/src/bridge-helper/main.ts'], outfile: 'dist/bin/xkvm-bridge-helper.cjs' });
