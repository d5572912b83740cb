// The optimizer family's CPU loops (Kernels/optimizer.cl is the OpenCL twin): one pass over a parameter
// tensor, its gradient and the rule's state, with the scalars the host computed for this step
// (OptimizerUpdate.Kernel in Sources/Backend/Families/Optimizer.swift).
#include "loops.h"

KILN_INLINE void sgd_step_body(ptrdiff_t count, float learning_rate, float momentum, int nesterov, float weight_decay,
                               float scale, float *parameter, const float *gradient, float *velocity) {
    if (velocity == NULL) {
        KILN_ASSUME_SAFE for (ptrdiff_t i = 0; i < count; i++) {
            const float g = gradient[i] * scale + weight_decay * parameter[i];
            parameter[i] -= learning_rate * g;
        }
        return;
    }
    KILN_ASSUME_SAFE for (ptrdiff_t i = 0; i < count; i++) {
        float g = gradient[i] * scale + weight_decay * parameter[i];
        const float v = momentum * velocity[i] + g;
        velocity[i] = v;
        g = nesterov ? g + momentum * v : v;
        parameter[i] -= learning_rate * g;
    }
}

KILN_INLINE void adam_step_body(ptrdiff_t count, float step_size, float beta1, float beta2, float epsilon,
                                float correction2, float decay, float l2, float scale, float *parameter,
                                const float *gradient, float *first_moment, float *second_moment) {
    KILN_ASSUME_SAFE for (ptrdiff_t i = 0; i < count; i++) {
        const float p = parameter[i];
        const float g = gradient[i] * scale + l2 * p;
        const float m = beta1 * first_moment[i] + (1.0f - beta1) * g;
        const float v = beta2 * second_moment[i] + (1.0f - beta2) * g * g;
        first_moment[i] = m;
        second_moment[i] = v;
        parameter[i] = p * decay - step_size * m / (kiln_sqrt(v) * correction2 + epsilon);
    }
}

KILN_INLINE void adam_atan2_step_body(ptrdiff_t count, float learning_rate, float beta1, float beta2,
                                      float correction1, float correction2, float a, float b, float decay, float scale,
                                      float *parameter, const float *gradient, float *first_moment,
                                      float *second_moment) {
    for (ptrdiff_t i = 0; i < count; i++) {
        const float g = gradient[i] * scale;
        const float m = beta1 * first_moment[i] + (1.0f - beta1) * g;
        const float v = beta2 * second_moment[i] + (1.0f - beta2) * g * g;
        first_moment[i] = m;
        second_moment[i] = v;
        parameter[i] = parameter[i] * decay - learning_rate * a * atan2f(m * correction1, b * kiln_sqrt(v) * correction2);
    }
}

KILN_LOOP_VERSIONS_AVX2(sgd_step,
                   (ptrdiff_t count, float learning_rate, float momentum, int nesterov, float weight_decay, float scale,
                    float *parameter, const float *gradient, float *velocity),
                   (count, learning_rate, momentum, nesterov, weight_decay, scale, parameter, gradient, velocity))
KILN_LOOP_VERSIONS_AVX2(adam_step,
                   (ptrdiff_t count, float step_size, float beta1, float beta2, float epsilon, float correction2,
                    float decay, float l2, float scale, float *parameter, const float *gradient, float *first_moment,
                    float *second_moment),
                   (count, step_size, beta1, beta2, epsilon, correction2, decay, l2, scale, parameter, gradient,
                    first_moment, second_moment))
KILN_LOOP_VERSIONS_AVX2(adam_atan2_step,
                   (ptrdiff_t count, float learning_rate, float beta1, float beta2, float correction1, float correction2,
                    float a, float b, float decay, float scale, float *parameter, const float *gradient,
                    float *first_moment, float *second_moment),
                   (count, learning_rate, beta1, beta2, correction1, correction2, a, b, decay, scale, parameter, gradient,
                    first_moment, second_moment))

void kiln_sgd_step(ptrdiff_t count, float learning_rate, float momentum, int nesterov, float weight_decay, float scale,
                   float *parameter, const float *gradient, float *velocity) {
    KILN_DISPATCH_AVX2(sgd_step, (count, learning_rate, momentum, nesterov, weight_decay, scale, parameter, gradient,
                                  velocity))
}

void kiln_adam_step(ptrdiff_t count, float step_size, float beta1, float beta2, float epsilon, float correction2,
                    float decay, float l2, float scale, float *parameter, const float *gradient, float *first_moment,
                    float *second_moment) {
    KILN_DISPATCH_AVX2(adam_step, (count, step_size, beta1, beta2, epsilon, correction2, decay, l2, scale, parameter,
                                   gradient, first_moment, second_moment))
}

void kiln_adam_atan2_step(ptrdiff_t count, float learning_rate, float beta1, float beta2, float correction1,
                          float correction2, float a, float b, float decay, float scale, float *parameter,
                          const float *gradient, float *first_moment, float *second_moment) {
    KILN_DISPATCH_AVX2(adam_atan2_step, (count, learning_rate, beta1, beta2, correction1, correction2, a, b, decay,
                                         scale, parameter, gradient, first_moment, second_moment))
}
