#!/usr/bin/env node
// The dlc command. Runs the compiled JavaScript in dist/ (built by `npm run build`, which
// `npm install` runs) when it is newer than every source file, else the TypeScript sources
// through tsx (set DLC_FROM_SOURCE=1 to force that).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = `${root}dist/compiler/cli.js`;

function newestSource() {
  let newest = 0;
  for (const dir of ['grammar', 'compiler', 'runtime']) {
    if (!existsSync(root + dir)) continue;
    for (const f of readdirSync(root + dir, { recursive: true })) {
      if (String(f).endsWith('.ts')) newest = Math.max(newest, statSync(`${root}${dir}/${f}`).mtimeMs);
    }
  }
  return newest;
}

let mod;
if (!process.env.DLC_FROM_SOURCE && existsSync(built) && statSync(built).mtimeMs >= newestSource()) {
  mod = await import(built);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  mod = await import(`${root}compiler/cli.ts`);
}
process.exitCode = await mod.main(process.argv.slice(2), mod.processIo());
