/** Where the npm packages that ship the data sets are installed (no downloads, ever). */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { DataError } from './errors.ts';

const require = createRequire(import.meta.url);

/** The root folder of an installed package. */
export function packageDir(name: string): string {
  try {
    return path.dirname(require.resolve(`${name}/package.json`));
  } catch {
    throw new DataError(`the data package \`${name}\` is not installed: run \`npm install\` in dlc's folder`);
  }
}
