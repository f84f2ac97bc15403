/**
 * The runtime of generated tfjs model modules (`dlc compile --target tfjs`): layer operations,
 * initializers, losses, optimizers and the ModelInstance they are assembled into.
 */
export { at, activate, bidirectional, batchNorm, conv1d, conv2d, dense, dilateKernel, dropout, elu, fusedActivation, gelu, gru, lstm, padAmounts, pool1d, pool2d, rnn, softmax } from './ops.ts';
export type { BatchNormParams, ConvOptions, FusedActivation, RecurrentOptions, RecurrentWeights } from './ops.ts';
export { fans, glorotUniform, heNormal, initialize, orthogonal, uniform } from './init.ts';
export { Rng, hashString, mixSeeds } from './rng.ts';
export { finishMetrics, lossValue, metricSums, metricTensors, targets } from './losses.ts';
export { Optimizer } from './optim.ts';
export type { OptimizedParam, OptimizerConfig } from './optim.ts';
export { installFastCpuKernels } from './cpu-kernels.ts';
export { createInstance, hostToTensor, readAndDispose, sliceRows } from './instance.ts';
export type { InstanceSettings } from './instance.ts';
export type { ForwardOptions, ForwardResult, InputInfo, ModelDefinition, OutputInfo, ParamInfo } from './types.ts';
export type { HostTensor, ModelInstance, ModelModule, NamedArray, Split } from '../contract.ts';
export type { TrainConfig } from '../../compiler/training.ts';
