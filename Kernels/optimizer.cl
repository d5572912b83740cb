/*
 * optimizer.cl - the optimizer family of Kiln's OpenCL backend: one fused update of a parameter tensor,
 * its gradient and the rule's state, in one pass.
 *
 * MATH (the float64 definition is Reference.optimizerStep, Sources/Backend/Reference/Reference+Optimizer.swift;
 * each rule's equations are on UpdateRule, Sources/Backend/Families/Optimizer.swift)
 *     g = gradient * gradientScale[0] (or the gradient itself when hasScale is 0), then
 *     sgd_step:        g += weightDecay * p; with momentum v = momentum * v + g, g = nesterov ? g + momentum * v : v;
 *                      p -= learningRate * g
 *     adam_step:       g += l2 * p; m = beta1 * m + (1 - beta1) g; v = beta2 * v + (1 - beta2) g^2;
 *                      p = p * decay - stepSize * m / (sqrt(v) * correction2 + epsilon)
 *     adam_atan2_step: m, v as Adam; p = p * decay - learningRate * a * atan2(m * correction1, b * sqrt(v) * correction2)
 *   The hyperparameters arrive as kernel arguments each step (the learning rate follows a schedule; the
 *   bias corrections depend on the step), computed on the host in double precision by
 *   OptimizerUpdate.kernel: stepSize = lr / (1 - beta1^t), correction1 = 1 / (1 - beta1^t),
 *   correction2 = 1 / sqrt(1 - beta2^t); decay is 1 - lr * wd for decoupled decay (AdamW, Adam-atan2) and
 *   1 otherwise; l2 is Adam's coupled weight decay (0 for AdamW). gradientScale points at one float (the
 *   global-norm clip factor computed on the device, so the host never waits for it); without one the
 *   argument is a placeholder and hasScale is 0. Without momentum, velocity is a placeholder too.
 *
 * LAYOUTS
 *   parameter, gradient and each state buffer: count floats.
 *
 * LAUNCH GEOMETRY
 *   One work-item per parameter: global = count rounded up to OpenCLTuning.elementwiseGroupSize; kernels
 *   guard get_global_id(0) < count.
 *
 * OPTIONS
 *   None: one memory-bound pass with nothing to tune at build time.
 */

__kernel void sgd_step(int count, float learningRate, float momentum, int nesterov, float weightDecay,
                       __global float* parameter, __global const float* gradient, __global float* velocity,
                       int hasScale, __global const float* gradientScale) {
    int i = get_global_id(0);
    if (i >= count) return;
    float g = gradient[i];
    if (hasScale) g *= gradientScale[0];
    float p = parameter[i];
    g += weightDecay * p;
    if (momentum != 0.0f) {
        float v = momentum * velocity[i] + g;
        velocity[i] = v;
        g = nesterov ? g + momentum * v : v;
    }
    parameter[i] = p - learningRate * g;
}

// Adam / AdamW. `decay` is the decoupled factor 1 - lr*wd (AdamW) or 1; `l2` the coupled weight decay
// (Adam) or 0. `stepSize` = lr / (1 - beta1^t); `correction2` = 1 / sqrt(1 - beta2^t).
__kernel void adam_step(int count, float stepSize, float beta1, float beta2, float epsilon, float correction2,
                        float decay, float l2, __global float* parameter, __global const float* gradient,
                        __global float* firstMoment, __global float* secondMoment, int hasScale,
                        __global const float* gradientScale) {
    int i = get_global_id(0);
    if (i >= count) return;
    float g = gradient[i];
    if (hasScale) g *= gradientScale[0];
    float p = parameter[i];
    g += l2 * p;
    float m = beta1 * firstMoment[i] + (1.0f - beta1) * g;
    float v = beta2 * secondMoment[i] + (1.0f - beta2) * g * g;
    firstMoment[i] = m;
    secondMoment[i] = v;
    parameter[i] = p * decay - stepSize * m / (sqrt(v) * correction2 + epsilon);
}

// Adam-atan2: p <- p*decay - lr * a * atan2(m / (1 - beta1^t), b * sqrt(v / (1 - beta2^t))).
__kernel void adam_atan2_step(int count, float learningRate, float beta1, float beta2, float correction1,
                              float correction2, float a, float b, float decay, __global float* parameter,
                              __global const float* gradient, __global float* firstMoment,
                              __global float* secondMoment, int hasScale, __global const float* gradientScale) {
    int i = get_global_id(0);
    if (i >= count) return;
    float g = gradient[i];
    if (hasScale) g *= gradientScale[0];
    float m = beta1 * firstMoment[i] + (1.0f - beta1) * g;
    float v = beta2 * secondMoment[i] + (1.0f - beta2) * g * g;
    firstMoment[i] = m;
    secondMoment[i] = v;
    parameter[i] = parameter[i] * decay - learningRate * a * atan2(m * correction1, b * sqrt(v) * correction2);
}
