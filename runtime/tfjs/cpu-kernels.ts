/**
 * A faster Conv2DBackpropFilter (the filter gradient of conv2d) for tfjs's `cpu` backend.
 * tfjs's own kernel reads every element through TensorBuffer.get and takes ~100x longer than
 * the forward convolution, which made training convolutional models on the cpu backend
 * impractical. This one computes the same sums with typed-array indexing (channels-last;
 * other layouts fall back to tfjs's kernel). Installing it changes no results beyond
 * floating-point summation order; other back ends are untouched.
 */
import * as tf from '@tensorflow/tfjs';

interface CpuBackendLike {
  readSync(dataId: tf.TensorInfo['dataId']): unknown;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: Float32Array): tf.TensorInfo;
}

let installed = false;

/** Replaces the cpu backend's Conv2DBackpropFilter kernel (idempotent). */
export function installFastCpuKernels(): void {
  if (installed) return;
  installed = true;
  let original: tf.KernelConfig | undefined;
  try {
    original = tf.getKernel('Conv2DBackpropFilter', 'cpu');
  } catch {
    original = undefined;
  }
  if (!original) return;
  const fallback = original.kernelFunc;
  tf.unregisterKernel('Conv2DBackpropFilter', 'cpu');
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'cpu',
    kernelFunc: (args) => {
      const { inputs, attrs } = args;
      const backend = args.backend as CpuBackendLike;
      const x = inputs['x']!;
      const dy = inputs['dy']!;
      const a = (attrs ?? {}) as Record<string, unknown>;
      const dataFormat = (a['dataFormat'] as string | undefined) ?? 'NHWC';
      if (dataFormat !== 'NHWC' || x.dtype !== 'float32' || dy.dtype !== 'float32') return fallback(args);
      const filterShape = a['filterShape'] as [number, number, number, number];
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        filterShape,
        a['strides'] as [number, number] | number,
        1,
        a['pad'] as 'valid' | 'same' | number,
        a['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined,
        false,
        'channelsLast',
      );
      const xv = backend.readSync(x.dataId) as Float32Array;
      const dyv = backend.readSync(dy.dataId) as Float32Array;
      const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, strideHeight, strideWidth, filterHeight, filterWidth } = info;
      const top = info.padInfo.top;
      const left = info.padInfo.left;
      const acc = new Float64Array(filterHeight * filterWidth * inChannels * outChannels);
      for (let b = 0; b < batchSize; b++) {
        for (let yR = 0; yR < outHeight; yR++) {
          for (let yC = 0; yC < outWidth; yC++) {
            const dyOff = ((b * outHeight + yR) * outWidth + yC) * outChannels;
            for (let wR = 0; wR < filterHeight; wR++) {
              const xR = yR * strideHeight + wR - top;
              if (xR < 0 || xR >= inHeight) continue;
              for (let wC = 0; wC < filterWidth; wC++) {
                const xC = yC * strideWidth + wC - left;
                if (xC < 0 || xC >= inWidth) continue;
                const xOff = ((b * inHeight + xR) * inWidth + xC) * inChannels;
                const wOff = (wR * filterWidth + wC) * inChannels * outChannels;
                for (let d1 = 0; d1 < inChannels; d1++) {
                  const xval = xv[xOff + d1]!;
                  const o = wOff + d1 * outChannels;
                  for (let d2 = 0; d2 < outChannels; d2++) acc[o + d2]! += xval * dyv[dyOff + d2]!;
                }
              }
            }
          }
        }
      }
      return backend.makeTensorInfo([...filterShape], 'float32', Float32Array.from(acc));
    },
  });
}
