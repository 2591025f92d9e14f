#!/usr/bin/env node
/** Entry point of `xkvm-bridge-helper` (bundled to dist/bin/xkvm-bridge-helper.cjs). */
import { bridgeHelper } from './bridge-helper.js';

bridgeHelper(process.argv.slice(2), { writeError: (line) => process.stderr.write(line) }).then(
  (status) => process.exit(status),
  () => process.exit(1),
);
