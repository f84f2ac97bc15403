import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { collectSpecFiles, readSpecFile } from '../compiler/files.ts';

let root: string;

function write(rel: string, content: string | Uint8Array = 'model m {}\n'): void {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'dlc-files-'));
  write('specs/a.dl');
  write('specs/b.dl');
  write('specs/README.md', '# specs\n');
  write('specs/nested/c.dl');
  write('specs/nested/deeper/d.dl');
  write('specs/nested/notes.txt', 'x');
  write('specs/node_modules/pkg/skip.dl');
  write('specs/.hidden/skip.dl');
  write('specs/.dot.dl'); // a dot-file (not a folder) is still a spec
  write('other/e.dl');
  write('other/f.DL'); // extension match is case-sensitive
  write('bin/blob.dl', new Uint8Array([0x6d, 0x00, 0x01, 0x02]));
  write('bin/latin1.dl', new Uint8Array([0x6d, 0x6f, 0x64, 0xe9, 0x6c]));
  write('bom.dl', new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('model é {}\n')]));
  fs.mkdirSync(path.join(root, 'empty/sub'), { recursive: true });
  write('empty/sub/readme.txt', 'nothing');
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

describe('collectSpecFiles', () => {
  it('walks directories recursively for .dl files, skipping node_modules and dot-folders', () => {
    expect(collectSpecFiles(['specs'], root)).toEqual({
      files: ['specs/.dot.dl', 'specs/a.dl', 'specs/b.dl', 'specs/nested/c.dl', 'specs/nested/deeper/d.dl'],
      errors: [],
    });
  });

  it('takes explicitly named files whatever their extension, and dedupes and sorts', () => {
    expect(collectSpecFiles(['specs/README.md', 'other', './specs/a.dl', 'specs/nested/../a.dl', 'specs/b.dl'], root)).toEqual({
      files: ['other/e.dl', 'specs/README.md', 'specs/a.dl', 'specs/b.dl'],
      errors: [],
    });
  });

  it('normalizes trailing slashes and ./ prefixes', () => {
    expect(collectSpecFiles(['./specs/nested/'], root).files).toEqual(['specs/nested/c.dl', 'specs/nested/deeper/d.dl']);
  });

  it('keeps absolute paths absolute', () => {
    const abs = path.join(root, 'other');
    expect(collectSpecFiles([abs], root).files).toEqual([path.join(abs, 'e.dl').split(path.sep).join('/')]);
  });

  it('reports missing paths and directories without .dl files', () => {
    const r = collectSpecFiles(['specs/nope.dl', 'empty/', 'specs/a.dl'], root);
    expect(r.files).toEqual(['specs/a.dl']);
    expect(r.errors).toEqual(['no such file or directory: specs/nope.dl', 'no .dl files in directory: empty/']);
  });

  it('expands globs with ** * and ?', () => {
    expect(collectSpecFiles(['specs/**/*.dl'], root)).toEqual({
      files: ['specs/a.dl', 'specs/b.dl', 'specs/nested/c.dl', 'specs/nested/deeper/d.dl'],
      errors: [],
    });
    expect(collectSpecFiles(['specs/*.dl'], root).files).toEqual(['specs/a.dl', 'specs/b.dl']);
    expect(collectSpecFiles(['specs/?.dl', 'other/*'], root).files).toEqual(['other/e.dl', 'other/f.DL', 'specs/a.dl', 'specs/b.dl']);
    expect(collectSpecFiles(['**/deeper/*.dl'], root).files).toEqual(['specs/nested/deeper/d.dl']);
    expect(collectSpecFiles(['specs/*/c.dl', 'specs/nested/**'], root).files).toEqual([
      'specs/nested/c.dl',
      'specs/nested/deeper/d.dl',
      'specs/nested/notes.txt',
    ]);
    // explicit dot segments and node_modules are reachable when written out
    expect(collectSpecFiles(['specs/.hidden/*.dl', 'specs/node_modules/**/*.dl'], root).files).toEqual([
      'specs/.hidden/skip.dl',
      'specs/node_modules/pkg/skip.dl',
    ]);
    const absPattern = path.join(root, 'other').split(path.sep).join('/') + '/*.dl';
    expect(collectSpecFiles([absPattern], root).files).toEqual([absPattern.replace('*.dl', 'e.dl')]);
  });

  it('reports a glob that matches nothing', () => {
    expect(collectSpecFiles(['nowhere/**/*.dl', 'specs/*.xyz'], root)).toEqual({
      files: [],
      errors: ['no files match: nowhere/**/*.dl', 'no files match: specs/*.xyz'],
    });
  });
});

describe('readSpecFile', () => {
  it('reads text and strips a UTF-8 BOM', () => {
    expect(readSpecFile(path.join(root, 'bom.dl'))).toEqual({ text: 'model é {}\n' });
    expect(readSpecFile(path.join(root, 'specs/a.dl'))).toEqual({ text: 'model m {}\n' });
  });

  it('rejects binary content and invalid UTF-8', () => {
    const blob = path.join(root, 'bin/blob.dl');
    const latin1 = path.join(root, 'bin/latin1.dl');
    expect(readSpecFile(blob)).toEqual({ error: `not a text file: ${blob}` });
    expect(readSpecFile(latin1)).toEqual({ error: `not a text file: ${latin1}` });
  });

  it('rejects missing files and directories', () => {
    const missing = path.join(root, 'nope.dl');
    expect(readSpecFile(missing)).toEqual({ error: `no such file or directory: ${missing}` });
    const dir = path.join(root, 'specs');
    expect(readSpecFile(dir)).toEqual({ error: `is a directory: ${dir}` });
  });
});
