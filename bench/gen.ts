/** Generators of large valid specs for benchmarks. */
/** A valid spec of about `lines` lines: LeNet-like models, residual blocks, recurrent models. */
export function generateSpec(lines: number): string {
  const out: string[] = ['// generated for the benchmark', 'block res(f: int) {', '  input x', '  h = x -> conv2d(f, kernel=3, padding=same, activation=relu)', '      -> conv2d(f, kernel=3, padding=same)', '  add(x, h) -> relu', '}', ''];
  let k = 0;
  while (out.length < lines) {
    k++;
    switch (k % 3) {
      case 0:
        out.push(
          `model lenet_${k} {`,
          '  input image: [N, 32, 32, 1]',
          '  conv2d(6, kernel=5, activation=tanh)  -> [N, 28, 28, 6]',
          '  avg_pool2d(2)                         -> [N, 14, 14, 6]',
          '  conv2d(16, kernel=5, activation=tanh) -> [N, 10, 10, 16]',
          '  avg_pool2d(2)                         -> [N, 5, 5, 16]',
          '  flatten',
          '  dense(120, activation=tanh)',
          '  dense(84, activation=tanh)',
          '  dense(10, activation=softmax)         -> [N, 10]',
          '  train {',
          '    data = mnist(pad=2)',
          '    loss = sparse_cross_entropy',
          '    optimizer = sgd(lr=0.05, momentum=0.9, weight_decay=5e-4)',
          '    batch_size = 64',
          '  }',
          '}',
        );
        break;
      case 1:
        out.push(`model resnet_${k} {`, '  input x: [N, H, W, 16]', '  res(16)', '  res(f=16)', '  global_avg_pool2d', '  dense(10, activation=softmax)', '}');
        break;
      default:
        out.push(`model lm_${k} {`, '  input chars: [N, T]', '  embedding(83, 32)', '  lstm(128, return_sequences=true)', '  gru(128, return_sequences=true, reset_after=true)', '  dense(83, activation=softmax)', '}');
    }
    out.push('');
  }
  return out.join('\n');
}

