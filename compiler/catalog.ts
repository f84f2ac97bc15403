/**
 * The one catalog of diagnostics. Codes are stable: never reuse or renumber one.
 * Every code here has at least one golden case under test/cases/ (a test enforces it).
 *
 *   DL01xx  syntax (lexer, parser)
 *   DL02xx  files and imports
 *   DL03xx  names
 *   DL04xx  parameters
 *   DL05xx  shapes
 *   DL07xx  training semantics
 *   DL08xx  target limits
 */
export const CATALOG = {
  // syntax
  DL0101: { severity: 'error', title: 'syntax error' },
  DL0102: { severity: 'error', title: 'unexpected character' },
  DL0103: { severity: 'error', title: 'unterminated string' },
  DL0104: { severity: 'error', title: 'unterminated block comment' },
  // files and imports
  DL0201: { severity: 'error', title: 'cannot read imported file' },
  DL0202: { severity: 'error', title: 'import cycle' },
  // names
  DL0301: { severity: 'error', title: 'unknown layer' },
  DL0302: { severity: 'error', title: 'undefined value' },
  DL0303: { severity: 'error', title: 'duplicate definition' },
  DL0304: { severity: 'error', title: 'unknown parameter' },
  DL0305: { severity: 'error', title: 'unknown activation' },
  DL0306: { severity: 'error', title: 'unknown loss' },
  DL0307: { severity: 'error', title: 'unknown optimizer' },
  DL0308: { severity: 'error', title: 'unknown training setting' },
  DL0309: { severity: 'error', title: 'unknown dataset' },
  DL0310: { severity: 'error', title: 'unknown metric' },
  DL0311: { severity: 'error', title: 'unknown learning-rate schedule' },
  DL0312: { severity: 'error', title: 'name shadows a layer' },
  DL0313: { severity: 'warning', title: 'unused value' },
  DL0314: { severity: 'error', title: 'recursive block' },
  // parameters
  DL0401: { severity: 'error', title: 'missing parameter' },
  DL0402: { severity: 'error', title: 'wrong parameter type' },
  DL0403: { severity: 'error', title: 'parameter out of range' },
  DL0404: { severity: 'error', title: 'too many arguments' },
  DL0405: { severity: 'error', title: 'parameter given twice' },
  DL0406: { severity: 'error', title: 'invalid choice' },
  // shapes
  DL0501: { severity: 'error', title: 'wrong input rank' },
  DL0502: { severity: 'error', title: 'dimension not positive' },
  DL0503: { severity: 'warning', title: 'pool window does not divide its input' },
  DL0504: { severity: 'error', title: 'shape assertion failed' },
  DL0505: { severity: 'error', title: 'incompatible shapes in merge' },
  DL0506: { severity: 'error', title: 'reshape changes the element count' },
  DL0507: { severity: 'error', title: 'wrong number of inputs' },
  DL0508: { severity: 'error', title: 'axis out of range' },
  DL0509: { severity: 'error', title: 'input without a shape' },
  DL0510: { severity: 'error', title: 'model without input' },
  DL0511: { severity: 'error', title: 'vocabulary larger than the embedding' },
  DL0512: { severity: 'error', title: 'weights need a known size' },
  // training semantics
  DL0701: { severity: 'error', title: 'cross-entropy needs a probability output' },
  DL0702: { severity: 'warning', title: 'mean squared error on a saturating output' },
  DL0703: { severity: 'error', title: 'labels do not match the output' },
  DL0704: { severity: 'error', title: 'data does not match the input' },
  DL0705: { severity: 'error', title: 'missing training setting' },
  DL0706: { severity: 'warning', title: 'weight decay on biases' },
  // target limits
  DL0801: { severity: 'warning', title: 'too large for the WebGPU target' },
} as const satisfies Record<string, { severity: 'error' | 'warning' | 'note'; title: string }>;

export type Code = keyof typeof CATALOG;
export const CODES = Object.keys(CATALOG) as Code[];
