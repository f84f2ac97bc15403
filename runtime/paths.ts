/** Paths of runtime modules that generated code imports, from source (.ts) or from dist/ (.js). */
import { existsSync } from 'node:fs';
import { relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The file of a runtime module: the .ts source when it exists, else the built .js beside it. */
export function sourceOrBuilt(url: URL): string {
  const ts = fileURLToPath(url);
  if (existsSync(ts)) return ts;
  const js = ts.replace(/\.ts$/, '.js');
  return existsSync(js) ? js : ts;
}

/** How a module in `dir` imports `file`: a relative specifier (`../../runtime/tfjs/index.ts`). */
export function importPathFrom(dir: string, file: string): string {
  let r = relative(resolve(dir), file).split(sep).join('/');
  if (!r.startsWith('.')) r = `./${r}`;
  return r;
}
