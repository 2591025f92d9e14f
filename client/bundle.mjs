// Bundles the client into dist/bin/ (one file for the dry-run path; the run path's code,
// msgpackr included, in a chunk loaded only when a VM really starts). Start-up time is
// dominated by module resolution, which bundling removes. node-pty stays external (native).
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

rmSync('dist/bin', { recursive: true, force: true });

await build({
  entryPoints: { xkvm: 'client/src/main.ts' },
  outdir: 'dist/bin',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['node-pty'],
  sourcemap: 'linked',
  logLevel: 'warning',
  chunkNames: 'chunks/[name]-[hash]',
});
