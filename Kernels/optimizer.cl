// Fused optimizer updates: one pass over a parameter tensor, its gradient and the rule's state.
// Hyperparameters arrive as kernel arguments each step (the learning rate follows a schedule; bias
// corrections depend on the step), computed on the host in double precision.
// `gradientScale` points at one float the gradient is multiplied by first (global-norm clipping computed
// on the device); `hasScale` is 0 when there is none (the buffer argument is then a placeholder).

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
