import { describe, expect, it } from 'vitest';
import { diag, type Diagnostic } from '../compiler/diagnostic.ts';
import { LineMap } from '../compiler/span.ts';
import { CODES } from '../compiler/catalog.ts';
import {
  escapeGithubData,
  escapeGithubProperty,
  renderGithub,
  renderHuman,
  renderJson,
  renderSarif,
  renderSummaryLine,
} from '../compiler/render.ts';

const FILE = 'specs/bad.dl';
const TEXT = [
  'model lenet {',
  '  input [N, 28, 28, 1]',
  '  conv2d(6, 5)',
  '  max_pool2d(2)',
  '  conv2d(16, 5)',
  '  avg_pool2d(2)',
  '  dense(120, activation=tanh)',
  '}',
  '',
].join('\n');
const LM = new LineMap(TEXT);
const SOURCES = new Map([[FILE, TEXT]]);

function at(needle: string, text = TEXT, lm = LM, file = FILE) {
  const s = text.indexOf(needle);
  if (s < 0) throw new Error(`not found: ${needle}`);
  return lm.span(file, s, s + needle.length);
}

function rankError(): Diagnostic {
  return diag('DL0501', at('dense(120, activation=tanh)'), '`dense` expects a rank-2 input [N, F], found rank 4', {
    label: 'input is [N, 5, 5, 16]',
    expected: '[N, F]',
    found: '[N, 5, 5, 16]',
    notes: [{ message: '[N, 5, 5, 16] was produced by `avg_pool2d`', span: at('avg_pool2d(2)') }],
    help: 'insert `flatten` before `dense`',
  });
}

describe('renderHuman', () => {
  it('renders a single-line span with label, expected/found, notes and help', () => {
    expect(renderHuman([rankError()], SOURCES)).toBe(
      [
        'error[DL0501]: `dense` expects a rank-2 input [N, F], found rank 4',
        '  --> specs/bad.dl:7:3',
        '   |',
        ' 6 |   avg_pool2d(2)',
        ' 7 |   dense(120, activation=tanh)',
        '   |   ^^^^^^^^^^^^^^^^^^^^^^^^^^^ input is [N, 5, 5, 16]',
        '   |',
        '   = expected: [N, F]',
        '   =    found: [N, 5, 5, 16]',
        '   = note: [N, 5, 5, 16] was produced by `avg_pool2d` at specs/bad.dl:6:3',
        '   = help: insert `flatten` before `dense`',
        '',
        '',
      ].join('\n'),
    );
  });

  it('renders nothing for no diagnostics', () => {
    expect(renderHuman([], SOURCES)).toBe('');
  });

  it('renders a zero-width span at EOF as a single caret', () => {
    const text = 'model m {\n  input [N, 4]';
    const lm = new LineMap(text);
    const d = diag('DL0101', lm.span('eof.dl', text.length, text.length), 'expected `}`, found end of file', {
      label: 'file ends here',
    });
    expect(renderHuman([d], new Map([['eof.dl', text]]))).toBe(
      [
        'error[DL0101]: expected `}`, found end of file',
        '  --> eof.dl:2:15',
        '   |',
        ' 1 | model m {',
        ' 2 |   input [N, 4]',
        '   |               ^ file ends here',
        '',
        '',
      ].join('\n'),
    );
  });

  it('renders a multi-line span as the first line underlined to its end, then ...', () => {
    const text = 'model m {\n  input [N, 4]\n}\nunused = block {\n  dense(4)\n}\n';
    const lm = new LineMap(text);
    const start = text.indexOf('unused');
    const d = diag('DL0313', lm.span('m.dl', start, text.length - 1), '`unused` is never used', { label: 'defined here' });
    expect(d.span.endLine).toBe(6);
    expect(renderHuman([d], new Map([['m.dl', text]]))).toBe(
      [
        'warning[DL0313]: `unused` is never used',
        '  --> m.dl:4:1',
        '   |',
        ' 3 | }',
        ' 4 | unused = block {',
        '   | ^^^^^^^^^^^^^^^^... defined here',
        '',
        '',
      ].join('\n'),
    );
  });

  it('expands tabs to four spaces in both the line and the caret offset', () => {
    const text = 'model m {\n\tinput [N,\t4]\n}\n';
    const lm = new LineMap(text);
    const start = text.indexOf('[N');
    const d = diag('DL0509', lm.span('t.dl', start, start + '[N,\t4]'.length), 'bad input');
    expect(d.span.column).toBe(8);
    expect(renderHuman([d], new Map([['t.dl', text]]))).toBe(
      [
        'error[DL0509]: bad input',
        '  --> t.dl:2:8',
        '   |',
        ' 1 | model m {',
        ' 2 |     input [N,    4]',
        '   |           ^^^^^^^^^',
        '',
        '',
      ].join('\n'),
    );
  });

  it('widens the gutter for large line numbers and skips a blank line of context', () => {
    const lines = Array.from({ length: 120 }, () => '');
    lines[99] = '  dense(4)';
    const text = lines.join('\n');
    const lm = new LineMap(text);
    const start = text.indexOf('dense');
    const d = diag('DL0301', lm.span('big.dl', start, start + 5), 'unknown layer `dense`', { help: 'did you mean `dense`?' });
    expect(renderHuman([d], new Map([['big.dl', text]]))).toBe(
      [
        'error[DL0301]: unknown layer `dense`',
        '    --> big.dl:100:3',
        '     |',
        ' 100 |   dense(4)',
        '     |   ^^^^^',
        '     |',
        '     = help: did you mean `dense`?',
        '',
        '',
      ].join('\n'),
    );
  });

  it('renders header, location and trailers without a snippet when the source is missing', () => {
    expect(renderHuman([rankError()], new Map())).toBe(
      [
        'error[DL0501]: `dense` expects a rank-2 input [N, F], found rank 4',
        '  --> specs/bad.dl:7:3',
        '   = expected: [N, F]',
        '   =    found: [N, 5, 5, 16]',
        '   = note: [N, 5, 5, 16] was produced by `avg_pool2d` at specs/bad.dl:6:3',
        '   = help: insert `flatten` before `dense`',
        '',
        '',
      ].join('\n'),
    );
  });

  it('separates several diagnostics with a blank line', () => {
    const w = diag('DL0503', at('max_pool2d(2)'), 'window 2 does not divide 23');
    const out = renderHuman([w, rankError()], SOURCES);
    expect(out.startsWith('warning[DL0503]: window 2 does not divide 23\n  --> specs/bad.dl:4:3\n')).toBe(true);
    expect(out).toContain('^^^^^^^^^^^^^\n\nerror[DL0501]');
  });

  it('uses ANSI colors only when asked', () => {
    const plain = renderHuman([rankError()], SOURCES);
    const colored = renderHuman([rankError()], SOURCES, { color: true });
    expect(plain).not.toMatch(/\x1b/);
    expect(renderHuman([rankError()], SOURCES, { color: false })).toBe(plain);
    expect(colored).toContain('\x1b[1;31merror[DL0501]\x1b[0m');
    expect(colored).toContain('\x1b[1;34m 7 |\x1b[0m   dense(');
    expect(colored).toContain('\x1b[1;34m  -->\x1b[0m specs/bad.dl:7:3');
    // Stripping the escapes gives back the plain rendering.
    expect(colored.replace(/\x1b\[[0-9;]*m/g, '')).toBe(plain);
    const warn = renderHuman([diag('DL0313', at('conv2d(6, 5)'), 'unused')], SOURCES, { color: true });
    expect(warn).toContain('\x1b[1;33mwarning[DL0313]\x1b[0m');
  });

  it('neutralizes control characters in source lines', () => {
    const text = 'x\x1b[31m = 1\n';
    const lm = new LineMap(text);
    const out = renderHuman([diag('DL0102', lm.span('c.dl', 1, 2), 'unexpected character')], new Map([['c.dl', text]]));
    expect(out).not.toMatch(/\x1b/);
    expect(out).toContain(' 1 | x\uFFFD[31m = 1\n   |  ^\n');
  });
});

describe('renderSummaryLine', () => {
  it('counts errors and warnings with plurals', () => {
    const w = diag('DL0313', at('conv2d(6, 5)'), 'unused');
    expect(renderSummaryLine([rankError(), rankError(), w], 3)).toBe('checked 3 files: 2 errors, 1 warning');
    expect(renderSummaryLine([], 12)).toBe('checked 12 files: no problems');
    expect(renderSummaryLine([rankError()], 1)).toBe('checked 1 file: 1 error');
    expect(renderSummaryLine([w, w], 1)).toBe('checked 1 file: 2 warnings');
  });
});

describe('renderJson', () => {
  it('renders stable pretty JSON with optional keys omitted', () => {
    const plain = diag('DL0301', at('conv2d(16, 5)'), 'unknown layer');
    const out = renderJson([rankError(), plain], 2);
    expect(out.endsWith('}\n')).toBe(true);
    expect(out).toContain('\n  "version": 1,\n');
    const doc = JSON.parse(out);
    expect(Object.keys(doc)).toEqual(['version', 'files', 'errors', 'warnings', 'diagnostics']);
    expect(doc).toMatchObject({ version: 1, files: 2, errors: 2, warnings: 0 });
    expect(doc.diagnostics[0]).toEqual({
      code: 'DL0501',
      severity: 'error',
      title: 'wrong input rank',
      message: '`dense` expects a rank-2 input [N, F], found rank 4',
      file: 'specs/bad.dl',
      line: 7,
      column: 3,
      endLine: 7,
      endColumn: 30,
      label: 'input is [N, 5, 5, 16]',
      notes: [{ message: '[N, 5, 5, 16] was produced by `avg_pool2d`', file: 'specs/bad.dl', line: 6, column: 3 }],
      help: 'insert `flatten` before `dense`',
      expected: '[N, F]',
      found: '[N, 5, 5, 16]',
    });
    expect(Object.keys(doc.diagnostics[1])).toEqual([
      'code', 'severity', 'title', 'message', 'file', 'line', 'column', 'endLine', 'endColumn', 'notes',
    ]);
    expect(renderJson([rankError(), plain], 2)).toBe(out);
  });
});

describe('renderSarif', () => {
  const files = ['specs/bad.dl', 'specs/dir with space/ok.dl'];

  it('produces a valid SARIF 2.1.0 log', () => {
    const w = diag('DL0503', at('max_pool2d(2)'), 'window 2 does not divide 23', { severity: 'note' });
    const log = JSON.parse(renderSarif([rankError(), w], { toolVersion: '1.2.3', files }));
    expect(log.$schema).toBe('https://json.schemastore.org/sarif-2.1.0.json');
    expect(log.version).toBe('2.1.0');
    expect(log.runs).toHaveLength(1);
    const run = log.runs[0];
    expect(run.columnKind).toBe('utf16CodeUnits');
    expect(run.tool.driver.name).toBe('dlc');
    expect(run.tool.driver.version).toBe('1.2.3');

    const rules: { id: string; name: string; shortDescription: { text: string }; defaultConfiguration: { level: string } }[] =
      run.tool.driver.rules;
    expect(rules.map((r) => r.id).sort()).toEqual([...CODES].sort());
    expect(new Set(rules.map((r) => r.id)).size).toBe(rules.length);
    const r501 = rules.find((r) => r.id === 'DL0501')!;
    expect(r501).toEqual({
      id: 'DL0501',
      name: 'WrongInputRank',
      shortDescription: { text: 'wrong input rank' },
      defaultConfiguration: { level: 'error' },
    });
    expect(rules.find((r) => r.id === 'DL0701')!.name).toBe('CrossEntropyNeedsAProbabilityOutput');
    expect(rules.find((r) => r.id === 'DL0313')!.defaultConfiguration.level).toBe('warning');
    for (const r of rules) expect(r.name).toMatch(/^[A-Z][A-Za-z0-9]*$/);

    expect(run.artifacts).toEqual([
      { location: { uri: 'specs/bad.dl', uriBaseId: '%SRCROOT%' } },
      { location: { uri: 'specs/dir%20with%20space/ok.dl', uriBaseId: '%SRCROOT%' } },
    ]);

    expect(run.results).toHaveLength(2);
    for (const res of run.results) {
      expect(rules[res.ruleIndex]!.id).toBe(res.ruleId);
      const reg = res.locations[0].physicalLocation.region;
      for (const k of ['startLine', 'startColumn', 'endLine', 'endColumn']) expect(reg[k]).toBeGreaterThanOrEqual(1);
    }
    const [e, n] = run.results;
    expect(e.level).toBe('error');
    expect(n.level).toBe('note');
    expect(e.message.text).toBe('`dense` expects a rank-2 input [N, F], found rank 4 help: insert `flatten` before `dense`');
    expect(n.message.text).toBe('window 2 does not divide 23');
    expect(e.locations[0].physicalLocation).toEqual({
      artifactLocation: { uri: 'specs/bad.dl', uriBaseId: '%SRCROOT%', index: 0 },
      region: { startLine: 7, startColumn: 3, endLine: 7, endColumn: 30 },
    });
    expect(e.relatedLocations).toEqual([
      {
        id: 0,
        physicalLocation: {
          artifactLocation: { uri: 'specs/bad.dl', uriBaseId: '%SRCROOT%', index: 0 },
          region: { startLine: 6, startColumn: 3, endLine: 6, endColumn: 16 },
        },
        message: { text: '[N, 5, 5, 16] was produced by `avg_pool2d`' },
      },
    ]);
    expect(n.relatedLocations).toBeUndefined();
  });

  it('uses forward slashes and file URIs for absolute paths', () => {
    const text = 'x\n';
    const lm = new LineMap(text);
    const rel = diag('DL0102', lm.span('specs\\win\\a.dl', 0, 1), 'unexpected character');
    const abs = diag('DL0102', lm.span('/abs/a.dl', 0, 1), 'unexpected character');
    const drive = diag('DL0102', lm.span('C:\\x\\a.dl', 0, 1), 'unexpected character');
    const log = JSON.parse(renderSarif([rel, abs, drive], { toolVersion: '0', files: [] }));
    const uris = log.runs[0].results.map((r: any) => r.locations[0].physicalLocation.artifactLocation);
    expect(uris).toEqual([{ uri: 'specs/win/a.dl', uriBaseId: '%SRCROOT%' }, { uri: 'file:///abs/a.dl' }, { uri: 'file:///C:/x/a.dl' }]);
  });
});

describe('renderGithub', () => {
  it('renders one workflow command per diagnostic', () => {
    const w = diag('DL0313', at('conv2d(6, 5)'), 'unused');
    const n = diag('DL0313', at('conv2d(6, 5)'), 'fyi', { severity: 'note' });
    expect(renderGithub([rankError(), w, n])).toBe(
      '::error file=specs/bad.dl,line=7,col=3,endLine=7,endColumn=30,title=DL0501 wrong input rank::' +
        '`dense` expects a rank-2 input [N, F], found rank 4%0Ahelp: insert `flatten` before `dense`\n' +
        '::warning file=specs/bad.dl,line=3,col=3,endLine=3,endColumn=15,title=DL0313 unused value::unused\n' +
        '::notice file=specs/bad.dl,line=3,col=3,endLine=3,endColumn=15,title=DL0313 unused value::fyi\n',
    );
    expect(renderGithub([])).toBe('');
  });

  it('escapes data and properties', () => {
    expect(escapeGithubData('100% a\r\nb: c, d')).toBe('100%25 a%0D%0Ab: c, d');
    expect(escapeGithubProperty('a%b:c,d\ne')).toBe('a%25b%3Ac%2Cd%0Ae');
    const text = 'x\n';
    const lm = new LineMap(text);
    const d = diag('DL0102', lm.span('dir:a,b/50%.dl', 0, 1), 'line one\nline two: 100%', { help: 'remove it, then retry' });
    expect(renderGithub([d])).toBe(
      '::error file=dir%3Aa%2Cb/50%25.dl,line=1,col=1,endLine=1,endColumn=2,title=DL0102 unexpected character::' +
        'line one%0Aline two: 100%25%0Ahelp: remove it, then retry\n',
    );
  });
});
